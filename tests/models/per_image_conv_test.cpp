// The native networks' convolution: one oneDNN call per image while batch-invariant kernels are asked
// for. Its results must be those of a convolution, and the bits of one image must not depend on the
// batch it came in, forward and backward.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cnnvis/core/runtime.h"
#include "cnnvis/models/per_image_conv.h"

namespace cnnvis {
namespace {

class PerImageConv : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!at::hasMKLDNN()) GTEST_SKIP() << "this LibTorch has no oneDNN: the per-image path never runs";
    set_per_image_onednn(true);
  }
  void TearDown() override { set_per_image_onednn(true); }
  ScopedBatchInvariantKernels invariant_{true};  // oneDNN off globally, as the CLI's default
};

TEST_F(PerImageConv, RunsOnlyWhereItApplies) {
  const at::Tensor x = at::randn({3, 64, 32, 32});  // 65536 elements per image
  const at::Tensor w = at::randn({8, 64, 3, 3});
  const at::Tensor b = at::randn({8});
  EXPECT_TRUE(runs_per_image_onednn(x, w, b));
  EXPECT_TRUE(runs_per_image_onednn(x, w, at::Tensor()));
  // Too small for LibTorch to run one image on oneDNN.
  EXPECT_FALSE(runs_per_image_onednn(at::randn({3, 64, 4, 4}), w, b));
  // Training: parameters that need gradients keep LibTorch's own convolution.
  EXPECT_FALSE(runs_per_image_onednn(x, w.clone().requires_grad_(true), b));
  EXPECT_FALSE(runs_per_image_onednn(x, w, b.clone().requires_grad_(true)));
  // Not for doubles, and not when oneDNN is on for whole batches (--fast) or the path is off.
  EXPECT_FALSE(runs_per_image_onednn(x.to(at::kDouble), w.to(at::kDouble), b.to(at::kDouble)));
  {
    ScopedBatchInvariantKernels batched(false);
    EXPECT_FALSE(runs_per_image_onednn(x, w, b));
  }
  set_per_image_onednn(false);
  EXPECT_FALSE(runs_per_image_onednn(x, w, b));
}

TEST_F(PerImageConv, ComputesTheConvolution) {
  at::manual_seed(3);
  const at::Tensor x = at::randn({4, 32, 40, 36});
  const at::Tensor w = at::randn({16, 32, 3, 3}) * 0.1;
  const at::Tensor b = at::randn({16});
  for (const at::Tensor& bias : {b, at::Tensor()}) {
    for (int stride : {1, 2}) {
      const at::Tensor ours = conv2d_layer(x, w, bias, stride, 1);
      const at::Tensor native = at::conv2d(x, w, bias, {stride, stride}, {1, 1});  // oneDNN is off here
      ASSERT_EQ(ours.sizes(), native.sizes());
      EXPECT_TRUE(at::allclose(ours, native, 1e-4, 1e-4)) << (ours - native).abs().max().item<float>();
    }
  }
}

TEST_F(PerImageConv, AnImageGivesTheSameBitsInAnyBatch) {
  at::manual_seed(4);
  const at::Tensor batch = at::randn({5, 48, 28, 28});
  const at::Tensor w = at::randn({24, 48, 3, 3}) * 0.1;
  const at::Tensor b = at::randn({24});
  const at::Tensor upstream = at::randn({5, 24, 28, 28});
  ASSERT_TRUE(runs_per_image_onednn(batch, w, b));

  at::Tensor x = batch.clone().requires_grad_(true);
  const at::Tensor y = conv2d_layer(x, w, b, 1, 1);
  (y * upstream).sum().backward();
  for (std::int64_t i : {0, 3}) {
    at::Tensor alone = batch.narrow(0, i, 1).clone().requires_grad_(true);
    const at::Tensor y_alone = conv2d_layer(alone, w, b, 1, 1);
    (y_alone * upstream.narrow(0, i, 1)).sum().backward();
    EXPECT_TRUE(at::equal(y_alone, y.narrow(0, i, 1))) << "forward, image " << i;
    EXPECT_TRUE(at::equal(alone.grad(), x.grad().narrow(0, i, 1))) << "input gradient, image " << i;
  }
  // And the gradient is the convolution's gradient.
  at::Tensor reference = batch.clone().requires_grad_(true);
  (at::conv2d(reference, w, b, {1, 1}, {1, 1}) * upstream).sum().backward();
  EXPECT_TRUE(at::allclose(x.grad(), reference.grad(), 1e-4, 1e-4))
      << (x.grad() - reference.grad()).abs().max().item<float>();
}

}  // namespace
}  // namespace cnnvis
