#include "cnnvis/methods/activations.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/render.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

std::vector<LayerActivations> run_activations(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                              const std::string& layer) {
  const std::string canonical = model.resolve_layer(layer);
  if (inputs.empty()) return {};
  at::NoGradGuard no_grad;
  ForwardRequest request;
  request.taps = {canonical};
  request.need_logits = true;
  at::Tensor x = images_to_tensor(inputs, model.card(), at::Device(model.device()));
  const ForwardResult fwd = model.network().forward(x, request);
  at::Tensor acts = fwd.taps.at(canonical).to(at::kCPU, at::kFloat);
  if (acts.dim() == 2) acts = acts.unsqueeze(2).unsqueeze(3);
  if (acts.dim() != 4) throw UsageError("layer '" + layer + "' output cannot be shown as feature maps");
  const auto top = top_predictions(fwd.logits, model.card(), 5);
  std::vector<LayerActivations> out(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    LayerActivations& r = out[i];
    r.layer = canonical;
    r.top = top[i];
    const at::Tensor a = acts[static_cast<int64_t>(i)];
    const at::Tensor means = a.reshape({a.size(0), -1}).mean(1).contiguous();
    const at::Tensor maxs = std::get<0>(a.reshape({a.size(0), -1}).max(1)).contiguous();
    const at::Tensor mins = std::get<0>(a.reshape({a.size(0), -1}).min(1)).contiguous();
    for (int64_t c = 0; c < a.size(0); ++c) {
      r.maps.push_back(tensor_to_map(a[c]));
      ChannelStat s;
      s.channel = static_cast<int>(c);
      s.mean = means.data_ptr<float>()[c];
      s.max = maxs.data_ptr<float>()[c];
      s.min = mins.data_ptr<float>()[c];
      if (s.min < 0) r.has_negative = true;
      r.stats.push_back(s);
    }
  }
  return out;
}

std::vector<int> strongest_channels(const LayerActivations& activations, int k) {
  std::vector<int> order(activations.stats.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return activations.stats[a].mean > activations.stats[b].mean; });
  if (k >= 0 && static_cast<std::size_t>(k) < order.size()) order.resize(static_cast<std::size_t>(k));
  return order;
}

cv::Mat render_activation_grid(const LayerActivations& activations, const ActivationGridOptions& options) {
  const int total = static_cast<int>(activations.maps.size());
  const int shown = options.max_channels > 0 ? std::min(total, options.max_channels) : total;
  std::vector<int> channels;
  if (options.by_strength) {
    channels = strongest_channels(activations, shown);
  } else {
    channels.resize(static_cast<std::size_t>(shown));
    std::iota(channels.begin(), channels.end(), 0);
  }
  float scale = 0;
  for (const ChannelStat& s : activations.stats) scale = std::max({scale, std::abs(s.max), std::abs(s.min)});
  std::vector<SheetCell> cells;
  for (int c : channels) {
    cv::Mat rgb;
    if (activations.has_negative) {
      rgb = apply_diverging(activations.maps[static_cast<std::size_t>(c)], scale);
    } else {
      cv::Mat scaled = activations.maps[static_cast<std::size_t>(c)] * (scale > 0 ? 1.0 / scale : 0.0);
      rgb = apply_colormap(scaled, options.colormap);
    }
    cv::Mat big;
    cv::resize(rgb, big, cv::Size(options.cell, options.cell), 0, 0, cv::INTER_NEAREST);
    cells.push_back({big, "c" + std::to_string(c)});
  }
  SheetOptions sheet;
  sheet.title = activations.layer + (activations.has_negative ? " (blue +, red -)" : "");
  return make_contact_sheet(cells, sheet);
}

}  // namespace cnnvis
