#include <string>

#include "cnnvis/models/architectures.h"
#include "cnnvis/models/layers.h"

namespace cnnvis {
namespace {

// torchvision BasicConv2d: conv (no bias) + BatchNorm (eps 0.001) + ReLU. torchvision applies the ReLU
// functionally; here it is a real node named "<name>.relu" so that the ReLU mode reaches it.
std::unique_ptr<Sequential> basic_conv(const std::string& name, int in, int out, int kernel, int stride = 1,
                                       int padding = 0) {
  auto block = std::make_unique<Sequential>(name, "BasicConv2d");
  block->add(std::make_unique<Conv2d>(block->child_name("conv"), in, out, kernel, stride, padding, false));
  block->add(std::make_unique<BatchNorm2d>(block->child_name("bn"), out, 0.001));
  block->add(std::make_unique<ReLU>(block->child_name("relu")));
  return block;
}

std::unique_ptr<Concat> inception(const std::string& name, int in, int ch1x1, int ch3x3red, int ch3x3, int ch5x5red,
                                  int ch5x5, int pool_proj) {
  auto block = std::make_unique<Concat>(name);
  block->add(basic_conv(block->child_name("branch1"), in, ch1x1, 1));
  auto* branch2 = block->add(std::make_unique<Sequential>(block->child_name("branch2")));
  branch2->add(basic_conv(branch2->slot_name(0), in, ch3x3red, 1));
  branch2->add(basic_conv(branch2->slot_name(1), ch3x3red, ch3x3, 3, 1, 1));
  // The "5x5" branch uses a 3x3 kernel in torchvision (kept for weight compatibility, vision#906).
  auto* branch3 = block->add(std::make_unique<Sequential>(block->child_name("branch3")));
  branch3->add(basic_conv(branch3->slot_name(0), in, ch5x5red, 1));
  branch3->add(basic_conv(branch3->slot_name(1), ch5x5red, ch5x5, 3, 1, 1));
  auto* branch4 = block->add(std::make_unique<Sequential>(block->child_name("branch4")));
  branch4->add(std::make_unique<MaxPool2d>(branch4->slot_name(0), 3, 1, 1, true));
  branch4->add(basic_conv(branch4->slot_name(1), in, pool_proj, 1));
  return block;
}

}  // namespace

std::unique_ptr<Network> build_googlenet(bool transform_input, int num_classes) {
  auto root = std::make_unique<Sequential>("", "GoogLeNet");
  if (transform_input) root->add(std::make_unique<TransformInput>("transform_input"));
  root->add(basic_conv("conv1", 3, 64, 7, 2, 3));
  root->add(std::make_unique<MaxPool2d>("maxpool1", 3, 2, 0, true));
  root->add(basic_conv("conv2", 64, 64, 1));
  root->add(basic_conv("conv3", 64, 192, 3, 1, 1));
  root->add(std::make_unique<MaxPool2d>("maxpool2", 3, 2, 0, true));
  root->add(inception("inception3a", 192, 64, 96, 128, 16, 32, 32));
  root->add(inception("inception3b", 256, 128, 128, 192, 32, 96, 64));
  root->add(std::make_unique<MaxPool2d>("maxpool3", 3, 2, 0, true));
  root->add(inception("inception4a", 480, 192, 96, 208, 16, 48, 64));
  root->add(inception("inception4b", 512, 160, 112, 224, 24, 64, 64));
  root->add(inception("inception4c", 512, 128, 128, 256, 24, 64, 64));
  root->add(inception("inception4d", 512, 112, 144, 288, 32, 64, 64));
  root->add(inception("inception4e", 528, 256, 160, 320, 32, 128, 128));
  root->add(std::make_unique<MaxPool2d>("maxpool4", 2, 2, 0, true));
  root->add(inception("inception5a", 832, 256, 160, 320, 32, 128, 128));
  root->add(inception("inception5b", 832, 384, 192, 384, 48, 128, 128));
  root->add(std::make_unique<AdaptiveAvgPool2d>("avgpool", 1));
  root->add(std::make_unique<Flatten>("flatten"));
  root->add(std::make_unique<Dropout>("dropout", 0.2));
  root->add(std::make_unique<Linear>("fc", 1024, num_classes));

  auto net = std::make_unique<Network>("googlenet", std::move(root), num_classes);
  // Lucid / Caffe names for the same blocks.
  net->add_alias("conv2d0", "conv1");
  net->add_alias("conv2d1", "conv2");
  net->add_alias("conv2d2", "conv3");
  for (const char* block : {"3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"}) {
    net->add_alias(std::string("mixed") + block, std::string("inception") + block);
  }
  net->add_alias("pool5", "avgpool");
  net->add_alias("logits", "fc");
  return net;
}

}  // namespace cnnvis
