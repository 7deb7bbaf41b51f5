#include "cnnvis/methods/model_randomisation.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::vector<double> ranks(const cv::Mat& m) {
  const int n = static_cast<int>(m.total());
  const float* v = m.ptr<float>();
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [v](int x, int y) { return v[x] < v[y]; });
  std::vector<double> r(n);
  for (int i = 0; i < n;) {  // ties share their mean rank
    int j = i;
    while (j + 1 < n && v[order[j + 1]] == v[order[i]]) ++j;
    for (int k = i; k <= j; ++k) r[order[k]] = (i + j) / 2.0;
    i = j + 1;
  }
  return r;
}

cv::Mat as_float(const cv::Mat& m) {
  cv::Mat f;
  m.convertTo(f, CV_32F);
  cv::patchNaNs(f, 0.0);
  return f.isContinuous() ? f : f.clone();
}

cv::Mat unit_range(const cv::Mat& m) {
  double lo = 0, hi = 0;
  cv::minMaxLoc(m, &lo, &hi);
  cv::Mat out;
  if (hi > lo) {
    m.convertTo(out, CV_64F, 1.0 / (hi - lo), -lo / (hi - lo));
  } else {
    out = cv::Mat::zeros(m.size(), CV_64F);
  }
  return out;
}

}  // namespace

std::vector<std::vector<std::string>> randomisation_steps(const Network& net) {
  std::vector<std::vector<std::string>> groups;  // definition order
  const Node* previous_leaf = nullptr;
  bool previous_grouped = false;
  for (const Node* node : net.nodes()) {
    if (!node->children().empty()) continue;
    const bool params = node->initializes_parameters();
    if (params) {
      const bool follows = previous_leaf != nullptr && previous_grouped &&
                           node->type() == "BatchNorm2d";
      if (follows) {
        groups.back().push_back(node->name());
      } else {
        groups.push_back({node->name()});
      }
    }
    previous_leaf = node;
    previous_grouped = params;
  }
  std::reverse(groups.begin(), groups.end());
  return groups;
}

void reinitialize_layers(Network& net, const std::vector<std::string>& layers, std::uint64_t seed) {
  at::manual_seed(splitmix64(seed));
  for (const std::string& name : layers) {
    const Node* node = net.find_node(name);
    if (node == nullptr) throw UsageError("no layer named '" + name + "' to re-initialise");
    // The network owns its nodes as mutable objects; nodes() only hands out const views.
    const_cast<Node*>(node)->initialize();
  }
}

struct ParameterSnapshot::Saved {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
};

ParameterSnapshot::ParameterSnapshot(Network& net) : net_(net), saved_(std::make_unique<Saved>()) {
  for (auto& [name, tensor] : net.named_tensors(true)) {
    if (tensor->defined()) saved_->tensors.emplace_back(name, tensor->detach().clone());
  }
}

ParameterSnapshot::~ParameterSnapshot() {
  try {
    restore();
  } catch (...) {
  }
}

void ParameterSnapshot::restore() {
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor*> current;
  for (auto& [name, tensor] : net_.named_tensors(true)) current[name] = tensor;
  for (auto& [name, value] : saved_->tensors) {
    auto it = current.find(name);
    if (it != current.end()) it->second->copy_(value);
  }
}

float spearman_correlation(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.channels() != 1 || b.channels() != 1) {
    throw UsageError("rank correlation needs two single-channel maps of the same size");
  }
  const std::vector<double> ra = ranks(as_float(a)), rb = ranks(as_float(b));
  const double n = static_cast<double>(ra.size());
  if (n < 2) return 0.0f;
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n;
  const double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? static_cast<float>(sab / std::sqrt(saa * sbb)) : 0.0f;
}

float map_ssim(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.channels() != 1 || b.channels() != 1) {
    throw UsageError("SSIM needs two single-channel maps of the same size");
  }
  const cv::Mat x = unit_range(as_float(a)), y = unit_range(as_float(b));
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  auto blur = [](const cv::Mat& m) {
    cv::Mat out;
    cv::GaussianBlur(m, out, cv::Size(11, 11), 1.5, 1.5, cv::BORDER_REFLECT);
    return out;
  };
  const cv::Mat mx = blur(x), my = blur(y);
  const cv::Mat sxx = blur(x.mul(x)) - mx.mul(mx), syy = blur(y.mul(y)) - my.mul(my);
  const cv::Mat sxy = blur(x.mul(y)) - mx.mul(my);
  cv::Mat num = (2 * mx.mul(my) + c1).mul(2 * sxy + c2);
  cv::Mat den = (mx.mul(mx) + my.mul(my) + c1).mul(sxx + syy + c2);
  cv::Mat ratio;
  cv::divide(num, den, ratio);
  return static_cast<float>(cv::mean(ratio)[0]);
}

RandomisationResult cascading_randomisation(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                            const std::string& method, const std::vector<Explanation>& original,
                                            const RandomisationOptions& options) {
  if (original.size() != inputs.size()) throw UsageError("the randomisation test needs one map per input");
  if (options.max_steps < 0) throw UsageError("randomisation steps must be >= 0 (0: every layer)");
  Network& net = model.network();
  auto steps = randomisation_steps(net);
  if (steps.empty()) {
    throw UsageError("model " + net.architecture() + " has no layer the randomisation test can re-initialise "
                     "(Conv, Linear, BatchNorm, LayerNorm or GroupNorm modules with parameters)");
  }
  if (options.max_steps > 0 && static_cast<int>(steps.size()) > options.max_steps) steps.resize(options.max_steps);

  // Inputs grouped by the class they explain, so that each group is one batch with a fixed target.
  std::map<int, std::vector<std::size_t>> by_target;
  for (std::size_t i = 0; i < original.size(); ++i) by_target[original[i].target].push_back(i);

  at::Generator generator = at::detail::getDefaultCPUGenerator();
  at::Tensor rng_state;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    rng_state = generator.get_state();
  }
  RandomisationResult result;
  {
    ParameterSnapshot snapshot(net);
    for (std::size_t s = 0; s < steps.size(); ++s) {
      reinitialize_layers(net, steps[s], options.seed ^ splitmix64(s + 1));
      result.steps.push_back(join(steps[s], "+"));
      std::vector<float> rho(inputs.size(), 0.0f), ssim(inputs.size(), 0.0f);
      for (const auto& [target, members] : by_target) {
        std::vector<cv::Mat> batch;
        for (std::size_t i : members) batch.push_back(inputs[i]);
        const auto randomised = explain(model, batch, method, std::to_string(target));
        for (std::size_t j = 0; j < members.size(); ++j) {
          const cv::Mat& before = original[members[j]].map;
          cv::Mat after = randomised[j].map;
          if (after.size() != before.size()) cv::resize(after, after, before.size(), 0, 0, cv::INTER_LINEAR);
          rho[members[j]] = spearman_correlation(cv::abs(as_float(before)), cv::abs(as_float(after)));
          ssim[members[j]] = map_ssim(before, after);
        }
      }
      result.spearman.push_back(std::move(rho));
      result.ssim.push_back(std::move(ssim));
    }
    snapshot.restore();
  }
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng_state);
  }
  return result;
}

}  // namespace cnnvis
