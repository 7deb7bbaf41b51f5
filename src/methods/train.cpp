// Training fashion_vgg from scratch on Fashion-MNIST "items on a canvas".
//
// Plain ATen only (no torch::nn / torch::optim: they would double the compile time of this file): the
// optimiser is AdamW written out on the parameter tensors. Everything random is seeded from the one
// training seed (weights via LibTorch's generator, data order and canvases via SplitMix64), so the same
// seed on the same device and thread count gives the same weights bit for bit. The data pipeline
// (canvases into batches, normalisation, crops) is in train_data.cpp.
#include "cnnvis/methods/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/runtime.h"
#include "cnnvis/core/sha256.h"
#include "cnnvis/io/model_card.h"
#include "cnnvis/methods/train_data.h"
#include "cnnvis/methods/training_movie.h"
#include "cnnvis/models/architectures.h"
#include "cnnvis/models/network.h"
#include "cnnvis/models/registry.h"
#include "cnnvis/models/weights.h"

namespace cnnvis {

std::uint64_t train_canvas_seed(std::uint64_t seed, int epoch) {
  // Two SplitMix64 steps: the first separates the training stream from any other use of the same seed
  // (the test canvases use a fixed seed of their own), the second gives every epoch an unrelated stream.
  SplitMix64 base(seed ^ 0x74726169'6E636E76ULL);  // "traincnv"
  SplitMix64 per_epoch(base.next() ^ (static_cast<std::uint64_t>(epoch) * 0x9E3779B97F4A7C15ULL));
  return per_epoch.next();
}

namespace {

using train_data::crop_at;
using train_data::movie_samples;
using train_data::Normaliser;
using train_data::render_canvases;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void validate(const TrainOptions& o) {
  if (o.epochs < 1) throw UsageError("--epochs must be at least 1, got " + std::to_string(o.epochs));
  // BatchNorm needs more than one value per channel; a batch of one 64x64 image has 4096, but one is
  // still a degenerate estimate of the batch statistics.
  if (o.batch_size < 2 || o.batch_size > 4096)
    throw UsageError("--batch-size must be between 2 and 4096, got " + std::to_string(o.batch_size));
  if (!(o.learning_rate > 0.0) || o.learning_rate > 1.0)
    throw UsageError("--lr must be in (0, 1], got " + std::to_string(o.learning_rate));
  if (o.train_limit < 0) throw UsageError("--train-limit must be >= 0, got " + std::to_string(o.train_limit));
  if (o.test_limit < 0) throw UsageError("--test-limit must be >= 0, got " + std::to_string(o.test_limit));
  if (o.watch_every < 1) throw UsageError("--watch-every must be at least 1, got " + std::to_string(o.watch_every));
  if (o.log_every < 1) throw UsageError("log_every must be at least 1, got " + std::to_string(o.log_every));
  if (!(o.weight_decay >= 0.0)) throw UsageError("weight decay must be >= 0");
  if (!(o.warmup_fraction >= 0.0) || o.warmup_fraction >= 1.0) throw UsageError("warm-up fraction must be in [0, 1)");
  if (!(o.label_smoothing >= 0.0) || o.label_smoothing >= 1.0)
    throw UsageError("--label-smoothing must be in [0, 1), got " + std::to_string(o.label_smoothing));
  if (o.crop_size < 0) throw UsageError("crop size must be >= 0, got " + std::to_string(o.crop_size));
  if (!(o.full_canvas_fraction >= 0.0) || o.full_canvas_fraction > 1.0)
    throw UsageError("full-canvas fraction must be in [0, 1]");
  if (o.precision != "auto" && o.precision != "fp32" && o.precision != "bf16")
    throw UsageError("--precision must be auto, fp32 or bf16, got '" + o.precision + "'");
}

// The arithmetic training runs in (see TrainOptions::precision).
std::string resolve_precision(const TrainOptions& o, const at::Device& device) {
  if (o.precision == "bf16" && !device.is_cpu())
    throw UsageError("--precision bf16 is for CPU training (on CUDA the model trains in fp32)");
  if (o.precision != "auto") return o.precision;
  return device.is_cpu() && cpu_has_native_bf16() ? "bf16" : "fp32";
}

at::Device parse_device(const std::string& text) {
  try {
    return at::Device(text);
  } catch (const std::exception&) {
    throw UsageError("unknown device '" + text + "' (use cpu or cuda:N)");
  }
}

// Fraction of correctly classified canvases, in eval mode (BatchNorm running statistics, no dropout);
// per_class (when given) receives the accuracy of each of the ten classes.
double evaluate(Network& network, const at::Tensor& pixels, const at::Tensor& labels, const Normaliser& normalise,
                const ProgressCallback& progress, std::vector<double>* per_class = nullptr) {
  const bool was_training = network.training();
  network.set_training(false);
  at::NoGradGuard no_grad;
  const std::int64_t n = pixels.size(0);
  // Small chunks keep the activations in cache: 32 canvases per forward evaluate 10,000 test canvases
  // about 3x faster than 250 (measured: 3.5 s against 10 s with 2 threads).
  const std::int64_t chunk = 32;
  std::int64_t correct = 0;
  std::vector<std::int64_t> class_total(10, 0), class_correct(10, 0);
  for (std::int64_t begin = 0; begin < n; begin += chunk) {
    const std::int64_t end = std::min(n, begin + chunk);
    at::Tensor logits = network.forward(normalise(pixels.slice(0, begin, end))).logits;
    const at::Tensor truth = labels.slice(0, begin, end);
    const at::Tensor hit = logits.argmax(1).to(at::kCPU).eq(truth).contiguous();
    const at::Tensor truth_cpu = truth.contiguous();
    const bool* h = hit.data_ptr<bool>();
    const std::int64_t* t = truth_cpu.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < end - begin; ++i) {
      const auto c = static_cast<std::size_t>(t[i]);
      ++class_total[c];
      if (h[i]) {
        ++class_correct[c];
        ++correct;
      }
    }
    if (progress) progress(static_cast<std::size_t>(end), static_cast<std::size_t>(n), "evaluate");
  }
  network.set_training(was_training);
  if (per_class != nullptr) {
    per_class->assign(10, 0.0);
    for (std::size_t c = 0; c < 10; ++c)
      (*per_class)[c] = class_total[c] > 0 ? static_cast<double>(class_correct[c]) / static_cast<double>(class_total[c]) : 0.0;
  }
  return n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
}

// AdamW (Loshchilov & Hutter): Adam moments plus weight decay applied to the weights directly, not
// through the gradient. Decay only on conv/linear weights: decaying BatchNorm scales and biases just
// fights the normalisation.
class AdamW {
 public:
  AdamW(const std::vector<std::pair<std::string, at::Tensor*>>& params, double weight_decay)
      : weight_decay_(weight_decay) {
    for (const auto& [name, tensor] : params) {
      if (!tensor->defined()) continue;
      Slot slot;
      slot.param = tensor;
      slot.m = at::zeros_like(*tensor);
      slot.v = at::zeros_like(*tensor);
      slot.decay = tensor->dim() > 1;
      slots_.push_back(std::move(slot));
    }
  }

  void step(double lr) {
    ++t_;
    const double bc1 = 1.0 - std::pow(kBeta1, static_cast<double>(t_));
    const double bc2 = 1.0 - std::pow(kBeta2, static_cast<double>(t_));
    at::NoGradGuard no_grad;
    for (Slot& s : slots_) {
      at::Tensor& p = *s.param;
      const at::Tensor& g = p.grad();
      if (!g.defined()) continue;
      s.m.mul_(kBeta1).add_(g, 1.0 - kBeta1);
      s.v.mul_(kBeta2).addcmul_(g, g, 1.0 - kBeta2);
      if (s.decay && weight_decay_ > 0) p.mul_(1.0 - lr * weight_decay_);
      at::Tensor denom = (s.v / bc2).sqrt_().add_(kEps);
      p.addcdiv_(s.m, denom, -lr / bc1);
      // Dropping the gradient (rather than zeroing it) lets the next backward write a fresh one.
      p.mutable_grad() = at::Tensor();
    }
  }

 private:
  static constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  struct Slot {
    at::Tensor* param = nullptr;
    at::Tensor m, v;
    bool decay = false;
  };
  std::vector<Slot> slots_;
  double weight_decay_;
  std::int64_t t_ = 0;
};

// Linear warm-up, then cosine decay to 1% of the peak: a short budget is best spent with a high rate
// early and a small one for the last steps.
double learning_rate_at(const TrainOptions& o, std::int64_t step, std::int64_t total) {
  const std::int64_t warmup = static_cast<std::int64_t>(std::floor(o.warmup_fraction * static_cast<double>(total)));
  if (step < warmup) return o.learning_rate * static_cast<double>(step + 1) / static_cast<double>(warmup + 1);
  const double span = static_cast<double>(std::max<std::int64_t>(1, total - warmup));
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / span);
  constexpr double kFloor = 0.01;
  constexpr double kPi = 3.14159265358979323846;
  return o.learning_rate * (kFloor + (1.0 - kFloor) * 0.5 * (1.0 + std::cos(kPi * progress)));
}

std::string card_path_for(const std::string& weights_path) {
  return std::filesystem::path(weights_path).replace_extension(".json").string();
}


// Every step allocates and frees the same few-megabyte activation tensors. With glibc's defaults part of
// them go to fresh mmap()s or the heap top is trimmed after the step, so the next step page-faults them
// in again: 15-20% of a training run's CPU time went to the kernel (a 2x wide network: 7 s system time
// of 32 s). Keeping freed memory in the heap for reuse removes that; the weights are unchanged.
void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc allows; larger blocks are still mmap()ed
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

// The steps on growing crops: all but the last full_canvas_fraction.
std::int64_t crop_steps_of(const TrainOptions& options, std::int64_t total_steps) {
  return static_cast<std::int64_t>(std::llround((1.0 - options.full_canvas_fraction) * static_cast<double>(total_steps)));
}

}  // namespace

int train_step_side(const TrainOptions& options, std::int64_t step, std::int64_t total_steps) {
  const int crop = crop_at(options, step, crop_steps_of(options, total_steps));
  return crop > 0 ? crop : options.canvas.size;
}

TrainResult train_fashion_vgg(const TrainOptions& options, const std::string& weights_path) {
  validate(options);
  keep_freed_memory_for_reuse();
  if (weights_path.empty()) throw UsageError("no output path given for the trained weights");
  const auto start = Clock::now();
  const at::Device device = parse_device(options.device);
  const std::string precision = resolve_precision(options, device);
  const bool bf16 = precision == "bf16";
  if (bf16 && !cpu_has_native_bf16())
    spdlog::warn("training in bf16 on a CPU without native bf16 (AVX512-BF16): emulated, slower than fp32");

  FashionMnistSplit train = load_fashion_mnist(options.data_dir, "train");
  FashionMnistSplit test = load_fashion_mnist(options.data_dir, "test");
  const std::int64_t train_total = train.images.dims[0];
  const std::int64_t test_total = test.images.dims[0];
  const std::int64_t n_train = options.train_limit > 0 ? std::min(options.train_limit, train_total) : train_total;
  const std::int64_t n_test = options.test_limit > 0 ? std::min(options.test_limit, test_total) : test_total;

  ModelCard card = default_model_card("fashion_vgg");
  card.input_height = card.input_width = options.canvas.size;
  const Normaliser normalise(card, device);

  // Fail on an unwritable output before spending minutes on training.
  {
    const std::filesystem::path parent = std::filesystem::path(weights_path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (!parent.empty() && !std::filesystem::is_directory(parent))
      throw OutputError(parent.string() + ": cannot create directory (" + ec.message() + ")");
  }

  // The test canvases are the same for every epoch (and every run): rendered once.
  at::Tensor test_pixels, test_labels;
  {
    std::vector<std::int64_t> indices(static_cast<std::size_t>(n_test));
    std::iota(indices.begin(), indices.end(), 0);
    render_canvases(test, indices.data(), n_test, options.test_canvas_seed, options.canvas, 0, test_pixels,
                    test_labels);
  }
  spdlog::info("training fashion_vgg on {} Fashion-MNIST canvases ({}x{}), testing on {}; {} epochs, batch {}, lr {}, "
               "label smoothing {}, seed {}, device {}, {} threads, {}",
               n_train, options.canvas.size, options.canvas.size, n_test, options.epochs, options.batch_size,
               options.learning_rate, options.label_smoothing, options.seed, options.device, at::get_num_threads(),
               precision);

  seed_everything(options.seed);
  std::unique_ptr<Network> network = build_fashion_vgg(10);
  network->to(device);
  network->set_parameters_trainable(true);
  network->set_training(true);
  AdamW optimiser(network->named_tensors(false), options.weight_decay);

  const std::int64_t batch = options.batch_size;
  const std::int64_t steps_per_epoch = (n_train + batch - 1) / batch;
  const std::int64_t total_steps = steps_per_epoch * options.epochs;
  const std::int64_t crop_steps = crop_steps_of(options, total_steps);

  std::unique_ptr<TrainingMovie> movie;
  if (!options.watch_dir.empty()) {
    movie = std::make_unique<TrainingMovie>(options.watch_dir, *network,
                                            movie_samples(test, options.test_canvas_seed, options.canvas),
                                            options.device);
    movie->record(*network, 0);
  }

  TrainResult result;
  std::vector<TestAccuracyPoint> test_points;
  std::int64_t step = 0;
  double window_loss = 0;
  std::int64_t window_correct = 0, window_items = 0, window_steps = 0;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    // Fisher-Yates with SplitMix64: the same order on every platform.
    std::vector<std::int64_t> order(static_cast<std::size_t>(n_train));
    std::iota(order.begin(), order.end(), 0);
    SplitMix64 shuffle_rng(options.seed * 0x2545F4914F6CDD1DULL + static_cast<std::uint64_t>(epoch) + 1);
    for (std::int64_t i = n_train - 1; i > 0; --i) {
      const int j = shuffle_rng.uniform_int(0, static_cast<int>(i));
      std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
    const std::uint64_t canvas_seed = train_canvas_seed(options.seed, epoch);

    double epoch_loss = 0;
    std::int64_t epoch_correct = 0;
    double render_s = 0, compute_s = 0, optimiser_s = 0;  // where the epoch's time goes (debug log)
    for (std::int64_t b = 0; b < steps_per_epoch; ++b) {
      const auto t0 = Clock::now();
      const std::int64_t begin = b * batch;
      const std::int64_t count = std::min(batch, n_train - begin);
      at::Tensor pixels, labels;
      const int crop = crop_at(options, step, crop_steps);
      render_canvases(train, order.data() + begin, count, canvas_seed, options.canvas, crop, pixels, labels);
      const at::Tensor target = labels.to(device);
      const auto t1 = Clock::now();
      render_s += std::chrono::duration<double>(t1 - t0).count();

      at::Tensor logits;
      {
        const ScopedCpuBf16Autocast autocast(bf16);
        logits = network->forward(normalise(pixels)).logits.to(at::kFloat);
      }
      const at::Tensor log_probs = at::log_softmax(logits, 1);
      at::Tensor loss = at::nll_loss(log_probs, target);
      // Label smoothing: the target puts label_smoothing / 10 on every class and the rest on the label.
      if (options.label_smoothing > 0)
        loss = loss * (1.0 - options.label_smoothing) - log_probs.mean(1).mean() * options.label_smoothing;
      loss.backward();
      const auto t2 = Clock::now();
      compute_s += std::chrono::duration<double>(t2 - t1).count();
      optimiser.step(learning_rate_at(options, step, total_steps));
      optimiser_s += seconds_since(t2);
      ++step;

      const double loss_value = loss.item<double>();
      const std::int64_t correct = logits.detach().argmax(1).eq(target).sum().item<std::int64_t>();
      if (!std::isfinite(loss_value))
        throw Error("training diverged at step " + std::to_string(step) + " (loss is not finite); try a smaller --lr");
      epoch_loss += loss_value * static_cast<double>(count);
      epoch_correct += correct;
      window_loss += loss_value;
      window_correct += correct;
      window_items += count;
      ++window_steps;

      const bool epoch_end = b + 1 == steps_per_epoch;
      if (step % options.log_every == 0 || epoch_end) {
        TrainCurvePoint point;
        point.step = step;
        point.epoch = epoch + static_cast<double>(b + 1) / static_cast<double>(steps_per_epoch);
        point.loss = window_loss / static_cast<double>(window_steps);
        point.accuracy = static_cast<double>(window_correct) / static_cast<double>(window_items);
        result.curve.push_back(point);
        spdlog::debug("step {}/{}: loss {:.4f}, accuracy {:.4f}", step, total_steps, point.loss, point.accuracy);
        window_loss = 0;
        window_correct = window_items = window_steps = 0;
      }
      if (movie && (step % options.watch_every == 0 || step == total_steps)) movie->record(*network, step);
      if (options.progress) options.progress(static_cast<std::size_t>(step), static_cast<std::size_t>(total_steps), "train");
    }

    const auto eval_start = Clock::now();
    std::vector<double> per_class;
    const double accuracy = evaluate(*network, test_pixels, test_labels, normalise, options.progress, &per_class);
    result.test_accuracy_per_epoch.push_back(accuracy);
    test_points.push_back({step, static_cast<double>(epoch + 1), accuracy});
    // Until the whole-canvas phase the network has only seen crops, and its BatchNorm statistics do not
    // match whole canvases yet: say so, or an early low test accuracy looks like a failure.
    spdlog::info("epoch {}/{}: loss {:.4f}, train accuracy {:.4f}, test accuracy {:.4f}{}, {:.1f} s", epoch + 1,
                 options.epochs, epoch_loss / static_cast<double>(n_train),
                 static_cast<double>(epoch_correct) / static_cast<double>(n_train), accuracy,
                 crop_at(options, step - 1, crop_steps) > 0 ? " (trained on crops so far; whole canvases come last)" : "",
                 seconds_since(epoch_start));
    spdlog::debug("epoch {} time: rendering {:.1f} s, forward+backward {:.1f} s, optimiser {:.1f} s, evaluation {:.1f} s",
                  epoch + 1, render_s, compute_s, optimiser_s, seconds_since(eval_start));
    std::string classes;
    for (std::size_t c = 0; c < per_class.size(); ++c)
      classes += (c ? ", " : "") + fashion_mnist_class_names()[c] + " " + std::to_string(per_class[c]).substr(0, 4);
    spdlog::debug("test accuracy per class: {}", classes);
  }
  result.test_accuracy = result.test_accuracy_per_epoch.back();
  result.steps = step;
  result.precision = precision;

  network->set_training(false);
  network->set_parameters_trainable(false);
  char accuracy_text[32];
  std::snprintf(accuracy_text, sizeof(accuracy_text), "%.4f", result.test_accuracy);
  const std::string source = "cnnvis train, seed " + std::to_string(options.seed) + ", " + std::to_string(options.epochs) +
                             " epochs, " + precision + ", test accuracy " + accuracy_text;
  save_weights(*network, weights_path, {{"source", source}, {"architecture", "fashion_vgg"}});
  card.weights_file = std::filesystem::path(weights_path).filename().string();
  card.weights_sha256 = sha256_file(weights_path);
  card.source = source;
  const std::string card_path = card_path_for(weights_path);
  write_model_card(card, card_path);
  result.weights_path = weights_path;
  result.card_path = card_path;

  if (movie) result.movie_files = movie->finish(result.curve, test_points);
  result.seconds = seconds_since(start);
  spdlog::info("trained in {:.1f} s: test accuracy {:.4f}; weights {}, card {}", result.seconds, result.test_accuracy,
               weights_path, card_path);
  return result;
}

}  // namespace cnnvis
