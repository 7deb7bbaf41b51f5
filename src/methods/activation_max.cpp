// The optimisation loop of feature visualisation and the octave zoom built on it.
#include "cnnvis/methods/activation_max.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/adam.h"
#include "cnnvis/methods/fv_objectives.h"
#include "cnnvis/methods/fv_transforms.h"
#include "cnnvis/methods/image_param.h"
#include "cnnvis/models/layer_info.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

namespace {

// SplitMix64: independent streams from one seed (noise, transforms, octaves).
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// CV_32FC3 RGB images (any sizes) -> N x 3 x H x W on device, resized to width x height.
at::Tensor mats_to_tensor(const std::vector<cv::Mat>& images, int width, int height, const at::Device& device) {
  at::Tensor batch = at::empty({static_cast<int64_t>(images.size()), height, width, 3}, at::kFloat);
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (images[i].type() != CV_32FC3) throw UsageError("starting images must be float RGB (CV_32FC3)");
    cv::Mat sized;
    if (images[i].cols == width && images[i].rows == height) {
      sized = images[i].isContinuous() ? images[i] : images[i].clone();
    } else {
      const bool shrink = images[i].cols > width;
      cv::resize(images[i], sized, cv::Size(width, height), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
    }
    std::memcpy(batch[static_cast<int64_t>(i)].data_ptr<float>(), sized.ptr<float>(), sizeof(float) * width * height * 3);
  }
  return batch.permute({0, 3, 1, 2}).contiguous().to(device);
}

cv::Mat tensor_to_rgb(const at::Tensor& chw) {
  at::Tensor t = chw.detach().to(at::kCPU, at::kFloat).permute({1, 2, 0}).contiguous();
  cv::Mat out(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32FC3);
  std::memcpy(out.ptr<float>(), t.data_ptr<float>(), sizeof(float) * t.numel());
  return out;
}

void check_options(const ActivationMaxOptions& o) {
  if (o.steps < 0) throw UsageError("steps must be >= 0");
  if (o.width < 8 || o.height < 8 || o.width > 4096 || o.height > 4096)
    throw UsageError("image size must be between 8 and 4096 pixels per side");
  if (!(o.learning_rate > 0)) throw UsageError("learning rate must be > 0");
  if (o.images_per_unit < 1) throw UsageError("images per unit must be >= 1");
  if (o.l2 < 0 || o.tv < 0 || o.blur < 0 || o.diversity < 0) throw UsageError("penalty weights must be >= 0");
  if (o.transforms.pad < 0 || o.transforms.jitter < 0 || o.transforms.final_jitter < 0 || o.transforms.rotate_degrees < 0)
    throw UsageError("transform sizes must be >= 0");
}

// Objective values on untransformed images, no gradient.
std::vector<float> evaluate(Network& net, const ModelCard& card, const std::vector<ResolvedObjective>& objectives,
                            const std::vector<std::size_t>& objective_of_image, const at::Tensor& images01) {
  at::NoGradGuard no_grad;
  const ForwardResult fwd = net.forward(normalize_for_model(images01, card), objective_request(objectives));
  at::Tensor v = objective_values(objectives, objective_of_image, fwd).to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
}

}  // namespace

ObjectiveKind parse_objective_kind(const std::string& text) {
  if (text == "channel") return ObjectiveKind::channel;
  if (text == "neuron") return ObjectiveKind::neuron;
  if (text == "class" || text == "logit") return ObjectiveKind::class_logit;
  if (text == "direction") return ObjectiveKind::direction;
  if (text == "direction-neuron") return ObjectiveKind::direction_neuron;
  if (text == "deepdream") return ObjectiveKind::deepdream;
  throw UsageError("unknown objective '" + text + "' (choose channel, neuron, class, direction, direction-neuron or deepdream)");
}

const char* objective_kind_name(ObjectiveKind kind) {
  switch (kind) {
    case ObjectiveKind::channel: return "channel";
    case ObjectiveKind::neuron: return "neuron";
    case ObjectiveKind::class_logit: return "class";
    case ObjectiveKind::direction: return "direction";
    case ObjectiveKind::direction_neuron: return "direction-neuron";
    case ObjectiveKind::deepdream: return "deepdream";
  }
  return "?";
}

std::string Objective::describe() const {
  switch (kind) {
    case ObjectiveKind::channel: return layer + ":" + std::to_string(channel);
    case ObjectiveKind::neuron:
      return layer + ":" + std::to_string(channel) + "@" + (x < 0 ? std::string("centre") : std::to_string(x) + "," + std::to_string(y));
    case ObjectiveKind::class_logit: return "logit " + std::to_string(channel);
    case ObjectiveKind::direction: return layer + ":direction";
    case ObjectiveKind::direction_neuron:
      return layer + ":direction@" + (x < 0 ? std::string("centre") : std::to_string(x) + "," + std::to_string(y));
    case ObjectiveKind::deepdream: return layer + ":deepdream";
  }
  return "?";
}

ImageParameterization parse_parameterization(const std::string& text) {
  if (text == "fourier" || text == "fft") return ImageParameterization::fourier;
  if (text == "pixel") return ImageParameterization::pixel;
  throw UsageError("unknown parameterisation '" + text + "' (choose fourier or pixel)");
}

const char* parameterization_name(ImageParameterization p) {
  return p == ImageParameterization::fourier ? "fourier" : "pixel";
}

int layer_channels(const LoadedModel& model, const std::string& layer) {
  const std::string canonical = model.resolve_layer(layer);
  for (const LayerInfo& info : model.layers())
    if (info.name == canonical && !info.output_shape.empty()) return static_cast<int>(info.output_shape[0]);
  throw UsageError("layer '" + layer + "' has no output to visualise");
}

std::vector<float> evaluate_objectives(LoadedModel& model, const std::vector<Objective>& objectives,
                                       const std::vector<cv::Mat>& images) {
  if (objectives.size() != images.size()) throw UsageError("one image per objective expected");
  if (images.empty()) return {};
  const auto resolved = resolve_objectives(model, objectives);
  std::vector<std::size_t> index(objectives.size());
  for (std::size_t i = 0; i < index.size(); ++i) index[i] = i;
  at::Tensor x = mats_to_tensor(images, images[0].cols, images[0].rows, at::Device(model.device()));
  return evaluate(model.network(), model.card(), resolved, index, x);
}

std::vector<ActivationMaxResult> run_activation_max(LoadedModel& model, const std::vector<Objective>& objectives,
                                                    const ActivationMaxOptions& options) {
  check_options(options);
  const std::vector<ResolvedObjective> resolved = resolve_objectives(model, objectives);
  const int copies = options.images_per_unit;
  std::vector<std::size_t> objective_of_image;
  for (std::size_t u = 0; u < resolved.size(); ++u)
    for (int c = 0; c < copies; ++c) objective_of_image.push_back(u);
  const int64_t n = static_cast<int64_t>(objective_of_image.size());
  if (!options.initial_images.empty() && static_cast<int64_t>(options.initial_images.size()) != n)
    throw UsageError("expected " + std::to_string(n) + " starting images, got " + std::to_string(options.initial_images.size()));

  Network& net = model.network();
  const ModelCard& card = model.card();
  const at::Device device(model.device());
  at::AutoGradMode grad_mode(true);

  ImageParam param = options.initial_images.empty()
                         ? ImageParam::noise(static_cast<int>(n), options.height, options.width, options.parameterization,
                                             options.decorrelate, options.init_sd, mix_seed(options.seed, 0), device)
                         : ImageParam::from_images(mats_to_tensor(options.initial_images, options.width, options.height, device),
                                                   options.parameterization, options.decorrelate);
  FeatureVisRng rng(mix_seed(options.seed, 1));
  Adam adam(param.params(), options.learning_rate);
  const ForwardRequest request = objective_request(resolved);

  std::vector<ActivationMaxResult> results(static_cast<std::size_t>(n));
  {
    const std::vector<float> start = evaluate(net, card, resolved, objective_of_image, param.image().detach());
    for (int64_t i = 0; i < n; ++i) {
      ActivationMaxResult& r = results[static_cast<std::size_t>(i)];
      r.objective = objectives[objective_of_image[static_cast<std::size_t>(i)]];
      r.layer = resolved[objective_of_image[static_cast<std::size_t>(i)]].layer;
      r.copy = static_cast<int>(i % copies);
      r.objective_start = start[static_cast<std::size_t>(i)];
      r.curve.reserve(static_cast<std::size_t>(options.steps));
    }
  }

  const bool use_diversity = options.diversity > 0 && copies > 1;
  for (int step = 0; step < options.steps; ++step) {
    ScopedReluMode relu_mode(net, step < options.redirect_steps ? ReluMode::redirected : ReluMode::standard);
    at::Tensor image = param.image();
    at::Tensor x = apply_transforms(image, options.transforms, rng);
    const ForwardResult fwd = net.forward(normalize_for_model(x, card), request);
    at::Tensor values = objective_values(resolved, objective_of_image, fwd);
    at::Tensor loss = -values.sum();
    if (use_diversity) {
      for (std::size_t u = 0; u < resolved.size(); ++u) {
        if (resolved[u].layer.empty()) continue;
        const at::Tensor acts = fwd.taps.at(resolved[u].layer).slice(0, static_cast<int64_t>(u) * copies,
                                                                     static_cast<int64_t>(u + 1) * copies);
        if (acts.dim() == 4) loss = loss + options.diversity * diversity_term(acts);
      }
    }
    if (options.l2 > 0 || options.tv > 0 || options.blur > 0)
      loss = loss + image_penalties(image, options.l2, options.tv, options.blur).sum();
    loss.backward();
    adam.step();
    at::Tensor v = values.detach().to(at::kCPU, at::kFloat).contiguous();
    for (int64_t i = 0; i < n; ++i) results[static_cast<std::size_t>(i)].curve.push_back(v.data_ptr<float>()[i]);
    if (options.progress) options.progress(static_cast<std::size_t>(step + 1), static_cast<std::size_t>(options.steps), "steps");
  }

  at::Tensor final_images;
  {
    at::NoGradGuard no_grad;
    final_images = param.image().detach();
  }
  const std::vector<float> final_values = evaluate(net, card, resolved, objective_of_image, final_images);
  for (int64_t i = 0; i < n; ++i) {
    ActivationMaxResult& r = results[static_cast<std::size_t>(i)];
    r.image = tensor_to_rgb(final_images[i]);
    r.objective_final = final_values[static_cast<std::size_t>(i)];
  }
  return results;
}

int run_octave_zoom(LoadedModel& model, const std::vector<Objective>& objectives, const OctaveZoomOptions& options,
                    const std::function<void(const ZoomFrame&)>& on_frame) {
  if (objectives.empty()) throw UsageError("no objective given");
  if (options.start_size < 8) throw UsageError("zoom start size must be >= 8");
  if (!(options.octave_scale > 1.0f) || !(options.zoom_scale > 1.0f)) throw UsageError("octave and zoom scales must be > 1");
  if (options.octave_steps < 1 || options.zoom_steps < 1 || options.zoom_frames < 0)
    throw UsageError("zoom steps must be >= 1 and frames >= 0");
  const int target_w = options.base.width, target_h = options.base.height;
  const double aspect = static_cast<double>(target_h) / target_w;

  // Octave sizes (widths) from the start size up to the target.
  std::vector<int> widths;
  for (double w = std::min(options.start_size, target_w); ; w *= options.octave_scale) {
    const int wi = std::min(target_w, static_cast<int>(std::lround(w)));
    if (widths.empty() || wi > widths.back()) widths.push_back(wi);
    if (wi >= target_w) break;
  }

  cv::Mat image;
  int frame = 0;
  std::size_t current = 0;
  const auto optimise = [&](int width, int height, int steps, bool first, std::size_t objective_index) {
    ActivationMaxOptions o = options.base;
    o.width = width;
    o.height = height;
    o.steps = steps;
    o.images_per_unit = 1;
    o.seed = mix_seed(options.base.seed, 100 + static_cast<std::uint64_t>(frame));
    if (!first) o.redirect_steps = 0;
    o.initial_images.clear();
    if (!image.empty()) o.initial_images.push_back(image);
    auto results = run_activation_max(model, {objectives[objective_index]}, o);
    image = results[0].image;
    return results[0].objective_final;
  };

  for (std::size_t k = 0; k < widths.size(); ++k) {
    const int w = widths[k];
    const int h = std::max(8, static_cast<int>(std::lround(w * aspect)));
    ZoomFrame f;
    f.objective_value = optimise(w, h, options.octave_steps, k == 0, current);
    f.index = frame++;
    f.stage = "octave";
    f.objective = current;
    f.image = image;
    on_frame(f);
    if (options.base.progress) options.base.progress(k + 1, widths.size() + options.zoom_frames, "frames");
  }
  for (int z = 0; z < options.zoom_frames; ++z) {
    if (options.cycle_every > 0 && objectives.size() > 1 && z > 0 && z % options.cycle_every == 0)
      current = (current + 1) % objectives.size();
    // Zoom into the centre: upscale, then crop the target size back out.
    cv::Mat bigger;
    const int bw = std::max(target_w + 1, static_cast<int>(std::lround(target_w * options.zoom_scale)));
    const int bh = std::max(target_h + 1, static_cast<int>(std::lround(target_h * options.zoom_scale)));
    cv::resize(image, bigger, cv::Size(bw, bh), 0, 0, cv::INTER_CUBIC);
    image = bigger(cv::Rect((bw - target_w) / 2, (bh - target_h) / 2, target_w, target_h)).clone();
    cv::max(image, 0.0, image);
    cv::min(image, 1.0, image);
    ZoomFrame f;
    f.objective_value = optimise(target_w, target_h, options.zoom_steps, false, current);
    f.index = frame++;
    f.stage = "zoom";
    f.objective = current;
    f.image = image;
    on_frame(f);
    if (options.base.progress)
      options.base.progress(widths.size() + static_cast<std::size_t>(z) + 1, widths.size() + options.zoom_frames, "frames");
  }
  return frame;
}

}  // namespace cnnvis
