// cnnvis merge-manifests: joins the manifests of a sharded run (--shard I/N) into one, with index.html.
#include <cstdio>
#include <memory>

#include <spdlog/spdlog.h>

#include "cnnvis/core/text.h"
#include "cnnvis/io/batch.h"
#include "commands.h"
#include "common.h"

namespace cnnvis::cli {

namespace {
struct MergeCommandOptions {
  std::vector<std::string> parts;
  std::string out;
  MergeOptions merge;
};
}  // namespace

void setup_merge_manifests(CLI::App& app) {
  auto options = std::make_shared<MergeCommandOptions>();
  auto* cmd = app.add_subcommand("merge-manifests", "join the output directories of a sharded run into one manifest + index.html");
  cmd->add_option("parts", options->parts, "output directories of the shards (each with manifest.json)")->required();
  cmd->add_option("-o,--out", options->out, "directory of the merged manifest.json (outputs are referenced relative to it)")->required();
  cmd->add_flag("--copy", options->merge.copy, "copy every output into --out so it stands alone");
  cmd->add_flag("--force", options->merge.force, "merge parts run with different commands or settings");
  cmd->callback([options] {
    const MergeResult r = merge_manifests(options->parts, options->out, options->merge);
    std::printf("merged %zu parts: %zu inputs (%zu duplicates dropped)%s -> %s/manifest.json\n", r.parts, r.inputs, r.duplicates,
                r.copied ? (", " + std::to_string(r.copied) + " files copied").c_str() : "", options->out.c_str());
    if (!r.missing_shards.empty()) {
      std::vector<std::string> missing;
      for (int i : r.missing_shards) missing.push_back(std::to_string(i));
      spdlog::warn("no part covers shard(s) {}: the merged run is incomplete", join(missing, ", "));
      command_exit_code() = 1;
    }
    const std::size_t errors = r.manifest["summary"].value("error", std::size_t{0});
    if (errors > 0) command_exit_code() = 1;
  });
}

}  // namespace cnnvis::cli
