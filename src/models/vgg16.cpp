#include <string>

#include "cnnvis/models/architectures.h"
#include "cnnvis/models/layers.h"

namespace cnnvis {

std::unique_ptr<Network> build_vgg16(int num_classes) {
  auto root = std::make_unique<Sequential>("", "VGG16");
  auto* features = root->add(std::make_unique<Sequential>("features"));
  // Channel plan of configuration "D"; 0 marks a max-pool slot.
  const int plan[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
  int in = 3;
  std::size_t slot = 0;
  for (int channels : plan) {
    if (channels == 0) {
      features->add(std::make_unique<MaxPool2d>(features->slot_name(slot++), 2, 2));
    } else {
      features->add(std::make_unique<Conv2d>(features->slot_name(slot++), in, channels, 3, 1, 1));
      features->add(std::make_unique<ReLU>(features->slot_name(slot++)));
      in = channels;
    }
  }
  root->add(std::make_unique<AdaptiveAvgPool2d>("avgpool", 7));
  root->add(std::make_unique<Flatten>("flatten"));
  auto* classifier = root->add(std::make_unique<Sequential>("classifier"));
  classifier->add(std::make_unique<Linear>("classifier.0", 512 * 7 * 7, 4096));
  classifier->add(std::make_unique<ReLU>("classifier.1"));
  classifier->add(std::make_unique<Dropout>("classifier.2", 0.5));
  classifier->add(std::make_unique<Linear>("classifier.3", 4096, 4096));
  classifier->add(std::make_unique<ReLU>("classifier.4"));
  classifier->add(std::make_unique<Dropout>("classifier.5", 0.5));
  classifier->add(std::make_unique<Linear>("classifier.6", 4096, num_classes));

  auto net = std::make_unique<Network>("vgg16", std::move(root), num_classes);
  // Caffe-style names: convB_L for the L-th conv of block B, reluB_L after it, poolB after the block.
  const int convs_per_block[] = {2, 2, 3, 3, 3};
  int index = 0;
  for (int block = 1; block <= 5; ++block) {
    for (int layer = 1; layer <= convs_per_block[block - 1]; ++layer) {
      const std::string suffix = std::to_string(block) + "_" + std::to_string(layer);
      net->add_alias("conv" + suffix, "features." + std::to_string(index));
      net->add_alias("relu" + suffix, "features." + std::to_string(index + 1));
      index += 2;
    }
    net->add_alias("pool" + std::to_string(block), "features." + std::to_string(index));
    index += 1;
  }
  net->add_alias("fc6", "classifier.0");
  net->add_alias("relu6", "classifier.1");
  net->add_alias("fc7", "classifier.3");
  net->add_alias("relu7", "classifier.4");
  net->add_alias("fc8", "classifier.6");
  net->add_alias("logits", "classifier.6");
  return net;
}

}  // namespace cnnvis
