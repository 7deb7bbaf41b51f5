// Inference settings for one run of a method that only evaluates the network (occlusion, explanation
// scores): eval mode, standard ReLUs, no autograd graph. Restores the network's mode when it ends.
#pragma once

#include <ATen/ATen.h>

#include "cnnvis/models/network.h"

namespace cnnvis {

class EvalScope {
 public:
  explicit EvalScope(Network& net) : net_(net), relu_(net, ReluMode::standard), training_(net.training()) {
    net_.set_training(false);
  }
  ~EvalScope() { net_.set_training(training_); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  Network& net_;
  ScopedReluMode relu_;
  bool training_;
  at::NoGradGuard no_grad_;
};

}  // namespace cnnvis
