// Layer-wise relevance propagation (Bach et al. 2015; rules as in Montavon et al. 2019 and zennit's
// composites). The target's logit is the relevance at the output; each layer hands its output's
// relevance R to its input by a rule, from the top down:
//   epsilon  (linear map z = W x + b)  R_in = x * W^T (R / (z + eps sign z))
//   z+       (= alpha1-beta0)          R_in = x+ * W+^T s + x- * W-^T s,  s = R / (W+ x+ + W- x- + stab)
//   flat     (first layer)             R_in = 1^T (R / (1 x)): spread evenly over each output's window
//   z-box    (first layer, z^B)        R_in = (x W - l W+ - h W-)^T (R / (W x - W+ l - W- h)), with l, h the
//                                       lowest and highest input values (the normalised 0 and 1 per channel)
// Presets (zennit's names): epsilon (every conv and linear layer), epsilon-plus (epsilon for linear
// layers, z+ for convolutions), epsilon-plus-flat (and flat for the first convolution),
// epsilon-plus-box (z-box for the first convolution). Everywhere: ReLU, dropout (eval) and flatten pass
// the relevance on; max pooling hands it to the window's maximum; average pooling uses epsilon; a batch
// norm after a convolution is merged into it (its eval-mode affine map), as zennit's canonizer does;
// an Inception block splits the relevance by branch and sums what the branches hand to the shared input.
// TorchScript models get the same rules through their rewritten graph (models/torchscript.h,
// script_relevance), where a sum (a residual connection) splits the relevance in proportion to its terms
// (zennit's Norm rule) and branches that read one value sum what they hand back to it.
// Library-internal (needs ATen); backprop.h offers it as modes lrp-<preset>.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

namespace cnnvis {

class Network;

enum class LrpPreset { epsilon, epsilon_plus, epsilon_plus_flat, epsilon_plus_box };

struct LrpOptions {
  LrpPreset preset = LrpPreset::epsilon_plus_flat;
  double epsilon = 1e-6;    // epsilon rule; also the stabiliser of the other rules (zennit's default)
  at::Tensor low, high;     // z-box bounds, 1 x C x 1 x 1 in the network's input space
};

// Relevance at the input (N x C x H x W, the shape of x) of logits[i, classes[i]] for each image i.
// x: normalised network input. Throws UsageError for a layer (an operator of a TorchScript model) without a
// rule.
at::Tensor lrp_relevance(const Network& net, const at::Tensor& x, const at::Tensor& classes, const LrpOptions& options);

}  // namespace cnnvis
