#include "cnnvis/methods/lrp.h"

#include <typeinfo>
#include <vector>

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "cnnvis/models/torchscript.h"

namespace cnnvis {

namespace {

// z + stab * sign(z), with sign(0) = +1, so that no division by zero happens.
at::Tensor stabilised(const at::Tensor& z, double stab) { return z + stab * (2 * (z >= 0).to(z.scalar_type()) - 1); }

// W^T s for the linear map `apply` (x -> W x) at x, by autograd: the gradient of sum(apply(x) * s).
template <typename Apply>
at::Tensor transpose_apply(const Apply& apply, const at::Tensor& x, const at::Tensor& s) {
  // Also inside a TorchScript graph's backward pass (script_relevance), where gradients are off.
  at::AutoGradMode grad_mode(true);
  at::Tensor leaf = x.detach().requires_grad_(true);
  at::Tensor z = apply(leaf);
  z.backward(s.detach());
  return leaf.grad().detach();
}

// A convolution or linear layer as weight and bias (a batch norm after a convolution folded in).
struct Affine {
  const Node* node = nullptr;  // the native layer; nullptr in a TorchScript graph
  AffineLayer layer;
  at::Tensor apply(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
    if (!layer.conv) return at::linear(x, w, b);
    return at::convolution(x, w, b, layer.stride, layer.padding, layer.dilation, false,
                           std::vector<std::int64_t>(layer.stride.size(), 0), layer.groups);
  }
};

Affine affine_of(const Node& node) {
  Affine a;
  a.node = &node;
  AffineLayer& l = a.layer;
  if (auto* conv = dynamic_cast<const Conv2d*>(&node)) {
    l.weight = conv->weight.detach();
    l.bias = conv->bias.defined() ? conv->bias.detach() : at::Tensor();
    l.conv = true;
    l.stride = {conv->stride, conv->stride};
    l.padding = {conv->padding, conv->padding};
  } else if (auto* linear = dynamic_cast<const Linear*>(&node)) {
    l.weight = linear->weight.detach();
    l.bias = linear->bias.defined() ? linear->bias.detach() : at::Tensor();
  }
  return a;
}

// conv -> batch norm (eval) as one convolution: W' = W * g, b' = (b - mean) * g + beta, g = gamma / sqrt(var + eps).
Affine merged(Affine conv, const BatchNorm2d& bn) {
  const at::Tensor g = bn.weight.detach() / at::sqrt(bn.running_var.detach() + bn.eps);
  AffineLayer& l = conv.layer;
  const at::Tensor b = l.bias.defined() ? l.bias : at::zeros_like(g);
  l.weight = l.weight * g.view({-1, 1, 1, 1});
  l.bias = (b - bn.running_mean.detach()) * g + bn.bias.detach();
  return conv;
}

// Relevance at the input x of an affine layer from the relevance r at its output, by the preset's rule
// for it (`first`: the network's first convolution).
at::Tensor affine_relevance(const Affine& a, bool first, const at::Tensor& x, const at::Tensor& r,
                            const LrpOptions& options) {
  const double stab = options.epsilon;
  const LrpPreset preset = options.preset;
  const at::Tensor& w = a.layer.weight;
  auto linear_map = [&a](const at::Tensor& weight) {
    return [&a, weight](const at::Tensor& in) { return a.apply(in, weight, {}); };
  };
  if (first && preset == LrpPreset::epsilon_plus_flat) {
    // Flat: every input of an output's window gets an equal share (weights 1, inputs 1).
    const at::Tensor ones_w = at::ones_like(w);
    const at::Tensor ones_x = at::ones_like(x);
    const at::Tensor z = a.apply(ones_x, ones_w, {});
    return transpose_apply(linear_map(ones_w), ones_x, r / stabilised(z, stab));
  }
  if (first && preset == LrpPreset::epsilon_plus_box) {
    if (!options.low.defined() || !options.high.defined()) throw UsageError("LRP z-box needs input bounds");
    const at::Tensor wp = w.clamp_min(0), wn = w.clamp_max(0);
    const at::Tensor low = (options.low.to(x.device(), x.scalar_type()) * at::ones_like(x));
    const at::Tensor high = (options.high.to(x.device(), x.scalar_type()) * at::ones_like(x));
    const at::Tensor z = a.apply(x, w, {}) - a.apply(low, wp, {}) - a.apply(high, wn, {});
    const at::Tensor s = r / stabilised(z, stab);
    return x * transpose_apply(linear_map(w), x, s) - low * transpose_apply(linear_map(wp), low, s) -
           high * transpose_apply(linear_map(wn), high, s);
  }
  const bool plus = a.layer.conv && preset != LrpPreset::epsilon;
  if (plus) {
    // z+: positive contributions only (positive weights on positive inputs, negative on negative).
    const at::Tensor wp = w.clamp_min(0), wn = w.clamp_max(0);
    const at::Tensor xp = x.clamp_min(0), xn = x.clamp_max(0);
    const at::Tensor z = a.apply(xp, wp, {}) + a.apply(xn, wn, {});
    const at::Tensor s = r / stabilised(z, stab);
    return xp * transpose_apply(linear_map(wp), xp, s) + xn * transpose_apply(linear_map(wn), xn, s);
  }
  const at::Tensor z = a.apply(x, w, a.layer.bias);
  return x * transpose_apply(linear_map(w), x, r / stabilised(z, options.epsilon));
}

class Propagator {
 public:
  Propagator(const Network& net, const LrpOptions& options) : options_(options) {
    for (const Node* node : net.nodes()) {
      if (dynamic_cast<const Conv2d*>(node)) {
        first_conv_ = node;
        break;
      }
    }
  }

  // Relevance at the input of `node` (whose input is x) from the relevance r at its output.
  at::Tensor relevance(const Node& node, const at::Tensor& x, const at::Tensor& r) {
    if (typeid(node) == typeid(Sequential)) return sequential(node, x, r);
    if (dynamic_cast<const Concat*>(&node)) return concat(node, x, r);
    if (dynamic_cast<const Conv2d*>(&node) || dynamic_cast<const Linear*>(&node)) return affine(affine_of(node), x, r);
    if (dynamic_cast<const ReLU*>(&node) || dynamic_cast<const Dropout*>(&node) ||
        dynamic_cast<const TransformInput*>(&node)) {
      return r;  // elementwise: the relevance stays where it is
    }
    if (dynamic_cast<const Flatten*>(&node)) return r.view(x.sizes());
    if (dynamic_cast<const MaxPool2d*>(&node)) {
      // To each window's maximum: the gradient of sum(maxpool(x) * r).
      return transpose_apply([&](const at::Tensor& in) { return node.forward(in, state_); }, x, r);
    }
    if (dynamic_cast<const AdaptiveAvgPool2d*>(&node)) {
      const auto apply = [&](const at::Tensor& in) { return node.forward(in, state_); };
      const at::Tensor z = apply(x);
      return x * transpose_apply(apply, x, r / stabilised(z, options_.epsilon));
    }
    if (dynamic_cast<const BatchNorm2d*>(&node)) {
      throw UsageError("LRP merges a batch norm into the convolution before it; '" + node.name() + "' follows none");
    }
    throw UsageError("LRP has no rule for layer '" + node.name() + "' (" + node.type() + ")");
  }

 private:
  at::Tensor sequential(const Node& node, const at::Tensor& x, const at::Tensor& r) {
    const std::vector<Node*> children = node.children();
    std::vector<at::Tensor> inputs{x};
    for (const Node* child : children) inputs.push_back(child->forward(inputs.back(), state_));
    at::Tensor rel = r;
    for (std::size_t i = children.size(); i-- > 0;) {
      const Node& child = *children[i];
      if (auto* bn = dynamic_cast<const BatchNorm2d*>(&child)) {
        if (i > 0 && dynamic_cast<const Conv2d*>(children[i - 1])) {
          rel = affine(merged(affine_of(*children[i - 1]), *bn), inputs[i - 1], rel);
          --i;  // the convolution is done with it
          continue;
        }
      }
      rel = relevance(child, inputs[i], rel);
    }
    return rel;
  }

  at::Tensor concat(const Node& node, const at::Tensor& x, const at::Tensor& r) {
    at::Tensor total = at::zeros_like(x);
    int64_t offset = 0;
    for (const Node* branch : node.children()) {
      const int64_t channels = branch->forward(x, state_).size(1);
      total = total + relevance(*branch, x, r.narrow(1, offset, channels));
      offset += channels;
    }
    return total;
  }

  at::Tensor affine(const Affine& a, const at::Tensor& x, const at::Tensor& r) {
    return affine_relevance(a, a.node == first_conv_, x, r, options_);
  }

  const LrpOptions& options_;
  const Node* first_conv_ = nullptr;
  ForwardState state_;  // standard ReLUs, eval mode, nothing recorded
};

}  // namespace

at::Tensor lrp_relevance(const Network& net, const at::Tensor& x, const at::Tensor& classes, const LrpOptions& options) {
  if (net.training()) throw UsageError("LRP needs the network in eval mode");
  if (!net.native()) {
    if (options.preset == LrpPreset::epsilon_plus_box && (!options.low.defined() || !options.high.defined())) {
      throw UsageError("LRP z-box needs input bounds");
    }
    RelevanceRules rules;
    rules.epsilon = options.epsilon;
    rules.affine = [&options](const AffineLayer& layer, const at::Tensor& in, const at::Tensor& r) {
      Affine a;
      a.layer = layer;
      return affine_relevance(a, layer.conv && layer.index == 0, in, r, options);
    };
    return script_relevance(net, x.detach(), classes, rules).detach();
  }
  at::AutoGradMode grad_mode(true);
  const at::Tensor input = x.detach();
  at::Tensor logits;
  {
    at::NoGradGuard no_grad;
    logits = net.forward(input).logits;
  }
  // The relevance at the output is the target's logit, nothing elsewhere.
  const at::Tensor one_hot = at::zeros_like(logits).scatter_(1, classes.view({-1, 1}).to(logits.device()), 1.0);
  Propagator propagator(net, options);
  return propagator.relevance(net.root(), input, one_hot * logits).detach();
}

}  // namespace cnnvis
