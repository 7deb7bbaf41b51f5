// index.html next to a run's manifest.json: a self-contained page (no network, plain inline CSS and JS)
// to browse what a run produced: per input the input picture, every image output grouped per method,
// layer and target, the predicted classes with scores, links to the raw files; run-level pictures
// (atlases, t-SNE maps, summary sheets); a zoom-and-pan viewer for any picture; a filter box.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cnnvis {

struct HtmlIndexOptions {
  std::size_t max_entries = 5000;  // inputs shown; beyond that the page says how many were left out
};

// The page for a manifest whose outputs are relative to out_dir. Only files that exist under out_dir
// are referenced (links to original inputs are relative to out_dir and only made when they exist).
std::string render_index_html(const nlohmann::json& manifest, const std::string& out_dir,
                              const HtmlIndexOptions& options = {});

// Reads out_dir/manifest.json and writes out_dir/index.html atomically. Throws InputError for a
// missing or malformed manifest, OutputError when the page cannot be written.
void write_index_html(const std::string& out_dir, const HtmlIndexOptions& options = {});

// Every local file the page references (src and href values that are not anchors), relative to the
// page's directory, in order of appearance. For tests and `cnnvis compare`.
std::vector<std::string> html_local_references(const std::string& html);

std::string html_escape(const std::string& text);

}  // namespace cnnvis
