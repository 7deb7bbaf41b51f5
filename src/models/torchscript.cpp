#include "cnnvis/models/torchscript.h"

#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/custom_function.h>
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

// The rules of the relevance pass whose forward runs on this thread (script_relevance). The relevance
// operators copy the pointer into their autograd context: a backward pass may run on another thread.
thread_local const RelevanceRules* current_rules = nullptr;

class RulesScope {
 public:
  explicit RulesScope(const RelevanceRules* rules) : previous_(current_rules) { current_rules = rules; }
  ~RulesScope() { current_rules = previous_; }
  RulesScope(const RulesScope&) = delete;
  RulesScope& operator=(const RulesScope&) = delete;

 private:
  const RelevanceRules* previous_;
};

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

const RelevanceRules& active_rules() {
  TORCH_CHECK(current_rules != nullptr, "a cnnvis relevance operator ran outside a relevance pass");
  return *current_rules;
}
void keep_rules(AutogradContext* ctx) {
  ctx->saved_data["rules"] = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(&active_rules()));
}
const RelevanceRules& kept_rules(AutogradContext* ctx) {
  return *reinterpret_cast<const RelevanceRules*>(static_cast<std::intptr_t>(ctx->saved_data["rules"].toInt()));
}

// z + eps sign(z), sign(0) = +1 (as methods/lrp.cpp stabilises).
at::Tensor stabilised(const at::Tensor& z, double eps) { return z + eps * (2 * (z >= 0).to(z.scalar_type()) - 1); }

// A ReLU hands the relevance at its output to its input unchanged (zennit's Pass rule).
struct PassRelu : public torch::autograd::Function<PassRelu> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& x, double upper) {
    return std::isfinite(upper) ? x.clamp(0, upper) : x.clamp_min(0);
  }
  static variable_list backward(AutogradContext*, variable_list grad_outputs) { return {grad_outputs[0], at::Tensor()}; }
};

// Around a linear operator without parameters (a sum, an average pool): the relevance R at its output z
// becomes R / (z + eps sign z) on the way in (lrp_output) and is multiplied by each input x on the way out
// (lrp_input), the operator's own gradient in between: R_x = x * J^T (R / z), the epsilon rule.
// Both return copies so that an in-place operator after them changes nothing they saved.
struct RelevanceInput : public torch::autograd::Function<RelevanceInput> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    ctx->save_for_backward({x});
    return x.clone();
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {ctx->get_saved_variables()[0] * grad_outputs[0]};
  }
};
struct RelevanceOutput : public torch::autograd::Function<RelevanceOutput> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& z) {
    ctx->save_for_backward({z});
    ctx->saved_data["epsilon"] = active_rules().epsilon;
    return z.clone();
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {grad_outputs[0] / stabilised(ctx->get_saved_variables()[0], ctx->saved_data["epsilon"].toDouble())};
  }
};

// A convolution and the batch norm merged into it, or a linear layer: parameters travel outside the
// tensor arguments (autograd::Function takes every at::Tensor argument for an input of its own).
struct AffineOperands {
  at::Tensor weight, bias, bn_weight, bn_bias, bn_mean, bn_var;
  double bn_eps = 0;
  std::vector<std::int64_t> stride, padding, dilation;
  std::int64_t groups = 1;
  std::int64_t index = 0;
  bool conv = false;
};

at::Tensor optional_tensor(const c10::optional<at::Tensor>& t) { return t.has_value() ? *t : at::Tensor(); }

// The relevance at a layer's input x from the relevance r at its output, by the rule of the pass.
at::Tensor affine_relevance_of(AutogradContext* ctx, const at::Tensor& r) {
  AffineLayer layer;
  layer.conv = ctx->saved_data["conv"].toBool();
  layer.index = static_cast<int>(ctx->saved_data["index"].toInt());
  layer.weight = ctx->saved_data["weight"].toTensor();
  if (ctx->saved_data.count("bias")) layer.bias = ctx->saved_data["bias"].toTensor();
  if (layer.conv) {
    layer.stride = ctx->saved_data["stride"].toIntVector();
    layer.padding = ctx->saved_data["padding"].toIntVector();
    layer.dilation = ctx->saved_data["dilation"].toIntVector();
    layer.groups = ctx->saved_data["groups"].toInt();
  }
  return kept_rules(ctx).affine(layer, ctx->get_saved_variables()[0], r);
}

void keep_affine(AutogradContext* ctx, const at::Tensor& x, const AffineOperands& op, const at::Tensor& weight,
                 const at::Tensor& bias) {
  ctx->save_for_backward({x});
  keep_rules(ctx);
  ctx->saved_data["conv"] = op.conv;
  ctx->saved_data["index"] = op.index;
  ctx->saved_data["weight"] = weight;
  if (bias.defined()) ctx->saved_data["bias"] = bias;
  if (op.conv) {
    ctx->saved_data["stride"] = op.stride;
    ctx->saved_data["padding"] = op.padding;
    ctx->saved_data["dilation"] = op.dilation;
    ctx->saved_data["groups"] = op.groups;
  }
}

// Forward: a convolution's output y (computed by the graph's own convolution node) and the batch norm
// after it, if any. Backward: the rule's relevance at the convolution's input x; nothing flows to y, so
// the convolution node's own backward never runs.
struct RelevanceConv : public torch::autograd::Function<RelevanceConv> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y, const AffineOperands& op) {
    if (!(op.bn_mean.defined() || op.bn_var.defined() || op.bn_weight.defined())) {
      keep_affine(ctx, x, op, op.weight, op.bias);
      return y.clone();  // a new value: what reads it may work in place
    }
    TORCH_CHECK(op.bn_mean.defined() && op.bn_var.defined(),
                "LRP merges a batch norm into the convolution before it, which needs its running statistics");
    // Eval-mode batch norm as an affine map folded into the convolution: W' = W g, b' = (b - mean) g + beta
    // with g = gamma / sqrt(var + eps).
    at::Tensor g = at::rsqrt(op.bn_var + op.bn_eps);
    if (op.bn_weight.defined()) g = g * op.bn_weight;
    std::vector<std::int64_t> shape(static_cast<std::size_t>(op.weight.dim()), 1);
    shape[0] = -1;
    at::Tensor bias = ((op.bias.defined() ? op.bias : at::zeros_like(g)) - op.bn_mean) * g;
    if (op.bn_bias.defined()) bias = bias + op.bn_bias;
    keep_affine(ctx, x, op, op.weight * g.view(shape), bias);
    return at::batch_norm(y, op.bn_weight, op.bn_bias, op.bn_mean, op.bn_var, false, 0.0, op.bn_eps, true);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {affine_relevance_of(ctx, grad_outputs[0]), at::Tensor(), at::Tensor()};
  }
};

struct RelevanceLinear : public torch::autograd::Function<RelevanceLinear> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const AffineOperands& op) {
    keep_affine(ctx, x, op, op.weight, op.bias);
    return at::linear(x, op.weight, op.bias);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {affine_relevance_of(ctx, grad_outputs[0]), at::Tensor()};
  }
};

at::Tensor lrp_conv_kernel(const at::Tensor& x, const at::Tensor& y, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                           const c10::optional<at::Tensor>& bn_weight, const c10::optional<at::Tensor>& bn_bias,
                           const c10::optional<at::Tensor>& bn_mean, const c10::optional<at::Tensor>& bn_var,
                           double bn_eps, c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                           int64_t groups, int64_t index) {
  AffineOperands op;
  op.conv = true;
  op.weight = weight;
  op.bias = optional_tensor(bias);
  op.bn_weight = optional_tensor(bn_weight);
  op.bn_bias = optional_tensor(bn_bias);
  op.bn_mean = optional_tensor(bn_mean);
  op.bn_var = optional_tensor(bn_var);
  op.bn_eps = bn_eps;
  op.stride = stride.vec();
  op.padding = padding.vec();
  op.dilation = dilation.vec();
  op.groups = groups;
  op.index = index;
  return RelevanceConv::apply(x, y, op);
}

at::Tensor lrp_linear_kernel(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                             int64_t index) {
  AffineOperands op;
  op.weight = weight;
  op.bias = optional_tensor(bias);
  op.index = index;
  return RelevanceLinear::apply(x, op);
}

at::Tensor lrp_input_kernel(const at::Tensor& x) { return RelevanceInput::apply(x); }
at::Tensor lrp_output_kernel(const at::Tensor& z) { return RelevanceOutput::apply(z); }

at::Tensor relu_kernel(const at::Tensor& x, double upper) {
  if (current_rules != nullptr && x.requires_grad()) return PassRelu::apply(x, upper);
  const ScriptCall* call = current_call;
  const ReluMode mode = call != nullptr && call->state != nullptr ? call->state->relu_mode : ReluMode::standard;
  return relu_with_mode(x, mode, upper);
}

}  // namespace

// Composite kernels run above autograd, so what they do inside is differentiated as usual.
TORCH_LIBRARY(cnnvis, m) {
  m.def("tap(Tensor x, int id) -> Tensor");
  m.def("relu(Tensor x, float upper) -> Tensor");
  m.def("lrp_conv(Tensor x, Tensor y, Tensor weight, Tensor? bias, Tensor? bn_weight, Tensor? bn_bias, Tensor? bn_mean, "
        "Tensor? bn_var, float bn_eps, int[] stride, int[] padding, int[] dilation, int groups, int index) -> Tensor");
  m.def("lrp_linear(Tensor x, Tensor weight, Tensor? bias, int index) -> Tensor");
  m.def("lrp_input(Tensor x) -> Tensor");
  m.def("lrp_output(Tensor z) -> Tensor");
}
TORCH_LIBRARY_IMPL(cnnvis, CompositeImplicitAutograd, m) {
  m.impl("tap", tap_kernel);
  m.impl("relu", relu_kernel);
  m.impl("lrp_conv", lrp_conv_kernel);
  m.impl("lrp_linear", lrp_linear_kernel);
  m.impl("lrp_input", lrp_input_kernel);
  m.impl("lrp_output", lrp_output_kernel);
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

  // Relevance at the input for the given classes (script_relevance): one forward of the relevance graph,
  // then a backward pass of the targets' logits through it.
  at::Tensor relevance(const at::Tensor& x, const at::Tensor& classes, const RelevanceRules& rules) const {
    const std::shared_ptr<jit::Code> code = relevance_code();
    at::AutoGradMode grad_mode(true);
    const at::Tensor leaf = x.detach().requires_grad_(true);
    ScriptCall call;
    const RulesScope scope(&rules);
    const at::Tensor logits = logits_of(run(*code, leaf, call), x.size(0));
    // The relevance at the output is the target's logit, nothing elsewhere.
    const at::Tensor one_hot = at::zeros_like(logits).scatter_(1, classes.view({-1, 1}).to(logits.device()), 1.0);
    try {
      logits.backward(one_hot * logits.detach());
    } catch (const c10::Error& e) {
      if (is_out_of_memory(e)) throw;
      throw InputError(file_ + ": the relevance pass failed: " + error_summary(e));
    }
    return leaf.grad().defined() ? leaf.grad().detach() : at::zeros_like(x);
  }

  std::shared_ptr<jit::Code> relevance_code() const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!relevance_code_) {
      try {
        relevance_code_ = std::make_shared<jit::Code>(script::relevance_graph(prepared_, file_), "relevance");
      } catch (const c10::Error& e) {
        throw UsageError(file_ + ": cannot build the graph for LRP: " + error_summary(e));
      }
    }
    return relevance_code_;
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
  mutable std::shared_ptr<jit::Code> relevance_code_;  // built on the first LRP call
  mutable std::map<std::vector<int>, std::shared_ptr<jit::Code>> pruned_;
  std::map<std::string, std::size_t> index_;
  std::vector<std::unique_ptr<ScriptModuleNode>> children_;
  std::vector<std::pair<std::string, at::Tensor>> parameters_;
  std::vector<std::pair<std::string, at::Tensor>> buffers_;
};

}  // namespace

at::Tensor script_relevance(const Network& net, const at::Tensor& x, const at::Tensor& classes,
                            const RelevanceRules& rules) {
  const auto* root = dynamic_cast<const ScriptRoot*>(&net.root());
  if (root == nullptr) throw UsageError(net.architecture() + " is not a TorchScript model");
  return root->relevance(x, classes, rules);
}

void check_script_relevance(const Network& net) {
  const auto* root = dynamic_cast<const ScriptRoot*>(&net.root());
  if (root == nullptr) throw UsageError(net.architecture() + " is not a TorchScript model");
  root->relevance_code();
}

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
