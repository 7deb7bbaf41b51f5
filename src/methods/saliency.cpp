#include "cnnvis/methods/saliency.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/methods/prediction_util.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

namespace {

// 3 x H x W tensor (any device) -> H x W x 3 CV_32FC3 (owning copy).
cv::Mat chw_to_mat(const at::Tensor& chw) {
  at::Tensor t = chw.detach().to(at::kCPU, at::kFloat).permute({1, 2, 0}).contiguous();
  cv::Mat out(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_32FC3);
  std::memcpy(out.ptr<float>(), t.data_ptr<float>(), sizeof(float) * t.numel());
  return out;
}

// d (sum of each row's target logit) / d batch. Rows are independent in eval mode, so each row gets
// its own gradient from the one backward pass.
at::Tensor input_gradients(const Network& net, const at::Tensor& batch, const at::Tensor& classes) {
  at::Tensor x = batch.detach().requires_grad_(true);
  at::Tensor logits = net.forward(x).logits;
  logits.gather(1, classes.unsqueeze(1)).sum().backward();
  return x.grad().detach();
}

// splitmix64: decorrelates the per-sample seeds derived from (seed, sample).
std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Standard normal noise of SmoothGrad sample s. It depends only on (seed, s), never on the image's place
// in the batch or on the chunking, so an image's map is the same whatever it is processed with.
at::Tensor sample_noise(std::uint64_t seed, int sample, at::IntArrayRef shape) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(mix(seed ^ mix(static_cast<std::uint64_t>(sample))));
  return at::randn(shape, generator, at::TensorOptions().dtype(at::kFloat));
}

bool noisy(SaliencyMethod method) {
  return method == SaliencyMethod::smoothgrad || method == SaliencyMethod::smoothgrad_sq ||
         method == SaliencyMethod::vargrad;
}

}  // namespace

void validate_saliency_options(const SaliencyOptions& options) {
  if (options.smooth_samples < 0) throw UsageError("--smooth must be 0 or a positive number of samples");
  if (options.integrated_steps < 0) throw UsageError("--integrated must be 0 or a positive number of steps");
  if (options.smooth_samples > 0 && options.integrated_steps > 0) {
    throw UsageError("choose either SmoothGrad (--smooth) or integrated gradients (--integrated), not both");
  }
  const SaliencyMethod method = options.method;
  if (method != SaliencyMethod::automatic) {
    const char* name = saliency_method_name(options);
    if (options.smooth_samples > 0 && !noisy(method)) {
      throw UsageError(std::string("--smooth does not apply to saliency method ") + name);
    }
    if (options.integrated_steps > 0 && method != SaliencyMethod::integrated) {
      throw UsageError(std::string("--integrated does not apply to saliency method ") + name);
    }
  }
  if (!std::isfinite(options.noise) || options.noise < 0) throw UsageError("--noise must be a fraction >= 0");
  if (options.chunk < 1) throw UsageError("--chunk must be at least 1");
}

SaliencyMethod parse_saliency_method(const std::string& text) {
  std::string t = text;
  std::replace(t.begin(), t.end(), '_', '-');
  if (t.empty() || t == "auto") return SaliencyMethod::automatic;
  if (t == "vanilla") return SaliencyMethod::vanilla;
  if (t == "smoothgrad") return SaliencyMethod::smoothgrad;
  if (t == "smoothgrad-sq") return SaliencyMethod::smoothgrad_sq;
  if (t == "vargrad") return SaliencyMethod::vargrad;
  if (t == "integrated" || t == "integrated-gradients") return SaliencyMethod::integrated;
  if (t == "input-x-gradient") return SaliencyMethod::input_x_gradient;
  throw UsageError("unknown saliency method '" + text +
                   "' (choose vanilla, smoothgrad, smoothgrad-sq, vargrad, integrated or input-x-gradient)");
}

SaliencyMethod resolve_saliency_method(const SaliencyOptions& options) {
  if (options.method != SaliencyMethod::automatic) return options.method;
  if (options.integrated_steps > 0) return SaliencyMethod::integrated;
  if (options.smooth_samples > 0) return SaliencyMethod::smoothgrad;
  return SaliencyMethod::vanilla;
}

const char* saliency_method_name(const SaliencyOptions& options) {
  switch (resolve_saliency_method(options)) {
    case SaliencyMethod::automatic:  // resolved above
    case SaliencyMethod::vanilla: return "vanilla";
    case SaliencyMethod::smoothgrad: return "smoothgrad";
    case SaliencyMethod::smoothgrad_sq: return "smoothgrad_sq";
    case SaliencyMethod::vargrad: return "vargrad";
    case SaliencyMethod::integrated: return "integrated_gradients";
    case SaliencyMethod::input_x_gradient: return "input_x_gradient";
  }
  return "vanilla";
}

std::vector<SaliencyResult> run_saliency(LoadedModel& model, const std::vector<cv::Mat>& inputs,
                                         const SaliencyOptions& options) {
  validate_saliency_options(options);
  const TargetSpec target = parse_target(options.target, model.card(), model.num_classes());
  if (inputs.empty()) return {};
  Network& net = model.network();
  at::AutoGradMode grad_mode(true);  // a caller's no-grad scope would otherwise leave us without gradients
  // Saliency is defined with the true gradient: force standard ReLUs for the run (a model left in
  // guided mode by someone else would silently give guided maps).
  ScopedReluMode relu_guard(net, ReluMode::standard);

  const at::Tensor x = images_to_tensor(inputs, model.card(), at::Device(model.device()));
  const int64_t n = x.size(0);
  const SaliencyMethod method = resolve_saliency_method(options);
  const bool smooth = noisy(method);
  const bool integrated = method == SaliencyMethod::integrated;
  auto classes_for = [&](const at::Tensor& logits) {
    return target.top ? logits.argmax(1)
                      : at::full({n}, target.index, at::TensorOptions().dtype(at::kLong).device(logits.device()));
  };

  // gradient: N x 3 x H x W, the per-channel statistic of the gradient (see SaliencyResult::gradient)
  at::Tensor logits, classes, gradient;
  if (!smooth && !integrated) {
    // Vanilla and input x gradient: the clean forward pass is also the one the gradient comes from.
    at::Tensor xin = x.detach().requires_grad_(true);
    logits = net.forward(xin).logits;
    classes = classes_for(logits);
    logits.gather(1, classes.unsqueeze(1)).sum().backward();
    gradient = xin.grad().detach();
    logits = logits.detach();
    if (method == SaliencyMethod::input_x_gradient) gradient = x * gradient;  // baseline 0: the mean colour
  } else {
    {
      // The target is fixed from the clean image, before any noise: noisy copies may be classified
      // differently, and the map must explain one class.
      at::NoGradGuard no_grad;
      logits = net.forward(x).logits;
    }
    classes = classes_for(logits);
    int samples = smooth ? options.smooth_samples : options.integrated_steps;
    if (samples == 0) samples = kDefaultSaliencySamples;  // a method named without its count
    at::Tensor sigma;  // per image: noise sd in normalised input units
    if (smooth) {
      at::Tensor flat = x.reshape({n, -1});
      sigma = (std::get<0>(flat.max(1)) - std::get<0>(flat.min(1))) * options.noise;
    }
    // Running statistics, sample by sample in a fixed order: the result does not depend on where the
    // chunk boundaries fall, and identical gradients (noise 0) average to exactly themselves.
    //   mean  of g (smoothgrad, integrated, vargrad) or of g^2 (smoothgrad_sq)
    //   m2    vargrad only: Welford's sum of squared deviations, so the variance m2 / samples equals
    //         mean(g^2) - mean(g)^2 without its cancellation (and is never negative)
    at::Tensor mean = at::zeros_like(x);
    at::Tensor m2 = method == SaliencyMethod::vargrad ? at::zeros_like(x) : at::Tensor();
    const int64_t total = n * samples;
    for (int64_t start = 0; start < total; start += options.chunk) {
      const int64_t count = std::min<int64_t>(options.chunk, total - start);
      // Work items (image i, sample s) in image-major order; several images share a pass when the
      // sample count is below the chunk size.
      std::vector<at::Tensor> rows;
      std::vector<int64_t> images;
      for (int64_t k = start; k < start + count; ++k) {
        const int64_t i = k / samples;
        const int s = static_cast<int>(k % samples);
        images.push_back(i);
        if (smooth) {
          at::Tensor noise = sample_noise(options.seed, s, {x.size(1), x.size(2), x.size(3)}).to(x.device());
          rows.push_back(x[i] + noise * sigma[i]);
        } else {
          // Midpoint rule on the straight path from the zero baseline to x.
          rows.push_back(x[i] * ((s + 0.5) / samples));
        }
      }
      at::Tensor index = at::tensor(images, at::TensorOptions().dtype(at::kLong)).to(x.device());
      at::Tensor grads = input_gradients(net, at::stack(rows), classes.index_select(0, index));
      for (int64_t k = 0; k < count; ++k) {
        const int64_t i = images[k];
        const int64_t s = (start + k) % samples;
        at::Tensor g = method == SaliencyMethod::smoothgrad_sq ? grads[k] * grads[k] : grads[k];
        at::Tensor mean_i = mean[i];
        at::Tensor delta = g - mean_i;
        mean_i.add_(delta / static_cast<double>(s + 1));
        if (m2.defined()) m2[i].add_(delta * (g - mean_i));
      }
    }
    gradient = m2.defined() ? m2 / static_cast<double>(samples) : mean;
    if (integrated) gradient = x * gradient;  // (x - baseline) * mean gradient, baseline = 0
  }

  const bool summed = integrated || method == SaliencyMethod::input_x_gradient;
  at::Tensor maps = summed ? gradient.abs().sum(1) : std::get<0>(gradient.abs().max(1));  // N x H x W
  auto top = top_predictions(logits, model.card(), 5);
  const std::vector<Prediction> targets = class_predictions(logits, classes, model.card());
  std::vector<SaliencyResult> out(n);
  for (int64_t i = 0; i < n; ++i) {
    SaliencyResult& r = out[i];
    r.target = targets[i];
    r.top = top[i];
    r.map = tensor_to_map(maps[i]);
    r.gradient = chw_to_mat(gradient[i]);
  }
  return out;
}

}  // namespace cnnvis
