// The training movie: conv activations of fixed samples recorded per layer and step, written as PNG
// frames (movie_frames.h), an animated GIF per layer (io/gif.h), and the loss/accuracy curves.
#include "cnnvis/methods/training_movie.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/io/gif.h"
#include "cnnvis/io/image_io.h"
#include "cnnvis/methods/tensor_image.h"
#include "cnnvis/models/network.h"
#include "cnnvis/models/registry.h"

namespace cnnvis {

// ---------------------------------------------------------------------------------------------------
// Recorder

struct TrainingMovie::Impl {
  at::Tensor input;
  std::vector<cv::Mat> sample_images;
  std::vector<std::string> titles;
  std::vector<std::unique_ptr<GifWriter>> gifs;
  int max_channels = 16;
};

namespace {

// Restores the network's mode however the recording ends.
class TrainingModeGuard {
 public:
  explicit TrainingModeGuard(Network& network) : network_(network), was_(network.training()) {}
  ~TrainingModeGuard() { network_.set_training(was_); }
  TrainingModeGuard(const TrainingModeGuard&) = delete;
  TrainingModeGuard& operator=(const TrainingModeGuard&) = delete;

 private:
  Network& network_;
  bool was_;
};

void make_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!std::filesystem::is_directory(dir)) throw OutputError(dir.string() + ": cannot create directory (" + ec.message() + ")");
}

}  // namespace

TrainingMovie::TrainingMovie(const std::string& dir, const Network& network, std::vector<MovieSample> samples,
                             const std::string& device, int max_channels)
    : impl_(std::make_unique<Impl>()), dir_(dir) {
  if (samples.empty()) throw UsageError("training movie: no sample images");
  if (max_channels < 1) throw UsageError("training movie: max_channels must be at least 1");
  impl_->max_channels = max_channels;
  for (const Node* node : network.nodes()) {
    if (node->type() != "Conv2d") continue;
    layers_.push_back(node->name());
    // "features.0 (conv1)": the alias is the name people know the layer by.
    std::string title = node->name();
    for (const auto& [alias, target] : network.aliases()) {
      if (target == node->name() && alias.rfind("conv", 0) == 0) title += " (" + alias + ")";
    }
    impl_->titles.push_back(title);
  }
  if (layers_.empty()) throw UsageError("training movie: the network has no Conv2d layers");

  ModelCard card = default_model_card("fashion_vgg");
  card.input_height = samples.front().rgb.rows;
  card.input_width = samples.front().rgb.cols;
  std::vector<cv::Mat> inputs;
  for (const MovieSample& s : samples) {
    cv::Mat f;
    s.rgb.convertTo(f, CV_32FC3, 1.0 / 255.0);
    inputs.push_back(f);
    impl_->sample_images.push_back(s.rgb);
  }
  impl_->input = images_to_tensor(inputs, card, at::Device(device));

  make_directory(dir);
  for (const std::string& layer : layers_) make_directory(std::filesystem::path(dir) / layer);
}

TrainingMovie::~TrainingMovie() = default;

void TrainingMovie::record(Network& network, std::int64_t step) {
  ForwardRequest request;
  request.taps = layers_;
  request.need_logits = false;
  ForwardResult result;
  {
    TrainingModeGuard mode(network);
    network.set_training(false);
    at::NoGradGuard no_grad;
    result = network.forward(impl_->input, request);
  }
  const std::size_t frame_index = steps_.size();
  char frame_name[32];
  std::snprintf(frame_name, sizeof(frame_name), "frame_%05zu.png", frame_index);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const at::Tensor maps = result.taps.at(layers_[l]).detach().to(at::kCPU, at::kFloat);
    const std::int64_t channels = std::min<std::int64_t>(maps.size(1), impl_->max_channels);
    std::vector<int> ids;
    for (std::int64_t c = 0; c < channels; ++c) ids.push_back(static_cast<int>(c));
    std::vector<std::vector<cv::Mat>> per_sample(static_cast<std::size_t>(maps.size(0)));
    for (std::int64_t s = 0; s < maps.size(0); ++s) {
      for (std::int64_t c = 0; c < channels; ++c) per_sample[static_cast<std::size_t>(s)].push_back(tensor_to_map(maps[s][c]));
    }
    const cv::Mat frame = render_activation_frame(impl_->sample_images, per_sample, ids, impl_->titles[l], step);
    const std::string png = (std::filesystem::path(dir_) / layers_[l] / frame_name).string();
    write_png(png, frame);
    files_.push_back(png);
    if (impl_->gifs.size() <= l) {
      const std::string gif = (std::filesystem::path(dir_) / (layers_[l] + ".gif")).string();
      impl_->gifs.push_back(std::make_unique<GifWriter>(gif, frame.cols, frame.rows, 25));
    }
    impl_->gifs[l]->add_frame(frame);
  }
  steps_.push_back(step);
}

std::vector<std::string> TrainingMovie::finish(const std::vector<TrainCurvePoint>& curve,
                                               const std::vector<TestAccuracyPoint>& test) {
  for (auto& gif : impl_->gifs) {
    gif->close();
    files_.push_back(gif->path());
  }
  const std::string png = (std::filesystem::path(dir_) / "curves.png").string();
  write_png(png, render_training_curves(curve, test));
  files_.push_back(png);

  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : curve)
    points.push_back({{"step", p.step}, {"epoch", p.epoch}, {"loss", p.loss}, {"accuracy", p.accuracy}});
  nlohmann::json tests = nlohmann::json::array();
  for (const auto& p : test) tests.push_back({{"step", p.step}, {"epoch", p.epoch}, {"accuracy", p.accuracy}});
  nlohmann::json doc = {{"train", std::move(points)},
                        {"test", std::move(tests)},
                        {"frame_steps", steps_},
                        {"layers", layers_},
                        {"classes", fashion_mnist_class_names()}};
  const std::string json_path = (std::filesystem::path(dir_) / "curves.json").string();
  std::ofstream out(json_path, std::ios::binary | std::ios::trunc);
  if (!out) throw OutputError(json_path + ": cannot open for writing");
  out << doc.dump(2) << '\n';
  out.close();
  if (!out) throw OutputError(json_path + ": write failed");
  files_.push_back(json_path);
  spdlog::info("training movie: {} frames of {} layers in {}", steps_.size(), layers_.size(), dir_);
  return files_;
}

}  // namespace cnnvis
