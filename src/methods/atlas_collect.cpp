#include "cnnvis/methods/atlas_collect.h"

#include <algorithm>
#include <numeric>
#include <optional>

#include <ATen/ATen.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/atlas_store.h"
#include "cnnvis/io/canvas.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

int AtlasAttribution::classes_per_sample(int num_classes) const {
  switch (mode) {
    case Mode::none: return 0;
    case Mode::all: return num_classes;
    case Mode::top: return std::min(top_k, num_classes);
  }
  return 0;
}

AtlasAttribution parse_atlas_attribution(const std::string& text, int num_classes) {
  AtlasAttribution a;
  if (text == "none") return a;
  if (text == "all" || (text == "auto" && num_classes <= 100)) {
    a.mode = AtlasAttribution::Mode::all;
    return a;
  }
  if (text == "auto") {
    a.mode = AtlasAttribution::Mode::top;
    a.top_k = 10;
    return a;
  }
  if (text.rfind("top:", 0) == 0) {
    try {
      std::size_t used = 0;
      const int k = std::stoi(text.substr(4), &used);
      if (used == text.size() - 4 && k >= 1) {
        a.mode = AtlasAttribution::Mode::top;
        a.top_k = k;
        return a;
      }
    } catch (...) {
    }
  }
  throw UsageError("unknown attribution '" + text + "' (choose auto, none, all or top:K with K >= 1)");
}

std::vector<std::pair<int, int>> atlas_sample_positions(const std::string& key, std::uint64_t seed, int width,
                                                        int height, int samples, int border) {
  if (width <= 0 || height <= 0 || samples <= 0) return {};
  const int bx = std::clamp(border, 0, (width - 1) / 2);
  const int by = std::clamp(border, 0, (height - 1) / 2);
  const int w = width - 2 * bx, h = height - 2 * by;
  std::vector<int> cells(static_cast<std::size_t>(w) * h);
  std::iota(cells.begin(), cells.end(), 0);
  SplitMix64 rng(atlas_key_hash(key, seed));
  const int n = std::min<int>(samples, static_cast<int>(cells.size()));
  std::vector<std::pair<int, int>> out;
  // A partial Fisher-Yates shuffle: the first picks do not depend on how many are drawn.
  for (int i = 0; i < n; ++i) {
    const std::size_t remaining = cells.size() - static_cast<std::size_t>(i);
    const std::size_t j = static_cast<std::size_t>(i) + static_cast<std::size_t>(rng.next() % remaining);
    std::swap(cells[i], cells[j]);
    out.emplace_back(bx + cells[i] % w, by + cells[i] / w);
  }
  return out;
}

std::vector<AtlasImageSamples> collect_atlas_samples(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                                     const std::vector<std::string>& keys,
                                                     const AtlasCollectOptions& options) {
  if (inputs.size() != keys.size()) throw UsageError("collect_atlas_samples: one key per input is needed");
  std::vector<AtlasImageSamples> out(inputs.size());
  if (inputs.empty()) return out;
  const std::string layer = model.resolve_layer(options.layer);
  Network& net = model.network();
  ScopedReluMode standard(net, ReluMode::standard);
  const int num_classes = model.num_classes();
  const int k = options.attribution.classes_per_sample(num_classes);
  const auto n = static_cast<int64_t>(inputs.size());

  at::Tensor x = images_to_tensor(inputs, model.card(), at::Device(model.device()));
  ForwardRequest request;
  request.taps = {layer};
  if (k > 0) request.grad_taps = {layer};
  std::optional<at::AutoGradMode> grad_mode;
  std::optional<c10::InferenceMode> inference;
  if (k > 0) {
    grad_mode.emplace(true);
  } else {
    inference.emplace();
  }
  ForwardResult result = net.forward(x, request);
  at::Tensor tap = result.taps.at(layer);
  if (tap.dim() != 4 && tap.dim() != 2) {
    throw UsageError("layer '" + options.layer + "' gives " + std::to_string(tap.dim() - 1) +
                     "-D outputs; an atlas needs C x H x W maps or C-vectors");
  }
  const int64_t channels = tap.size(1);
  const int height = tap.dim() == 4 ? static_cast<int>(tap.size(2)) : 1;
  const int width = tap.dim() == 4 ? static_cast<int>(tap.size(3)) : 1;

  at::Tensor logits_cpu = result.logits.detach().to(at::kCPU, at::kFloat);
  const auto top = top_predictions(logits_cpu, model.card(), 1);
  const at::Tensor order = std::get<1>(logits_cpu.sort(1, /*descending=*/true)).contiguous();  // N x classes
  const auto ranked = order.accessor<int64_t, 2>();
  std::vector<std::vector<std::pair<int, int>>> positions(inputs.size());
  for (int64_t i = 0; i < n; ++i) {
    out[i].top = top[i].front();
    positions[i] = atlas_sample_positions(keys[i], options.seed, width, height, options.samples_per_image,
                                          options.border);
  }
  // Activation vectors at the chosen positions.
  const at::Tensor a = (tap.dim() == 4 ? tap.detach() : tap.detach().view({n, channels, 1, 1}))
                           .to(at::kCPU, at::kFloat)
                           .contiguous();
  for (int64_t i = 0; i < n; ++i) {
    for (const auto& [px, py] : positions[i]) {
      AtlasPoint p;
      p.x = px;
      p.y = py;
      const at::Tensor v = a[i].select(2, px).select(1, py).contiguous();
      p.activation.assign(v.data_ptr<float>(), v.data_ptr<float>() + channels);
      p.attr_classes.resize(k);
      p.attr_values.resize(k);
      out[i].points.push_back(std::move(p));
    }
  }
  if (k == 0) return out;

  // Attribution: one backward pass per class slot (slot j: every image's j-th class), stopping at the layer.
  std::vector<std::vector<int64_t>> classes(inputs.size(), std::vector<int64_t>(k));
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j)
      classes[i][j] = options.attribution.mode == AtlasAttribution::Mode::all ? j : ranked[i][j];
  for (int j = 0; j < k; ++j) {
    at::Tensor selector = at::zeros({n, result.logits.size(1)}, at::kFloat);
    auto select = selector.accessor<float, 2>();
    for (int64_t i = 0; i < n; ++i) select[i][classes[i][j]] = 1.0f;
    selector = selector.to(result.logits.device(), result.logits.scalar_type());
    at::Tensor& g = tap.mutable_grad();
    if (g.defined()) g.zero_();
    result.logits.backward(selector, /*retain_graph=*/j + 1 < k);
    at::Tensor grad = tap.grad().detach();
    if (grad.dim() == 2) grad = grad.view({n, channels, 1, 1});
    const at::Tensor attribution = (grad * a.to(grad.device())).sum(1).to(at::kCPU, at::kFloat).contiguous();  // N x h x w
    const auto acc = attribution.accessor<float, 3>();
    for (int64_t i = 0; i < n; ++i) {
      for (AtlasPoint& p : out[i].points) {
        p.attr_classes[j] = classes[i][j];
        p.attr_values[j] = acc[i][p.y][p.x];
      }
    }
  }
  return out;
}

void append_to_collection(AtlasCollection& c, const std::vector<AtlasImageSamples>& samples,
                          const std::vector<std::string>& keys) {
  if (samples.size() != keys.size()) throw UsageError("append_to_collection: one key per image is needed");
  for (std::size_t i = 0; i < samples.size(); ++i) {
    for (std::size_t s = 0; s < samples[i].points.size(); ++s) {
      const AtlasPoint& p = samples[i].points[s];
      if (c.info.channels == 0) c.info.channels = static_cast<int>(p.activation.size());
      if (static_cast<int>(p.activation.size()) != c.info.channels ||
          static_cast<int>(p.attr_classes.size()) != c.info.attribution_classes) {
        throw UsageError("append_to_collection: sample sizes differ from the collection's");
      }
      c.activations.insert(c.activations.end(), p.activation.begin(), p.activation.end());
      c.attr_classes.insert(c.attr_classes.end(), p.attr_classes.begin(), p.attr_classes.end());
      c.attr_values.insert(c.attr_values.end(), p.attr_values.begin(), p.attr_values.end());
      c.samples.push_back({keys[i], keys[i], static_cast<int>(s), p.x, p.y, samples[i].top.index});
      ++c.rows;
    }
  }
}

}  // namespace cnnvis
