// Loading and saving a Network's parameters and buffers as safetensors, strictly by torchvision names.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cnnvis/io/safetensors.h"
#include "cnnvis/models/network.h"

namespace cnnvis {

struct WeightLoadOptions {
  bool strict = true;  // missing / unexpected / mis-shaped keys are an error (else warnings)
  std::vector<std::string> ignore_prefixes;  // checkpoint keys the native model does not use
  bool check_finite = true;  // NaN/Inf in a float tensor is an error
};

struct WeightLoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;     // in the model, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the model
  std::vector<std::string> ignored;     // matched an ignore prefix
  std::vector<std::string> mismatched;  // "name: file [..] vs model [..]"
};

// Copies every tensor from the mapped file into the network (converted to float32 once, straight from
// the mapping). Throws WeightsError listing every problem in one message when strict.
WeightLoadReport load_weights(Network& network, const SafetensorsFile& file, const WeightLoadOptions& options = {});

// Writes all parameters and buffers (float32; num_batches_tracked as I64).
void save_weights(const Network& network, const std::string& path,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace cnnvis
