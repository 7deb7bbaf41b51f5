// Builders for the native networks. Each returns a Network whose parameter names match the
// corresponding torchvision (or cnnvis) checkpoint and whose friendly aliases are registered.
// vgg16 and googlenet come with allocated, uninitialised parameters (load weights or call
// initialize_parameters()); fashion_vgg comes initialised from LibTorch's current random state.
#pragma once

#include <memory>

#include "cnnvis/models/network.h"

namespace cnnvis {

// torchvision vgg16: features (31 slots), avgpool (7x7), flatten, classifier (7 slots).
std::unique_ptr<Network> build_vgg16(int num_classes = 1000);

// torchvision googlenet without aux heads; transform_input as the pretrained weights expect.
std::unique_ptr<Network> build_googlenet(bool transform_input, int num_classes = 1000);

// cnnvis's small VGG-style network for 64x64 Fashion-MNIST canvases (the demo model): conv-BN-ReLU
// blocks with max pooling, global average pooling and one linear layer (so CAM applies).
std::unique_ptr<Network> build_fashion_vgg(int num_classes = 10);

}  // namespace cnnvis
