// Exact backward rules of the three ReLU modes, on hand-computed tensors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"

namespace cnnvis {
namespace {

// A one-ReLU network: the input goes straight into the ReLU slot, so d(sum(w * y))/dx shows the rule.
at::Tensor relu_input_gradient(ReluMode mode, const at::Tensor& x, const at::Tensor& upstream) {
  auto root = std::make_unique<Sequential>("", "Test");
  root->add(std::make_unique<ReLU>("relu"));
  Network net("test", std::move(root), 0);
  net.set_relu_mode(mode);
  at::Tensor input = x.clone().requires_grad_(true);
  at::Tensor y = net.forward(input).logits;
  (y * upstream).sum().backward();
  return input.grad();
}

TEST(ReluModes, ForwardIsReluInEveryMode) {
  at::Tensor x = at::tensor({-2.0f, -0.5f, 0.0f, 0.5f, 3.0f}).view({1, 1, 1, 5});
  for (ReluMode mode : {ReluMode::standard, ReluMode::guided, ReluMode::deconv}) {
    auto root = std::make_unique<Sequential>("", "Test");
    root->add(std::make_unique<ReLU>("relu"));
    Network net("test", std::move(root), 0);
    net.set_relu_mode(mode);
    at::Tensor y = net.forward(x.clone().requires_grad_(true)).logits;
    EXPECT_TRUE(at::equal(y.detach(), at::relu(x))) << relu_mode_name(mode);
  }
}

TEST(ReluModes, BackwardRules) {
  // x:        -2   -1    1    2
  // upstream:  1   -1    1   -1
  at::Tensor x = at::tensor({-2.0f, -1.0f, 1.0f, 2.0f}).view({1, 1, 1, 4});
  at::Tensor g = at::tensor({1.0f, -1.0f, 1.0f, -1.0f}).view({1, 1, 1, 4});
  // standard: g * (x > 0)
  EXPECT_TRUE(at::equal(relu_input_gradient(ReluMode::standard, x, g).flatten(), at::tensor({0.0f, 0.0f, 1.0f, -1.0f})));
  // guided: g * (x > 0) * (g > 0)
  EXPECT_TRUE(at::equal(relu_input_gradient(ReluMode::guided, x, g).flatten(), at::tensor({0.0f, 0.0f, 1.0f, 0.0f})));
  // deconv: g * (g > 0), whatever x was
  EXPECT_TRUE(at::equal(relu_input_gradient(ReluMode::deconv, x, g).flatten(), at::tensor({1.0f, 0.0f, 1.0f, 0.0f})));
}

TEST(ReluModes, ParseNames) {
  EXPECT_EQ(parse_relu_mode("guided"), ReluMode::guided);
  EXPECT_THROW(parse_relu_mode("leaky"), std::exception);
}

}  // namespace
}  // namespace cnnvis
