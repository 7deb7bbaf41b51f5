#include "cnnvis/models/torchscript.h"

#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/library.h>
#include <torch/script.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/models/layers.h"
#include "cnnvis/models/network.h"
#include "cnnvis/models/script_graph.h"
#include "cnnvis/models/torchscript_archive.h"

namespace cnnvis {

namespace jit = torch::jit;

namespace {

// What the graph's cnnvis:: operators report to during one forward on this thread (the interpreter runs
// the graph on the calling thread).
struct ScriptCall {
  ForwardState* state = nullptr;
  const std::vector<std::string>* tap_names = nullptr;
  std::map<int, std::vector<std::int64_t>>* shapes = nullptr;  // probe: output shape of every tap
};
thread_local ScriptCall* current_call = nullptr;

class CallScope {
 public:
  explicit CallScope(ScriptCall* call) : previous_(current_call) { current_call = call; }
  ~CallScope() { current_call = previous_; }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  ScriptCall* previous_;
};

at::Tensor tap_kernel(const at::Tensor& x, int64_t id) {
  ScriptCall* call = current_call;
  if (call == nullptr) return x;
  if (call->shapes != nullptr) (*call->shapes)[static_cast<int>(id)] = x.sizes().vec();
  if (call->state == nullptr || call->state->request == nullptr) return x;
  const std::string& name = call->tap_names->at(static_cast<std::size_t>(id));
  const auto& wanted = call->state->request->taps;
  if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) return x;
  // The recorded tensor (perhaps a new gradient leaf) is handed on as a copy: an in-place operator
  // after the module (a traced `relu_`, `out += identity`) must change neither it nor a leaf.
  return call->state->record(name, x).clone();
}

at::Tensor relu_kernel(const at::Tensor& x, double upper) {
  const ScriptCall* call = current_call;
  const ReluMode mode = call != nullptr && call->state != nullptr ? call->state->relu_mode : ReluMode::standard;
  return relu_with_mode(x, mode, upper);
}

}  // namespace

// Composite kernels run above autograd, so what they do inside is differentiated as usual.
TORCH_LIBRARY(cnnvis, m) {
  m.def("tap(Tensor x, int id) -> Tensor");
  m.def("relu(Tensor x, float upper) -> Tensor");
}
TORCH_LIBRARY_IMPL(cnnvis, CompositeImplicitAutograd, m) {
  m.impl("tap", tap_kernel);
  m.impl("relu", relu_kernel);
}

namespace {

// The line of a LibTorch error that says what went wrong (its message carries a TorchScript traceback).
std::string error_summary(const c10::Error& e) {
  std::istringstream lines(e.what_without_backtrace());
  std::string line, first, last_error;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (first.empty()) first = line;
    for (const char* prefix : {"RuntimeError: ", "ValueError: ", "AssertionError: ", "IndexError: "}) {
      if (line.rfind(prefix, 0) == 0) last_error = line.substr(std::string(prefix).size());
    }
  }
  return last_error.empty() ? first : last_error;
}

bool is_out_of_memory(const c10::Error& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr) return true;
  const std::string message = e.what_without_backtrace();
  return message.find("DefaultCPUAllocator") != std::string::npos ||
         message.find("not enough memory") != std::string::npos || message.find("out of memory") != std::string::npos;
}

// A submodule of the TorchScript model as a layer name: it is described and tapped, never run by itself.
class ScriptModuleNode final : public Node {
 public:
  ScriptModuleNode(std::string path, std::string type, jit::Module module)
      : Node(std::move(path), std::move(type)), module_(std::move(module)) {}

  at::Tensor forward(const at::Tensor&, ForwardState&) const override {
    throw UsageError("layer '" + name_ + "' of a TorchScript model cannot run by itself");
  }
  std::vector<Node*> children() const override {
    std::vector<Node*> out;
    for (const auto& child : children_) out.push_back(child.get());
    return out;
  }
  bool native() const override { return false; }
  // PyTorch's own reset_parameters for the module types that have one here; other modules (a ConvNeXt
  // block's layer scale, a user's custom module) keep their parameters in the randomisation test.
  bool initializes_parameters() const override {
    static const std::set<std::string> resettable = {"Conv1d", "Conv2d", "Conv3d", "Linear", "BatchNorm1d",
                                                      "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm"};
    if (resettable.count(type_) == 0) return false;
    for (const auto& p : module_.named_parameters(/*recurse=*/false)) {
      if (p.value.defined()) return true;
    }
    return false;
  }
  void initialize() override {
    if (!initializes_parameters()) return;
    at::NoGradGuard no_grad;
    at::Tensor weight = tensor_attr("weight"), bias = tensor_attr("bias");
    if (type_.rfind("Conv", 0) == 0 || type_ == "Linear") {
      // kaiming_uniform_(a = sqrt(5)) and the bias in the same bound: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
      if (!weight.defined() || weight.dim() < 2) return;
      const double bound = 1.0 / std::sqrt(static_cast<double>(weight[0].numel()));
      weight.uniform_(-bound, bound);
      if (bias.defined()) bias.uniform_(-bound, bound);
      return;
    }
    // Normalisation layers: the identity affine map, and for batch norm fresh running statistics.
    if (weight.defined()) weight.fill_(1.0);
    if (bias.defined()) bias.zero_();
    at::Tensor mean = tensor_attr("running_mean"), var = tensor_attr("running_var");
    at::Tensor count = tensor_attr("num_batches_tracked");
    if (mean.defined()) mean.zero_();
    if (var.defined()) var.fill_(1.0);
    if (count.defined()) count.zero_();
  }
  at::Tensor conv_weight() const override {
    if (type_ != "Conv2d") return {};
    const at::Tensor weight = tensor_attr("weight");
    return weight.defined() && weight.dim() == 4 ? weight : at::Tensor();
  }
  at::Tensor channel_bias() const override {
    at::NoGradGuard no_grad;
    if (type_ == "Conv2d") {
      const at::Tensor bias = tensor_attr("bias");
      return bias.defined() && bias.dim() == 1 ? bias.detach() : at::Tensor();
    }
    if (type_ != "BatchNorm2d") return {};
    const at::Tensor mean = tensor_attr("running_mean");
    if (!mean.defined() || mean.dim() != 1) return {};
    // The module's own forward on a zero input: a traced batch norm keeps eps only inside its graph.
    try {
      const at::Tensor zero = at::zeros({1, mean.size(0), 1, 1}, mean.options());
      const c10::IValue out = const_cast<jit::Module&>(module_).forward({zero});
      if (out.isTensor() && out.toTensor().numel() == zero.numel()) return out.toTensor().detach().flatten();
    } catch (const c10::Error& e) {
      spdlog::debug("{}: batch norm on a zero input failed ({}); no bias read", name_, e.what_without_backtrace());
    }
    return {};
  }
  std::string describe() const override {
    const at::Tensor w = conv_weight();
    if (!w.defined()) return type_;
    return type_ + "(" + std::to_string(w.size(1)) + ", " + std::to_string(w.size(0)) + ", k=" +
           std::to_string(w.size(2)) + ")";
  }

  std::vector<std::unique_ptr<ScriptModuleNode>> children_;

 private:
  // The module's own tensor attribute `name` (sharing storage with it); undefined when absent, None or
  // not a tensor.
  at::Tensor tensor_attr(const char* name) const {
    if (!module_.hasattr(name)) return {};
    const c10::IValue value = module_.attr(name);
    return value.isTensor() ? value.toTensor() : at::Tensor();
  }

  jit::Module module_;
};

class ScriptRoot final : public Node {
 public:
  ScriptRoot(jit::Module module, script::PreparedGraph prepared, std::string file)
      : Node("", "TorchScript"), module_(std::move(module)), prepared_(std::move(prepared)), file_(std::move(file)) {
    full_code_ = std::make_shared<jit::Code>(prepared_.graph, "forward");
    std::map<std::string, ScriptModuleNode*> by_path;
    std::map<std::string, jit::Module> submodules;
    for (const auto& item : module_.named_modules()) submodules.emplace(item.name, item.value);
    for (std::size_t i = 0; i < prepared_.modules.size(); ++i) {
      const auto& entry = prepared_.modules[i];
      index_[entry.path] = i;
      auto node = std::make_unique<ScriptModuleNode>(entry.path, entry.type, submodules.at(entry.path));
      by_path[entry.path] = node.get();
      const auto dot = entry.path.rfind('.');
      if (dot == std::string::npos) {
        children_.push_back(std::move(node));
      } else {
        by_path.at(entry.path.substr(0, dot))->children_.push_back(std::move(node));
      }
    }
    refresh_handles();
  }

  const script::PreparedGraph& prepared() const { return prepared_; }

  std::vector<Node*> children() const override {
    std::vector<Node*> out;
    for (const auto& child : children_) out.push_back(child.get());
    return out;
  }
  bool native() const override { return false; }

  void collect_tensors(std::vector<std::pair<std::string, at::Tensor*>>& out, bool include_buffers) override {
    // Handles share storage and autograd state with the module's own tensors.
    for (auto& [name, tensor] : parameters_) out.emplace_back(name, &tensor);
    if (include_buffers) {
      for (auto& [name, tensor] : buffers_) out.emplace_back(name, &tensor);
    }
  }

  bool move_to(const at::Device& device) override {
    module_.to(device);
    refresh_handles();
    return true;
  }

  // Runs the graph: the whole of it when logits are wanted, else only up to the last tap asked for.
  at::Tensor forward(const at::Tensor& x, ForwardState& state) const override {
    std::set<int> ids;
    for (const auto& name : state.request->taps) ids.insert(tap_id(name));
    std::shared_ptr<jit::Code> code = full_code_;
    if (!state.request->need_logits) code = code_up_to(std::vector<int>(ids.begin(), ids.end()));
    ScriptCall call;
    call.state = &state;
    call.tap_names = &prepared_.tap_names;
    const c10::IValue out = run(*code, x, call);
    for (const auto& name : state.request->taps) {
      if (state.taps.count(name) == 0) {
        throw InputError(file_ + ": module '" + name + "' did not run for this input (it sits in a branch that "
                         "the forward did not take)");
      }
    }
    if (!state.request->need_logits) return {};
    return logits_of(out, x.size(0));
  }

  bool describe_tree(int height, int width, std::vector<LayerInfo>& out) const override {
    std::map<int, std::vector<std::int64_t>> shapes;
    probe(height, width, &shapes);
    const script::TapFields fields = script::tap_fields(prepared_, module_, height, width);
    for (const auto& entry : prepared_.modules) {
      LayerInfo info;
      info.name = entry.path;
      info.type = entry.type;
      const Node* node = find(entry.path);
      info.description = node ? node->describe() : entry.type;
      info.depth = entry.depth;
      info.parameters = entry.parameters;
      if (entry.tap >= 0 && shapes.count(entry.tap)) {
        const auto& shape = shapes.at(entry.tap);
        info.output_shape.assign(shape.begin() + (shape.empty() ? 0 : 1), shape.end());
        info.field = fields.fields[entry.tap];
        if (info.output_shape.size() == 3) info.field.extent = static_cast<double>(info.output_shape[1]);
        if (!fields.known[entry.tap]) info.description += " (receptive field not traced: whole image)";
      } else {
        info.description += entry.tap < 0 ? " (" + entry.no_tap_reason + ")" : " (did not run)";
        info.field.image = height;
      }
      out.push_back(std::move(info));
    }
    return true;
  }

  // One forward of a zero batch at height x width: the number of classes and every tap's output shape.
  int probe(int height, int width, std::map<int, std::vector<std::int64_t>>* shapes) const {
    at::NoGradGuard no_grad;
    ScriptCall call;
    call.shapes = shapes;
    const auto x = at::zeros({1, 3, height, width}, at::TensorOptions().device(device()));
    const c10::IValue out = run(*full_code_, x, call);
    return static_cast<int>(logits_of(out, 1).size(1));
  }

  std::string default_layer(const std::map<int, std::vector<std::int64_t>>& shapes) const {
    const script::ModuleEntry* best = nullptr;
    for (const auto& entry : prepared_.modules) {
      if (entry.tap < 0 || shapes.count(entry.tap) == 0) continue;
      const auto& shape = shapes.at(entry.tap);
      if (shape.size() != 4 || shape[2] * shape[3] <= 1) continue;
      if (best == nullptr || entry.order > best->order || (entry.order == best->order && entry.depth < best->depth)) {
        best = &entry;
      }
    }
    return best ? best->path : "";
  }

 private:
  int tap_id(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) throw UsageError(file_ + ": no module '" + name + "'");
    const auto& entry = prepared_.modules[it->second];
    if (entry.tap < 0) throw UsageError(file_ + ": module '" + name + "' has no output to use: " + entry.no_tap_reason);
    return entry.tap;
  }

  std::shared_ptr<jit::Code> code_up_to(const std::vector<int>& ids) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pruned_.find(ids);
    if (it != pruned_.end()) return it->second;
    auto graph = script::graph_up_to_taps(prepared_, ids);
    auto code = graph ? std::make_shared<jit::Code>(graph, "forward_up_to_taps") : full_code_;
    pruned_.emplace(ids, code);
    return code;
  }

  c10::IValue run(const jit::Code& code, const at::Tensor& x, ScriptCall& call) const {
    CallScope scope(&call);
    std::vector<c10::IValue> stack{c10::IValue(module_._ivalue()), c10::IValue(x)};
    try {
      jit::InterpreterState interpreter(code);
      interpreter.run(stack);
    } catch (const c10::Error& e) {
      if (is_out_of_memory(e)) throw;
      throw InputError(file_ + ": the model's forward failed: " + error_summary(e));
    }
    if (stack.empty()) throw WeightsError(file_ + ": the model's forward returned nothing");
    return stack.back();
  }

  at::Tensor logits_of(const c10::IValue& out, std::int64_t batch) const {
    if (!out.isTensor()) {
      throw WeightsError(file_ + ": the model returns " + out.tagKind() +
                         ", not a tensor of logits [N, classes] (export the classifier's logits only)");
    }
    const at::Tensor logits = out.toTensor();
    if (logits.dim() != 2 || logits.size(0) != batch) {
      throw WeightsError(file_ + ": the model's output is " + format_shape(logits.sizes().vec()) +
                         " for a batch of " + std::to_string(batch) + ", not [N, classes] logits");
    }
    return logits;
  }

  const Node* find(const std::string& path) const {
    std::vector<const Node*> todo;
    for (const auto& child : children_) todo.push_back(child.get());
    while (!todo.empty()) {
      const Node* node = todo.back();
      todo.pop_back();
      if (node->name() == path) return node;
      for (const Node* child : node->children()) todo.push_back(child);
    }
    return nullptr;
  }

  at::Device device() const {
    for (const auto& p : module_.parameters()) return p.device();
    return at::Device(at::kCPU);
  }

  void refresh_handles() {
    parameters_.clear();
    buffers_.clear();
    for (const auto& p : module_.named_parameters()) parameters_.emplace_back(p.name, p.value);
    for (const auto& b : module_.named_buffers()) buffers_.emplace_back(b.name, b.value);
  }

  jit::Module module_;
  script::PreparedGraph prepared_;
  std::string file_;
  std::shared_ptr<jit::Code> full_code_;
  mutable std::mutex mutex_;
  mutable std::map<std::vector<int>, std::shared_ptr<jit::Code>> pruned_;
  std::map<std::string, std::size_t> index_;
  std::vector<std::unique_ptr<ScriptModuleNode>> children_;
  std::vector<std::pair<std::string, at::Tensor>> parameters_;
  std::vector<std::pair<std::string, at::Tensor>> buffers_;
};

}  // namespace

TorchScriptNetwork load_torchscript(const std::string& path, int height, int width) {
  jit::Module module;
  check_torchscript_archive(path);  // what LibTorch would trust: pickle lengths, memo indices, record sizes
  try {
    module = jit::load(path, at::Device(at::kCPU));
  } catch (const c10::Error& e) {
    throw WeightsError(path + ": not a TorchScript model (" + error_summary(e) + ")");
  } catch (const std::exception& e) {
    // The TorchScript compiler's errors span lines (message, source excerpt): the first says what is wrong.
    std::istringstream lines(e.what());
    std::string line, first;
    while (first.empty() && std::getline(lines, line)) first = line;
    throw WeightsError(path + ": not a TorchScript model (" + first + ")");
  }
  module.eval();
  script::PreparedGraph prepared;
  try {
    prepared = script::prepare_graph(module, path);
  } catch (const c10::Error& e) {
    throw WeightsError(path + ": cannot prepare the TorchScript graph: " + error_summary(e));
  }
  const int relus = prepared.relus_rewritten;
  auto root = std::make_unique<ScriptRoot>(module, std::move(prepared), path);
  std::map<int, std::vector<std::int64_t>> shapes;
  int classes = 0;
  try {
    classes = root->probe(height, width, &shapes);
  } catch (const InputError& e) {
    throw WeightsError(std::string(e.what()) + " (probe with a 1 x 3 x " + std::to_string(height) + " x " +
                       std::to_string(width) + " batch; a card beside the file sets the input size)");
  }
  TorchScriptNetwork out;
  out.default_layer = root->default_layer(shapes);
  out.num_classes = classes;
  spdlog::debug("{}: TorchScript model, {} classes, {} modules, {} ReLUs under cnnvis's control, default layer {}",
                path, classes, root->prepared().modules.size(), relus, out.default_layer);
  out.network = std::make_unique<Network>(path, std::move(root), classes);
  return out;
}

}  // namespace cnnvis
