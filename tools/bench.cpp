// Benchmark: forward-only and explanation cost per image, printed as JSON. Ratios are measured in the
// same run so that they survive a noisy shared machine. Weights are random (speed does not depend on
// their values); run by scripts/bench.sh.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "cnnvis/core/runtime.h"
#include "cnnvis/methods/gradcam.h"
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

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models = {"vgg16", "googlenet", "fashion_vgg"};
  std::string device = "auto";
  int repeats = 3;
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
    } else if (arg == "--repeats" && i + 1 < argc) {
      repeats = std::max(1, std::stoi(argv[++i]));
    } else {
      std::cerr << "usage: cnnvis_bench [--models a,b] [--device auto|cpu|cuda] [--repeats N]\n";
      return 2;
    }
  }
  RuntimeInfo runtime = configure_runtime({device, 0});
  at::manual_seed(0);
  nlohmann::json report;
  report["device"] = runtime.device;
  report["threads"] = runtime.threads;
  report["libtorch"] = runtime.libtorch_version;
  report["repeats"] = repeats;
  report["models"] = nlohmann::json::object();
  for (const std::string& name : models) {
    ModelCard card = default_model_card(name);
    std::unique_ptr<Network> net = name == "vgg16"       ? build_vgg16()
                                   : name == "googlenet" ? build_googlenet(card.transform_input)
                                                         : build_fashion_vgg();
    net->initialize_parameters();
    LoadedModel model = LoadedModel::from_network(std::move(net), card, runtime.device);
    nlohmann::json entry;
    for (int batch : {1, 8}) {
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
      }
    }
    report["models"][name] = entry;
    std::cerr << name << ": " << entry.dump() << "\n";
  }
  std::cout << report.dump(2) << "\n";
  return 0;
}
