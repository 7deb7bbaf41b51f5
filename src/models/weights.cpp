#include "cnnvis/models/weights.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"

namespace cnnvis {
namespace {

std::string shape_text(at::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? "," : "") << shape[i];
  out << "]";
  return out.str();
}

bool has_prefix(const std::string& name, const std::vector<std::string>& prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& p) { return name.rfind(p, 0) == 0; });
}

}  // namespace

WeightLoadReport load_weights(Network& network, const SafetensorsFile& file, const WeightLoadOptions& options) {
  WeightLoadReport report;
  auto targets = network.named_tensors(true);
  std::map<std::string, at::Tensor*> by_name(targets.begin(), targets.end());
  const std::string file_name = file.path();

  for (const TensorEntry& entry : file.entries()) {
    if (has_prefix(entry.name, options.ignore_prefixes)) {
      report.ignored.push_back(entry.name);
    } else if (by_name.find(entry.name) == by_name.end()) {
      report.unexpected.push_back(entry.name);
    }
  }
  std::vector<std::string> bad_values;
  std::vector<std::pair<const TensorEntry*, at::Tensor*>> to_load;
  for (auto& [name, target] : targets) {
    const TensorEntry* entry = file.find(name);
    if (entry == nullptr) {
      report.missing.push_back(name);
      continue;
    }
    const at::IntArrayRef model_shape = target->sizes();
    if (!std::equal(model_shape.begin(), model_shape.end(), entry->shape.begin(), entry->shape.end())) {
      report.mismatched.push_back(name + ": file " + shape_text(entry->shape) + " vs model " + shape_text(model_shape));
      continue;
    }
    const bool integer_target = target->scalar_type() == at::kLong;
    if (integer_target != (entry->dtype == DType::I64)) {
      report.mismatched.push_back(name + ": file dtype " + dtype_name(entry->dtype) + " vs model " +
                                  (integer_target ? "I64" : "float"));
      continue;
    }
    to_load.emplace_back(entry, target);
  }

  if (options.strict && (!report.missing.empty() || !report.unexpected.empty() || !report.mismatched.empty())) {
    std::vector<std::string> problems;
    if (!report.missing.empty()) {
      problems.push_back(std::to_string(report.missing.size()) + " missing key(s): " + list_for_message(report.missing, 8));
    }
    if (!report.unexpected.empty()) {
      problems.push_back(std::to_string(report.unexpected.size()) +
                         " unexpected key(s): " + list_for_message(report.unexpected, 8));
    }
    if (!report.mismatched.empty()) {
      problems.push_back(std::to_string(report.mismatched.size()) +
                         " mismatched: " + list_for_message(report.mismatched, 8));
    }
    throw WeightsError(file_name + ": weights do not match model " + network.architecture() + ": " +
                       join(problems, "; "));
  }
  for (const auto& m : report.missing) spdlog::warn("{}: no weights for {} (kept its initial values)", file_name, m);
  for (const auto& u : report.unexpected) spdlog::warn("{}: unused tensor {}", file_name, u);
  for (const auto& m : report.mismatched) spdlog::warn("{}: skipped {}", file_name, m);

  const at::Device device = network.device();
  for (auto& [entry, target] : to_load) {
    // Convert straight from the mapping into the parameter's own memory when it is on the CPU: one copy.
    const bool in_place = target->device().is_cpu() && target->is_contiguous() && !target->requires_grad();
    at::Tensor cpu = in_place ? *target : at::empty(target->sizes(), target->scalar_type());
    if (entry->dtype == DType::I64) {
      std::memcpy(cpu.data_ptr<std::int64_t>(), file.data(*entry), entry->end - entry->begin);
    } else {
      convert_to_f32(*entry, file.data(*entry), cpu.data_ptr<float>());
      if (options.check_finite && !at::isfinite(cpu).all().item<bool>()) bad_values.push_back(entry->name);
    }
    if (in_place) {
      report.loaded.push_back(entry->name);
      continue;
    }
    const bool grad = target->requires_grad();
    *target = device.is_cpu() ? cpu : cpu.to(device);
    if (grad) target->set_requires_grad(true);
    report.loaded.push_back(entry->name);
  }
  if (!bad_values.empty()) {
    throw WeightsError(file_name + ": NaN or infinite values in " + std::to_string(bad_values.size()) +
                       " tensor(s): " + list_for_message(bad_values, 8));
  }
  return report;
}

void save_weights(const Network& network, const std::string& path, const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> keep_alive;
  std::vector<TensorToWrite> tensors;
  for (auto& [name, tensor] : network.named_tensors(true)) {
    at::Tensor cpu = tensor->detach().to(at::kCPU).contiguous();
    TensorToWrite t;
    t.name = name;
    t.dtype = cpu.scalar_type() == at::kLong ? DType::I64 : DType::F32;
    if (t.dtype == DType::F32) cpu = cpu.to(at::kFloat);
    t.shape.assign(cpu.sizes().begin(), cpu.sizes().end());
    t.data = cpu.data_ptr();
    keep_alive.push_back(cpu);
    tensors.push_back(std::move(t));
  }
  write_safetensors(path, tensors, metadata);
}

}  // namespace cnnvis
