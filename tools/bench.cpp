// Benchmark: forward-only and explanation cost per image, printed as JSON. Ratios are measured in the
// same run so that they survive a noisy shared machine. Weights are random (speed does not depend on
// their values); run by scripts/bench.sh.
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/runtime.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/canvas.h"
#include "cnnvis/io/idx.h"
#include "cnnvis/methods/activation_max.h"
#include "cnnvis/methods/backprop.h"
#include "cnnvis/methods/evaluate.h"
#include "cnnvis/methods/gradcam.h"
#include "cnnvis/methods/occlusion.h"
#include "cnnvis/methods/pointing_game.h"
#include "cnnvis/methods/predict.h"
#include "cnnvis/methods/saliency.h"
#include "cnnvis/methods/train.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/architectures.h"
#include "cnnvis/models/loaded_model.h"
#include "cnnvis/models/network.h"
#include "cnnvis/models/registry.h"

using namespace cnnvis;

namespace {

double median_ms(int repeats, const std::function<void()>& run) {
  run();  // warm-up: allocator, kernels, lazy initialisation
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::vector<cv::Mat> random_inputs(int n, int h, int w) {
  std::vector<cv::Mat> out;
  cv::RNG rng(7);
  for (int i = 0; i < n; ++i) {
    cv::Mat m(h, w, CV_32FC3);
    rng.fill(m, cv::RNG::UNIFORM, 0.0, 1.0);
    out.push_back(m);
  }
  return out;
}

// Spearman rank correlation of two maps (Adebayo et al.'s measure for the randomisation test).
double spearman(const cv::Mat& a, const cv::Mat& b) {
  auto ranks = [](const cv::Mat& m) {
    cv::Mat flat = m.reshape(1, 1).clone();
    std::vector<int> order(flat.cols);
    for (int i = 0; i < flat.cols; ++i) order[i] = i;
    const float* v = flat.ptr<float>();
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return v[x] < v[y]; });
    std::vector<double> r(flat.cols);
    for (int i = 0; i < flat.cols;) {  // ties share their mean rank
      int j = i;
      while (j + 1 < flat.cols && v[order[j + 1]] == v[order[i]]) ++j;
      for (int k = i; k <= j; ++k) r[order[k]] = (i + j) / 2.0;
      i = j + 1;
    }
    return r;
  };
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) ma += ra[i], mb += rb[i];
  ma /= ra.size(), mb /= rb.size();
  double cov = 0, va = 0, vb = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) {
    cov += (ra[i] - ma) * (rb[i] - mb);
    va += (ra[i] - ma) * (ra[i] - ma);
    vb += (rb[i] - mb) * (rb[i] - mb);
  }
  return va > 0 && vb > 0 ? cov / std::sqrt(va * vb) : 0.0;
}

using MapsFn = std::function<std::vector<cv::Mat>(LoadedModel&, const std::vector<cv::Mat>&)>;

// Every explanation the benchmark scores, as "maps at model-input size for a batch".
std::vector<std::pair<std::string, MapsFn>> explanation_methods() {
  std::vector<std::pair<std::string, MapsFn>> out;
  for (const std::string& name : cam_method_names()) {
    out.emplace_back(name, [name](LoadedModel& m, const std::vector<cv::Mat>& in) {
      GradCamOptions o;
      o.method = parse_cam_method(name);
      std::vector<cv::Mat> maps;
      for (auto& r : run_gradcam(m, in, o)) maps.push_back(r.cam);
      return maps;
    });
  }
  for (BackpropMode mode : {BackpropMode::guided, BackpropMode::deconv, BackpropMode::vanilla}) {
    out.emplace_back(std::string("backprop-") + backprop_mode_name(mode), [mode](LoadedModel& m, const std::vector<cv::Mat>& in) {
      BackpropOptions o;
      o.mode = mode;
      std::vector<cv::Mat> maps;
      for (auto& r : run_backprop(m, in, o)) maps.push_back(r.magnitude);
      return maps;
    });
  }
  auto saliency = [](int smooth, int integrated) {
    return [smooth, integrated](LoadedModel& m, const std::vector<cv::Mat>& in) {
      SaliencyOptions o;
      o.smooth_samples = smooth;
      o.integrated_steps = integrated;
      std::vector<cv::Mat> maps;
      for (auto& r : run_saliency(m, in, o)) maps.push_back(r.map);
      return maps;
    };
  };
  out.emplace_back("saliency", saliency(0, 0));
  out.emplace_back("smoothgrad-16", saliency(16, 0));
  out.emplace_back("integrated-gradients-16", saliency(0, 16));
  out.emplace_back("occlusion", [](LoadedModel& m, const std::vector<cv::Mat>& in) {
    std::vector<cv::Mat> maps;
    for (auto& e : explain(m, in, "occlusion")) maps.push_back(e.map);
    return maps;
  });
  return out;
}

// With the demo model on test canvases: accuracy, the pointing-game hit rate of every method, and the
// randomisation sanity check (rank correlation between the maps of the trained and of a freshly
// initialised network; a method whose maps do not depend on the weights scores near 1).
nlohmann::json demo_quality(const std::string& device, int count) {
  nlohmann::json out;
  ModelLoadOptions load;
  load.model = "fashion_vgg";
  load.device = device;
  LoadedModel trained = LoadedModel::load(load);
  at::manual_seed(12345);
  LoadedModel random = LoadedModel::from_network(build_fashion_vgg(), trained.card(), device);

  const FashionMnistSplit test = load_fashion_mnist(kFashionMnistDir, "test");
  CanvasOptions canvas;
  canvas.size = trained.card().input_width;
  std::vector<Canvas> canvases;
  std::vector<cv::Mat> inputs;
  for (int i = 0; i < count; ++i) {
    canvases.push_back(make_canvas_from_split(test, i, kTestCanvasSeed, canvas));
    cv::Mat f;
    canvases.back().rgb.convertTo(f, CV_32FC3, 1.0 / 255);
    inputs.push_back(f);
  }
  int correct = 0;
  std::vector<int> predicted;
  for (int first = 0; first < count; first += 64) {
    std::vector<cv::Mat> batch(inputs.begin() + first, inputs.begin() + std::min(count, first + 64));
    auto predictions = run_predict(trained, batch, PredictOptions{1});
    for (std::size_t i = 0; i < batch.size(); ++i) {
      correct += predictions[i][0].index == canvases[first + i].label;
      predicted.push_back(predictions[i][0].index);
    }
  }
  out["canvases"] = count;
  out["accuracy"] = static_cast<double>(correct) / count;
  out["methods"] = nlohmann::json::object();
  for (auto& [name, fn] : explanation_methods()) {
    int hits = 0, increases = 0;
    double correlation = 0, deletion = 0, insertion = 0, drop = 0;
    for (int first = 0; first < count; first += 32) {
      std::vector<cv::Mat> batch(inputs.begin() + first, inputs.begin() + std::min(count, first + 32));
      const auto maps = fn(trained, batch);
      const auto random_maps = fn(random, batch);
      // Every method explains the predicted class ("top"), so that is the class scored.
      const std::vector<int> targets(predicted.begin() + first, predicted.begin() + first + batch.size());
      const auto scores = score_explanations(trained, batch, maps, targets, EvaluateOptions{});
      for (std::size_t i = 0; i < batch.size(); ++i) {
        hits += pointing_game_hit(maps[i], canvases[first + i].box);
        correlation += spearman(maps[i], random_maps[i]);
        deletion += scores[i].deletion_auc;
        insertion += scores[i].insertion_auc;
        drop += scores[i].drop;
        increases += scores[i].increase;
      }
    }
    out["methods"][name] = {{"pointing_game", static_cast<double>(hits) / count},
                            {"rank_correlation_trained_vs_random", correlation / count},
                            {"deletion_auc", deletion / count},
                            {"insertion_auc", insertion / count},
                            {"average_drop_percent", 100.0 * drop / count},
                            {"increase_in_confidence_percent", 100.0 * increases / count}};
    std::cerr << "demo " << name << ": " << out["methods"][name].dump() << "\n";
  }
  return out;
}

// Occlusion on VGG16 at 224 px: the incremental engine against batched brute force (Captum's floor),
// both on the same image, interleaved repeat by repeat so that machine noise hits both alike.
nlohmann::json occlusion_benchmark(const std::string& device, int repeats, int patch, int stride, int batch) {
  ModelCard card = default_model_card("vgg16");
  at::manual_seed(0);
  std::unique_ptr<Network> net = build_vgg16();
  net->initialize_parameters();
  LoadedModel model = LoadedModel::from_network(std::move(net), card, device);
  const cv::Mat image = random_inputs(1, card.input_height, card.input_width)[0];
  OcclusionOptions options;
  options.patch = patch;
  options.stride = stride;
  options.batch_size = batch;
  OcclusionOptions naive = options;
  naive.exact_naive = true;
  const OcclusionPlan plan = plan_occlusion(model, options);
  std::vector<double> fast_ms, naive_ms;
  OcclusionResult fast_result, naive_result;
  auto timed = [&](const OcclusionOptions& o, OcclusionResult& out) {
    const auto start = std::chrono::steady_clock::now();
    out = run_occlusion(model, {image}, o)[0];
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  timed(options, fast_result);  // warm-up
  for (int r = 0; r < repeats; ++r) {
    naive_ms.push_back(timed(naive, naive_result));
    fast_ms.push_back(timed(options, fast_result));
    std::cerr << "occlusion repeat " << r + 1 << ": exact_naive " << naive_ms.back() << " ms, incremental "
              << fast_ms.back() << " ms\n";
  }
  std::sort(fast_ms.begin(), fast_ms.end());
  std::sort(naive_ms.begin(), naive_ms.end());
  const double fast = fast_ms[fast_ms.size() / 2], slow = naive_ms[naive_ms.size() / 2];
  double scale = 0;
  cv::minMaxLoc(cv::abs(naive_result.map), nullptr, &scale);
  return {{"model", "vgg16"}, {"input", card.input_width}, {"patch", patch}, {"stride", stride},
          {"windows", naive_result.windows.size()}, {"batch_size", batch},
          {"incremental_layers", plan.incremental_layers}, {"layers", plan.layers},
          {"full_from", plan.full_from}, {"exact_naive_ms", slow}, {"incremental_ms", fast},
          {"speedup", slow / fast},
          {"max_abs_difference", cv::norm(naive_result.map, fast_result.map, cv::NORM_INF)},
          {"max_abs_map", scale}};
}

// Feature visualisation: one optimisation step (Fourier + decorrelation, transforms, forward to the layer,
// backward, Adam) against one plain forward+backward of the same batch to the same layer at the size the
// network sees after the transforms (size + 2 pad - both jitters at scale 1). The step time is (time of
// S steps - time of 0 steps) / S, so the start/final evaluations drop out. Steps use the standard ReLU
// (the redirected ReLU runs only in the first 16 of Lucid's 512 steps); redirected_step_ms shows its cost.
nlohmann::json featvis_bench(LoadedModel& model, const std::string& layer, int units, int size, int steps, int repeats) {
  std::vector<Objective> objectives;
  for (int c = 0; c < units; ++c) objectives.push_back(Objective{ObjectiveKind::channel, layer, c});
  ActivationMaxOptions options;
  options.width = options.height = size;
  options.redirect_steps = 0;
  options.steps = 0;
  const double without = median_ms(repeats, [&] { run_activation_max(model, objectives, options); });
  options.steps = steps;
  const double with_steps = median_ms(repeats, [&] { run_activation_max(model, objectives, options); });
  options.redirect_steps = steps;
  const double redirected = median_ms(repeats, [&] { run_activation_max(model, objectives, options); });
  const double step_ms = std::max(1e-6, (with_steps - without) / steps);
  const double redirected_step_ms = std::max(1e-6, (redirected - without) / steps);
  const int seen = size + 2 * options.transforms.pad - options.transforms.jitter - options.transforms.final_jitter;

  ForwardRequest request;
  request.taps = {model.resolve_layer(layer)};
  request.need_logits = false;
  const double fwd_bwd = median_ms(repeats, [&] {
    at::AutoGradMode grad(true);
    at::Tensor x = at::rand({units, 3, seen, seen}).to(at::Device(model.device())).requires_grad_(true);
    const ForwardResult r = model.network().forward(x, request);
    r.taps.at(request.taps[0]).narrow(1, 0, 1).mean().backward();
    (void)x.grad().sum().item<float>();
  });
  return {{"layer", layer}, {"units", units}, {"size", size}, {"network_input", seen}, {"steps", steps},
          {"step_ms", step_ms}, {"steps_per_second", 1000.0 / step_ms}, {"redirected_step_ms", redirected_step_ms},
          {"forward_backward_ms", fwd_bwd}, {"step_over_forward_backward", step_ms / fwd_bwd}};
}

// A built-in network (vgg16, googlenet, fashion_vgg) with its default card and seeded random weights:
// speed does not depend on their values.
LoadedModel random_native_model(const std::string& name, const std::string& device) {
  const ModelCard card = default_model_card(name);
  std::unique_ptr<Network> net = name == "vgg16"       ? build_vgg16()
                                 : name == "googlenet" ? build_googlenet(card.transform_input)
                                                       : build_fashion_vgg();
  net->initialize_parameters();
  return LoadedModel::from_network(std::move(net), card, device);
}

// Forward and Grad-CAM ms per image at batch 8 of a loaded model (at `layer`; empty: the card's default).
nlohmann::json gradcam_cost(LoadedModel& model, const std::string& device, int repeats, const std::string& layer = "") {
  const ModelCard& card = model.card();
  auto inputs = random_inputs(8, card.input_height, card.input_width);
  const double forward = median_ms(repeats, [&] {
    at::NoGradGuard guard;
    at::Tensor x = images_to_tensor(inputs, card, at::Device(device));
    (void)model.network().forward(x).logits.sum().item<float>();
  });
  GradCamOptions options;
  options.layer = layer;
  const double gradcam = median_ms(repeats, [&] { run_gradcam(model, inputs, options); });
  return {{"layer", layer.empty() ? card.default_layer : layer}, {"forward_ms_per_image_batch8", forward / 8},
          {"gradcam_ms_per_image_batch8", gradcam / 8}, {"gradcam_over_forward_batch8", gradcam / forward}};
}

// TorchScript files (FILE.pt or FILE.pt=NATIVE): their Grad-CAM cost, and for FILE.pt=vgg16 the native
// network's in the same run, so that the generic path's overhead is a ratio measured side by side.
nlohmann::json torchscript_benchmark(const std::vector<std::string>& files, const std::string& device, int repeats) {
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& spec : files) {
    const auto eq = spec.find('=');
    ModelLoadOptions load;
    load.model = spec.substr(0, eq);
    load.device = device;
    LoadedModel model = LoadedModel::load(load);
    const std::string native = eq == std::string::npos ? "" : spec.substr(eq + 1);
    const ModelCard card = native.empty() ? ModelCard{} : default_model_card(native);
    // Side by side at the native network's default layer: torchvision's module paths are its names.
    nlohmann::json entry = gradcam_cost(model, device, repeats, native.empty() ? "" : card.default_layer);
    if (!native.empty()) {
      LoadedModel native_model = random_native_model(native, device);
      const nlohmann::json n = gradcam_cost(native_model, device, repeats);
      entry["native_" + native] = n;
      entry["forward_torchscript_over_native"] =
          entry["forward_ms_per_image_batch8"].get<double>() / n["forward_ms_per_image_batch8"].get<double>();
      entry["gradcam_torchscript_over_native"] =
          entry["gradcam_ms_per_image_batch8"].get<double>() / n["gradcam_ms_per_image_batch8"].get<double>();
    }
    std::cerr << load.model << ": " << entry.dump() << "\n";
    out[load.model] = entry;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models = {"vgg16", "googlenet", "fashion_vgg"};
  std::vector<std::string> torchscript_files;
  std::string device = "auto";
  int repeats = 3;
  int demo_count = 500;
  bool occlusion_only = false;
  int patch = 32, stride = 16, occlusion_batch = 16, threads = 0;
  bool featvis = true, only_featvis = false;
  int featvis_steps = 10, featvis_size = 128, featvis_units = 4;
  std::string kernels = "onednn";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--models" && i + 1 < argc) {
      models.clear();
      std::string list = argv[++i];
      for (std::size_t start = 0, end; start <= list.size(); start = end + 1) {
        end = list.find(',', start);
        if (end == std::string::npos) end = list.size();
        models.push_back(list.substr(start, end - start));
      }
    } else if (arg == "--device" && i + 1 < argc) {
      device = argv[++i];
    } else if (arg == "--demo-canvases" && i + 1 < argc) {
      demo_count = std::max(0, std::stoi(argv[++i]));
    } else if (arg == "--torchscript" && i + 1 < argc) {
      torchscript_files = split(argv[++i], ',');
    } else if (arg == "--occlusion") {
      occlusion_only = true;
    } else if (arg == "--patch" && i + 1 < argc) {
      patch = std::stoi(argv[++i]);
    } else if (arg == "--stride" && i + 1 < argc) {
      stride = std::stoi(argv[++i]);
    } else if (arg == "--batch-size" && i + 1 < argc) {
      occlusion_batch = std::stoi(argv[++i]);
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = std::stoi(argv[++i]);
    } else if (arg == "--no-featvis") {
      featvis = false;
    } else if (arg == "--only-featvis") {
      only_featvis = true;
      demo_count = 0;
    } else if (arg == "--featvis-steps" && i + 1 < argc) {
      featvis_steps = std::max(1, std::stoi(argv[++i]));
    } else if (arg == "--featvis-size" && i + 1 < argc) {
      featvis_size = std::max(16, std::stoi(argv[++i]));
    } else if (arg == "--featvis-units" && i + 1 < argc) {
      featvis_units = std::max(1, std::stoi(argv[++i]));
    } else if (arg == "--kernels" && i + 1 < argc) {
      kernels = argv[++i];
      if (kernels != "onednn" && kernels != "onednn-per-image" && kernels != "native") {
        std::cerr << "--kernels: onednn, onednn-per-image or native\n";
        return 2;
      }
    } else if (arg == "--repeats" && i + 1 < argc) {
      repeats = std::max(1, std::stoi(argv[++i]));
    } else {
      std::cerr << "usage: cnnvis_bench [--models a,b] [--device auto|cpu|cuda] [--repeats N] [--demo-canvases N] [--threads N]\n"
                   "                    [--no-featvis | --only-featvis] [--featvis-steps N] [--featvis-size PX]\n"
                   "                    [--featvis-units N] [--kernels onednn|onednn-per-image|native]\n"
                   "       cnnvis_bench --torchscript FILE.pt[=vgg16][,...] [--repeats N]\n"
                   "       cnnvis_bench --occlusion [--patch 32] [--stride 16] [--batch-size 16] [--repeats N]\n";
      return 2;
    }
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("bench"));  // stdout carries only the JSON report
  // CPU convolutions: onednn (batched, --fast in the CLI), onednn-per-image (the CLI's default) or native.
  RuntimeInfo runtime = configure_runtime({device, threads, kernels != "onednn", kernels == "onednn-per-image"});
  at::manual_seed(0);
  nlohmann::json report;
  report["device"] = runtime.device;
  report["threads"] = runtime.threads;
  report["cpu_convolutions"] = runtime.cpu_convolutions;
  report["libtorch"] = runtime.libtorch_version;
  report["repeats"] = repeats;
  if (!torchscript_files.empty()) {
    report["torchscript"] = torchscript_benchmark(torchscript_files, runtime.device, repeats);
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  if (occlusion_only) {
    report["occlusion"] = occlusion_benchmark(runtime.device, repeats, patch, stride, occlusion_batch);
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  report["models"] = nlohmann::json::object();
  for (const std::string& name : models) {
    LoadedModel model = random_native_model(name, runtime.device);
    const ModelCard& card = model.card();
    nlohmann::json entry;
    for (int batch : {1, 8}) {
      if (only_featvis) break;
      auto inputs = random_inputs(batch, card.input_height, card.input_width);
      const double forward = median_ms(repeats, [&] {
        c10::InferenceMode guard;
        at::Tensor x = images_to_tensor(inputs, card, at::Device(runtime.device));
        at::Tensor logits = model.network().forward(x).logits;
        (void)logits.sum().item<float>();  // synchronise
      });
      entry["forward_ms_per_image_batch" + std::to_string(batch)] = forward / batch;
      if (batch == 8) {
        GradCamOptions options;
        const double gradcam = median_ms(repeats, [&] { run_gradcam(model, inputs, options); });
        entry["gradcam_ms_per_image_batch8"] = gradcam / batch;
        entry["gradcam_over_forward_batch8"] = gradcam / forward;
        BackpropOptions guided;
        const double backprop = median_ms(repeats, [&] { run_backprop(model, inputs, guided); });
        entry["guided_backprop_ms_per_image_batch8"] = backprop / batch;
        entry["guided_backprop_over_forward_batch8"] = backprop / forward;
        SaliencyOptions vanilla;
        const double saliency = median_ms(repeats, [&] { run_saliency(model, inputs, vanilla); });
        entry["saliency_ms_per_image_batch8"] = saliency / batch;
        entry["saliency_over_forward_batch8"] = saliency / forward;
      }
    }
    if (featvis || only_featvis) {
      const std::string layer = name == "vgg16" ? "relu4_3" : name == "googlenet" ? "inception4c" : "relu4";
      entry["activation_max"] = featvis_bench(model, layer, featvis_units, featvis_size, featvis_steps, repeats);
    }
    report["models"][name] = entry;
    std::cerr << name << ": " << entry.dump() << "\n";
  }
  if (demo_count > 0) {
    try {
      report["demo_model"] = demo_quality(runtime.device, demo_count);
    } catch (const std::exception& e) {
      report["demo_model"] = {{"skipped", e.what()}};
    }
  }
  std::cout << report.dump(2) << "\n";
  return 0;
}
