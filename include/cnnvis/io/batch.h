// Batch-run bookkeeping that does not need a model: output names, shards, resume checks and joining
// the manifests of shards. The CLI's run_batches puts these together.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cnnvis {

// Output file stems for inputs identified by unique keys (see InputFile): the input's file name without
// extension made file-name safe; names that several inputs would share (compared case-insensitively,
// e.g. a/x.jpg and b/X.png, or two unicode names that both become "caf_") get "-" and 8 hex digits of
// the SHA-256 of the key. A stem depends only on the set of keys, never on their order, so shards of
// one folder run on different machines name their outputs alike. Stems never contain a path separator
// and are never "", "." or "..".
std::vector<std::string> assign_output_stems(const std::vector<std::string>& keys);

// --shard I/N: 0 <= I < N. An input belongs to shard (first 8 bytes of SHA-256(key) as a big-endian
// integer) mod N: the split depends only on the key, so it is the same whatever the order of the inputs
// and whichever machine lists them, and adding files never moves the others to another shard.
struct Shard {
  int index = 0;
  int count = 1;
  bool all() const { return count == 1; }
};
Shard parse_shard(const std::string& text);  // throws UsageError naming the problem
int shard_of(const std::string& key, int count);

// What a resumed run checks to trust an earlier result: the input file's size and modification time.
// Null when the file cannot be stat'ed.
nlohmann::json input_stamp(const std::string& path);

// True when a manifest entry from an earlier run with the same settings can stand: status "ok", the
// input unchanged (stamp equal and not null), and every output it lists present and non-empty under
// out_dir. Output paths that leave out_dir never count as present.
bool entry_is_complete(const nlohmann::json& entry, const std::string& out_dir, const nlohmann::json& stamp);

// A relative output path that stays inside its directory ("a/b.png"; not "../b.png", "/b.png", "").
bool path_stays_inside(const std::string& relative);

struct MergeOptions {
  bool copy = false;   // copy every output into the merged directory (self-contained result)
  bool force = false;  // merge parts whose command or settings fingerprint differ
};
struct MergeResult {
  nlohmann::json manifest;
  std::size_t parts = 0, inputs = 0, duplicates = 0, copied = 0;
  std::vector<int> missing_shards;  // shard indices none of the parts covers (when parts record shards)
};
// Joins the manifests of several runs (typically the shards of one command) into out_dir/manifest.json
// and writes index.html. Output paths are rewritten relative to out_dir (or copied into it). An input
// present in several parts is kept once (a successful entry wins). Throws InputError for a missing or
// malformed part manifest, UsageError when parts come from different commands or settings (unless
// force) or out_dir is one of the parts, OutputError when writing fails.
MergeResult merge_manifests(const std::vector<std::string>& part_dirs, const std::string& out_dir,
                            const MergeOptions& options = {});

}  // namespace cnnvis
