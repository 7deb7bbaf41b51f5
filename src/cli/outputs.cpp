#include "outputs.h"

#include <algorithm>
#include <filesystem>

#include <opencv2/imgproc.hpp>

#include "cnnvis/io/image_io.h"
#include "cnnvis/io/npy.h"
#include "cnnvis/io/render.h"

namespace cnnvis::cli {

cv::Mat display_image(const cv::Mat& rgb, int display_size) {
  const int longest = std::max(rgb.cols, rgb.rows);
  if (display_size <= 0 || longest <= display_size) return rgb;
  const double scale = static_cast<double>(display_size) / longest;
  cv::Mat out;
  cv::resize(rgb, out, cv::Size(), scale, scale, cv::INTER_AREA);
  return out;
}

cv::Mat map_on_display(const cv::Mat& map, const BatchItem& item, cv::Size display, bool area_when_shrinking) {
  const cv::Mat on_source = map_to_source(map, item.region, item.image.rgb.size());
  const bool area = area_when_shrinking && display.width < on_source.cols;
  cv::Mat shown;
  cv::resize(on_source, shown, display, 0, 0, area ? cv::INTER_AREA : cv::INTER_LINEAR);
  return shown;
}

void write_output_png(const Manifest& manifest, ManifestEntry& entry, const std::string& name,
                      const std::string& file_name, const cv::Mat& image) {
  write_png((std::filesystem::path(manifest.out_dir()) / file_name).string(), image);
  entry.outputs.emplace_back(name, file_name);
}

void write_output_npy(const Manifest& manifest, ManifestEntry& entry, const std::string& name,
                      const std::string& file_name, const cv::Mat& map) {
  write_npy((std::filesystem::path(manifest.out_dir()) / file_name).string(), map);
  entry.outputs.emplace_back(name, file_name);
}

void write_map_pictures(const Manifest& manifest, const BatchItem& item, const std::string& tag, const cv::Mat& map01,
                        const OutputOptions& output, Colormap colormap) {
  ManifestEntry& entry = *item.entry;
  write_output_png(manifest, entry, "map", item.stem + "." + tag + ".png", apply_colormap(map01, colormap));
  if (output.png16) {
    const std::string name = item.stem + "." + tag + ".map16.png";
    write_png16((std::filesystem::path(manifest.out_dir()) / name).string(), map01);
    entry.outputs.emplace_back("map16", name);
  }
  const cv::Mat source = display_image(item.image.rgb, output.display_size);
  write_output_png(manifest, entry, "overlay", item.stem + "." + tag + ".overlay.png",
                   overlay_heatmap(source, map_on_display(map01, item, source.size()), colormap, output.alpha));
}

nlohmann::json predictions_json(const std::vector<Prediction>& predictions) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : predictions) {
    out.push_back({{"index", p.index}, {"label", p.label}, {"logit", p.logit}, {"probability", p.probability}});
  }
  return out;
}

}  // namespace cnnvis::cli
