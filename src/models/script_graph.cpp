#include "cnnvis/models/script_graph.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include "cnnvis/core/errors.h"

namespace cnnvis::script {

namespace jit = torch::jit;

jit::Symbol tap_symbol() {
  static const jit::Symbol symbol = jit::Symbol::fromQualString("cnnvis::tap");
  return symbol;
}
jit::Symbol relu_symbol() {
  static const jit::Symbol symbol = jit::Symbol::fromQualString("cnnvis::relu");
  return symbol;
}
jit::Symbol lrp_conv_symbol() {
  static const jit::Symbol symbol = jit::Symbol::fromQualString("cnnvis::lrp_conv");
  return symbol;
}
jit::Symbol lrp_linear_symbol() {
  static const jit::Symbol symbol = jit::Symbol::fromQualString("cnnvis::lrp_linear");
  return symbol;
}
jit::Symbol lrp_input_symbol() {
  static const jit::Symbol symbol = jit::Symbol::fromQualString("cnnvis::lrp_input");
  return symbol;
}
jit::Symbol lrp_output_symbol() {
  static const jit::Symbol symbol = jit::Symbol::fromQualString("cnnvis::lrp_output");
  return symbol;
}

namespace {

// Every node of a block, nested blocks included, in execution order.
void flatten(jit::Block* block, std::vector<jit::Node*>& out) {
  for (jit::Node* node : block->nodes()) {
    out.push_back(node);
    for (jit::Block* inner : node->blocks()) flatten(inner, out);
  }
}

// The module instance path of an inlined node ("layer4.1.conv2"); "" for the model's own code. Entries of
// plain functions carry no instance, and a method calling another method of its module reads "SELF".
std::string instance_path(const jit::Node* node) {
  const auto stack = node->callstack();
  if (!stack) return "";
  std::string path;
  for (const auto& entry : (*stack)->vec()) {
    const auto& info = std::get<2>(entry);
    if (!info) continue;
    const std::string& name = info->instance_name();
    if (name.empty() || name == "SELF") continue;
    path += path.empty() ? name : "." + name;
  }
  return path;
}

bool has_tensor_output(const jit::Node* node) {
  for (const jit::Value* v : node->outputs()) {
    if (v->type()->kind() == c10::TypeKind::TensorType) return true;
  }
  return false;
}

// Nodes that do work on tensors; constants and attribute reads are hoisted freely by the compiler and
// say nothing about which module call is running.
bool significant(const jit::Node* node) {
  const auto kind = node->kind();
  if (kind == jit::prim::Constant || kind == jit::prim::GetAttr) return false;
  return has_tensor_output(node);
}

bool within(const std::string& path, const std::string& module) {
  return path.size() >= module.size() && path.compare(0, module.size(), module) == 0 &&
         (path.size() == module.size() || path[module.size()] == '.');
}

std::string short_type_name(const jit::Module& module) {
  const auto name = module.type()->name();
  return name ? name->name() : "Module";
}

// One call of a module: the range of significant flattened nodes it ran.
struct Call {
  std::size_t first = 0, last = 0;
};

void rewrite_relus(jit::Graph& graph, int& rewritten) {
  std::vector<jit::Node*> nodes;
  flatten(graph.block(), nodes);
  const double inf = std::numeric_limits<double>::infinity();
  for (jit::Node* node : nodes) {
    const std::string kind = node->kind().toQualString();
    double upper = 0;
    bool in_place = false;
    if (kind == "aten::relu" || kind == "aten::relu_") {
      upper = inf;
      in_place = kind == "aten::relu_";
    } else if (kind == "aten::relu6" || kind == "aten::relu6_") {
      upper = 6;
      in_place = kind == "aten::relu6_";
    } else if ((kind == "aten::hardtanh" || kind == "aten::hardtanh_") && node->inputs().size() == 3) {
      const auto low = jit::toIValue(node->input(1));
      const auto high = jit::toIValue(node->input(2));
      if (!low || !high || !low->isScalar() || !high->isScalar() || low->toScalar().toDouble() != 0.0) continue;
      upper = high->toScalar().toDouble();
      in_place = kind == "aten::hardtanh_";
    } else {
      continue;
    }
    jit::Value* x = node->input(0);
    // An in-place ReLU inside a branch on a value from outside it cannot be rewritten into a new value.
    if (in_place && x->node()->owningBlock() != node->owningBlock()) continue;
    jit::WithInsertPoint guard(node);
    jit::Value* limit = graph.insertConstant(upper);
    jit::Node* replacement = graph.create(relu_symbol(), {x, limit}, 1);
    replacement->copyMetadata(node);
    replacement->output()->setType(node->output()->type());
    replacement->insertBefore(node);
    node->output()->replaceAllUsesWith(replacement->output());
    // An in-place ReLU also changed its input: later readers of the input see the rectified value.
    if (in_place) x->replaceAllUsesAfterNodeWith(replacement, replacement->output());
    node->destroy();
    ++rewritten;
  }
}

}  // namespace

PreparedGraph prepare_graph(const jit::Module& module, const std::string& file) {
  PreparedGraph prepared;
  auto method = module.find_method("forward");
  if (!method) throw WeightsError(file + ": the TorchScript module has no forward method");
  prepared.graph = jit::toGraphFunction(method->function()).graph()->copy();
  jit::Graph& graph = *prepared.graph;
  jit::Inline(graph);
  if (graph.inputs().size() != 2 || graph.inputs()[1]->type()->kind() != c10::TypeKind::TensorType) {
    throw WeightsError(file + ": forward must take exactly one tensor (the image batch); it takes " +
                       std::to_string(graph.inputs().size() - 1) + " argument(s)");
  }
  rewrite_relus(graph, prepared.relus_rewritten);

  // The modules, in named_modules() order.
  std::map<std::string, std::size_t> by_path;
  for (const auto& item : module.named_modules()) {
    if (item.name.empty()) continue;
    ModuleEntry entry;
    entry.path = item.name;
    entry.type = short_type_name(item.value);
    entry.depth = static_cast<int>(std::count(item.name.begin(), item.name.end(), '.'));
    for (const auto& p : item.value.named_parameters(/*recurse=*/false)) entry.parameters += p.value.numel();
    by_path[entry.path] = prepared.modules.size();
    prepared.modules.push_back(std::move(entry));
  }

  // Find each module's calls: maximal runs of significant nodes inside its path.
  std::vector<jit::Node*> nodes;
  flatten(graph.block(), nodes);
  std::unordered_map<const jit::Node*, std::size_t> index;
  std::vector<std::string> paths(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    index[nodes[i]] = i;
    paths[i] = instance_path(nodes[i]);
  }
  std::vector<std::vector<Call>> calls(prepared.modules.size());
  std::vector<std::string> open;  // the module paths whose call is running, outermost first
  std::vector<std::size_t> open_first;
  std::size_t previous = 0;
  auto close_to = [&](const std::string& path) {
    while (!open.empty() && !within(path, open.back())) {
      const auto it = by_path.find(open.back());
      if (it != by_path.end()) calls[it->second].push_back({open_first.back(), previous});
      open.pop_back();
      open_first.pop_back();
    }
  };
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!significant(nodes[i])) continue;
    const std::string& path = paths[i];
    close_to(path);
    // Open every prefix of the path not open yet.
    std::size_t pos = 0;
    while (pos != std::string::npos && !path.empty()) {
      pos = path.find('.', pos + 1);
      const std::string prefix = path.substr(0, pos);
      if (open.empty() || (within(prefix, open.back()) && prefix.size() > open.back().size())) {
        open.push_back(prefix);
        open_first.push_back(i);
      }
    }
    previous = i;
  }
  close_to("\x01");  // no module path is a prefix of this one: closes every open call

  // The output of each module's last call: the tensor it produced that something outside it reads.
  struct Output {
    jit::Value* value = nullptr;
    std::size_t module = 0;
    Call call;
  };
  std::vector<Output> outputs;
  auto member = [&](const jit::Node* user, const std::string& path, const Call& call) {
    const auto it = index.find(user);
    if (it == index.end()) return false;  // the graph's return node
    return it->second >= call.first && it->second <= call.last && within(paths[it->second], path);
  };
  for (std::size_t m = 0; m < prepared.modules.size(); ++m) {
    ModuleEntry& entry = prepared.modules[m];
    entry.calls = static_cast<int>(calls[m].size());
    if (calls[m].empty()) {
      entry.no_tap_reason = "not called by the forward graph (unused, or traced away as an identity)";
      continue;
    }
    const Call call = calls[m].back();
    jit::Value* chosen = nullptr;
    std::size_t chosen_at = 0;
    for (std::size_t i = call.first; i <= call.last; ++i) {
      if (!within(paths[i], entry.path)) continue;
      for (jit::Value* v : nodes[i]->outputs()) {
        if (v->type()->kind() != c10::TypeKind::TensorType) continue;
        const bool read_outside = std::any_of(v->uses().begin(), v->uses().end(), [&](const jit::Use& use) {
          return !member(use.user, entry.path, call);
        });
        // Several values read outside happen with in-place updates; the latest is what the call returns.
        if (read_outside && (chosen == nullptr || i >= chosen_at)) {
          chosen = v;
          chosen_at = i;
        }
      }
    }
    if (chosen == nullptr) {
      entry.no_tap_reason = "returns no tensor (a tuple or list output is not supported)";
      continue;
    }
    entry.order = static_cast<std::int64_t>(chosen_at);
    outputs.push_back({chosen, m, call});
  }

  // Taps: for one value returned by nested modules, a chain from the innermost to the outermost, each tap
  // read by the nodes outside its module.
  std::stable_sort(outputs.begin(), outputs.end(), [&](const Output& a, const Output& b) {
    if (a.value != b.value) return a.value < b.value;
    return prepared.modules[a.module].depth > prepared.modules[b.module].depth;
  });
  jit::Value* previous_value = nullptr;
  jit::Value* current = nullptr;
  for (const Output& out : outputs) {
    ModuleEntry& entry = prepared.modules[out.module];
    if (out.value != previous_value) current = out.value;
    previous_value = out.value;
    jit::Node* after = current->node();
    const int id = static_cast<int>(prepared.tap_names.size());
    jit::Value* id_value = nullptr;
    {
      jit::WithInsertPoint guard(graph.block()->nodes().front());
      id_value = graph.insertConstant(static_cast<std::int64_t>(id));
    }
    jit::Node* tap = graph.create(tap_symbol(), {current, id_value}, 1);
    tap->output()->setType(current->type());
    if (after->kind() == jit::prim::Param) {
      tap->insertBefore(graph.block()->nodes().front());
    } else {
      tap->insertAfter(after);
    }
    std::vector<jit::Use> uses = current->uses();
    for (const jit::Use& use : uses) {
      if (use.user == tap || use.user->kind() == tap_symbol()) continue;
      if (member(use.user, entry.path, out.call)) continue;
      use.user->replaceInput(use.offset, tap->output());
    }
    entry.tap = id;
    prepared.tap_names.push_back(entry.path);
    current = tap->output();
  }
  graph.lint();
  spdlog::debug("TorchScript graph: {} modules, {} taps, {} ReLUs rewritten", prepared.modules.size(),
                prepared.tap_names.size(), prepared.relus_rewritten);
  return prepared;
}

std::shared_ptr<jit::Graph> graph_up_to_taps(const PreparedGraph& prepared, const std::vector<int>& taps) {
  auto graph = prepared.graph->copy();
  std::map<int, jit::Value*> found;
  for (jit::Node* node : graph->block()->nodes()) {
    if (node->kind() != tap_symbol()) continue;
    const auto id = jit::toIValue(node->input(1));
    if (id) found[static_cast<int>(id->toInt())] = node->output();
  }
  std::vector<jit::Value*> values;
  for (int id : taps) {
    const auto it = found.find(id);
    if (it == found.end()) return nullptr;  // inside a block: run the whole graph
    values.push_back(it->second);
  }
  while (!graph->outputs().empty()) graph->eraseOutput(graph->outputs().size() - 1);
  jit::Node* list = graph->createList(c10::TensorType::get(), values);
  graph->appendNode(list);
  graph->registerOutput(list->output());
  jit::EliminateDeadCode(graph);
  return graph;
}

namespace {

std::optional<std::vector<std::int64_t>> int_list(jit::Value* v) {
  if (auto iv = jit::toIValue(v)) {
    if (iv->isIntList()) return iv->toIntVector();
    if (iv->isInt()) return std::vector<std::int64_t>{iv->toInt()};
    return std::nullopt;
  }
  if (v->node()->kind() == jit::prim::ListConstruct) {
    std::vector<std::int64_t> out;
    for (jit::Value* item : v->node()->inputs()) {
      auto iv = jit::toIValue(item);
      if (!iv || !iv->isInt()) return std::nullopt;
      out.push_back(iv->toInt());
    }
    return out;
  }
  return std::nullopt;
}

std::optional<bool> const_bool(jit::Value* v) {
  auto iv = jit::toIValue(v);
  if (!iv || !iv->isBool()) return std::nullopt;
  return iv->toBool();
}

// The object a chain of prim::GetAttr on `self` reads (a weight tensor), or None.
c10::IValue attribute_value(jit::Value* v, const jit::Module& module) {
  jit::Node* node = v->node();
  if (node->kind() == jit::prim::Param) return module._ivalue();
  if (node->kind() != jit::prim::GetAttr) return {};
  c10::IValue parent = attribute_value(node->input(0), module);
  if (!parent.isObject()) return {};
  const auto object = parent.toObject();
  const std::string& name = node->s(jit::attr::name);
  if (!object->type()->hasAttribute(name)) return {};
  return object->getAttr(name);
}

}  // namespace

TapFields tap_fields(const PreparedGraph& prepared, const jit::Module& module, int height, int width) {
  ReceptiveField input;
  input.extent = height;
  input.image = height;
  (void)width;  // fields are tracked along one axis, as for the native networks
  ReceptiveField whole = input;
  whole.size = height;
  whole.stride = height;
  whole.start = height / 2.0;
  whole.extent = 1;

  std::unordered_map<const jit::Value*, ReceptiveField> field;
  std::unordered_map<const jit::Value*, bool> known;
  field[prepared.graph->inputs()[1]] = input;
  known[prepared.graph->inputs()[1]] = true;
  TapFields result;
  result.fields.assign(prepared.tap_names.size(), whole);
  result.known.assign(prepared.tap_names.size(), false);

  std::vector<jit::Node*> nodes;
  flatten(prepared.graph->block(), nodes);
  for (jit::Node* node : nodes) {
    // The widest field among tensor inputs; inputs that are per-channel gates (extent 1) do not count
    // while a spatial input exists.
    const ReceptiveField* widest = nullptr;
    bool widest_known = true;
    for (jit::Value* in : node->inputs()) {
      const auto it = field.find(in);
      if (it == field.end()) continue;
      const ReceptiveField& f = it->second;
      const bool better = widest == nullptr || (f.extent > 1 && widest->extent <= 1) ||
                          ((f.extent > 1) == (widest->extent > 1) && f.size > widest->size);
      if (better) {
        widest = &f;
        widest_known = known[in];
      }
    }
    if (widest == nullptr && node->kind() != jit::prim::If) continue;
    const std::string kind = node->kind().toQualString();
    ReceptiveField out = widest ? *widest : whole;
    bool ok = widest_known;
    if (kind == "aten::_convolution" || kind == "aten::conv2d" || kind == "aten::convolution") {
      const c10::IValue weight = attribute_value(node->input(1), module);
      const auto stride = int_list(node->input(3));
      const auto padding = int_list(node->input(4));
      const auto dilation = int_list(node->input(5));
      const bool transposed = kind != "aten::conv2d" && const_bool(node->input(6)).value_or(true);
      if (weight.isTensor() && weight.toTensor().dim() == 4 && stride && dilation && !transposed) {
        const auto k = weight.toTensor().size(2);
        const auto d = dilation->front();
        const auto kernel = d * (k - 1) + 1;
        const auto pad_text = jit::toIValue(node->input(4));
        const bool valid = pad_text && pad_text->isString() && pad_text->toStringRef() == "valid";
        const auto pad = padding ? padding->front() : valid ? 0 : (kernel - 1) / 2;  // padding='same'
        out = window_field(*widest, static_cast<int>(kernel), static_cast<int>(stride->front()),
                           static_cast<int>(pad), false);
      } else {
        ok = false;
      }
    } else if (kind == "aten::max_pool2d" || kind == "aten::avg_pool2d") {
      const auto kernel = int_list(node->input(1));
      auto stride = int_list(node->input(2));
      const auto padding = int_list(node->input(3));
      const auto ceil = const_bool(node->input(kind == "aten::max_pool2d" ? 5 : 4));
      if (kernel && stride && padding && ceil && !kernel->empty()) {
        if (stride->empty()) stride = kernel;
        out = window_field(*widest, static_cast<int>(kernel->front()), static_cast<int>(stride->front()),
                           static_cast<int>(padding->front()), *ceil);
      } else {
        ok = false;
      }
    } else if (kind == "aten::adaptive_avg_pool2d" || kind == "aten::adaptive_max_pool2d") {
      const auto size = int_list(node->input(1));
      if (size && !size->empty()) {
        out = adaptive_pool_field(*widest, static_cast<int>(size->front()));
      } else {
        ok = false;
      }
    } else if (kind == "aten::mean" || kind == "aten::sum" || kind == "aten::amax" || kind == "aten::flatten" ||
               kind == "aten::linear" || kind == "aten::addmm" || kind == "aten::matmul") {
      out = whole;  // a reduction or product over the spatial positions (global pooling, classifier)
      out.size = widest->image;
    } else if (kind.find("upsample") != std::string::npos || kind == "aten::interpolate" ||
               kind == "aten::pixel_shuffle" || kind == "aten::unfold") {
      ok = false;
    } else if (node->kind() == jit::prim::If && !node->blocks().empty()) {
      // The outputs come from the branches' returns; the first branch that knows them decides.
      for (std::size_t o = 0; o < node->outputs().size(); ++o) {
        for (jit::Block* block : node->blocks()) {
          const auto it = field.find(block->outputs()[o]);
          if (it == field.end()) continue;
          field[node->outputs()[o]] = it->second;
          known[node->outputs()[o]] = known[block->outputs()[o]];
          break;
        }
      }
      continue;
    }
    for (jit::Value* v : node->outputs()) {
      if (v->type()->kind() != c10::TypeKind::TensorType) continue;
      field[v] = out;
      known[v] = ok;
    }
    if (node->kind() == tap_symbol()) {
      const auto id = jit::toIValue(node->input(1));
      if (id && id->toInt() >= 0 && id->toInt() < static_cast<std::int64_t>(result.fields.size())) {
        result.fields[id->toInt()] = out;
        result.known[id->toInt()] = ok;
      }
    }
  }
  return result;
}

namespace {

// Whether a value of this type can hold a tensor (a tensor, a list or tuple of them, an optional one).
bool carries_tensor(const c10::TypePtr& type) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType: return true;
    case c10::TypeKind::ListType:
    case c10::TypeKind::OptionalType:
    case c10::TypeKind::TupleType:
      for (const auto& inner : type->containedTypes()) {
        if (carries_tensor(inner)) return true;
      }
      return false;
    default: return false;
  }
}

// The values computed from the graph's image input (tensors only: a shape read off it is not relevance).
std::set<const jit::Value*> derived_from_input(jit::Graph& graph) {
  std::set<const jit::Value*> derived{graph.inputs()[1]};
  std::vector<jit::Node*> nodes;
  flatten(graph.block(), nodes);
  const auto reads = [&](jit::Node* node) {
    for (const jit::Value* v : node->inputs()) {
      if (derived.count(v)) return true;
    }
    for (jit::Block* block : node->blocks()) {
      for (const jit::Value* v : block->outputs()) {
        if (derived.count(v)) return true;
      }
    }
    return false;
  };
  // Blocks (branches, loops) make one pass not enough: a block's results feed its node's outputs.
  for (bool changed = true; changed;) {
    changed = false;
    for (jit::Node* node : nodes) {
      if (!reads(node)) continue;
      for (const jit::Value* v : node->outputs()) {
        if (carries_tensor(v->type())) changed |= derived.insert(v).second;
      }
      for (jit::Block* block : node->blocks()) {
        for (const jit::Value* v : block->inputs()) {
          if (carries_tensor(v->type())) changed |= derived.insert(v).second;
        }
      }
    }
  }
  return derived;
}

// Operators that hand the relevance on as their gradient does: rearrangements (each input element goes
// to one output element or is dropped), max pooling (to each window's maximum), dropout in eval mode.
// ReLUs left unrewritten (an in-place one on a value from outside its branch) pass it too: the rules
// above them leave no relevance where a ReLU's input is negative.
bool hands_relevance_on(const std::string& kind) {
  static const std::set<std::string> kinds{
      "aten::flatten", "aten::view", "aten::reshape", "aten::contiguous", "aten::dropout", "aten::dropout_",
      "aten::feature_dropout", "aten::feature_dropout_", "aten::cat", "aten::squeeze", "aten::unsqueeze",
      "aten::clone", "aten::max_pool2d", "aten::max_pool2d_with_indices", "aten::adaptive_max_pool2d",
      "aten::select", "aten::slice", "aten::narrow", "aten::permute", "aten::transpose", "aten::chunk",
      "aten::split", "aten::__getitem__", "aten::append", "aten::list", "aten::relu", "aten::relu_"};
  return kinds.count(kind) > 0;
}

bool is_int_constant(jit::Value* v, std::int64_t expected) {
  const auto iv = jit::toIValue(v);
  return iv && (iv->isInt() || iv->isDouble()) && iv->toScalar().toDouble() == static_cast<double>(expected);
}

struct ConvInputs {
  jit::Value *x, *weight, *bias, *stride, *padding, *dilation, *groups;
};

// The operands of a non-transposed convolution node, or nothing.
std::optional<ConvInputs> conv_inputs(jit::Node* node) {
  const std::string kind = node->kind().toQualString();
  if (kind == "aten::conv2d" && node->inputs().size() == 7 &&
      node->input(4)->type()->kind() == c10::TypeKind::ListType) {
    return ConvInputs{node->input(0), node->input(1), node->input(2), node->input(3),
                      node->input(4), node->input(5), node->input(6)};
  }
  if ((kind == "aten::_convolution" || kind == "aten::convolution") && node->inputs().size() >= 9 &&
      const_bool(node->input(6)) == false) {
    return ConvInputs{node->input(0), node->input(1), node->input(2), node->input(3),
                      node->input(4), node->input(5), node->input(8)};
  }
  return std::nullopt;
}

// The eval-mode batch norm that is the only reader of a convolution's output `value` in the same block, or
// nullptr. Shape queries may read it too (a scripted batch norm checks its input's size in training).
jit::Node* sole_batch_norm_reader(jit::Value* value) {
  jit::Node* reader = nullptr;
  for (const jit::Use& use : value->uses()) {
    jit::Node* user = use.user;
    const bool shape_query = user->kind() != jit::prim::Return && !user->outputs().empty() &&
                             std::none_of(user->outputs().begin(), user->outputs().end(),
                                          [](const jit::Value* v) { return carries_tensor(v->type()); });
    if (shape_query) continue;
    if (reader != nullptr || user->kind().toQualString() != std::string("aten::batch_norm") || use.offset != 0) {
      return nullptr;
    }
    reader = user;
  }
  if (reader == nullptr || reader->owningBlock() != value->node()->owningBlock() || reader->inputs().size() != 9) {
    return nullptr;
  }
  return reader;
}

jit::Value* wrap_input(jit::Graph& graph, jit::Node* before, jit::Value* v) {
  jit::Node* wrapped = graph.create(lrp_input_symbol(), {v}, 1);
  wrapped->output()->setType(v->type());
  wrapped->copyMetadata(before);
  wrapped->insertBefore(before);
  return wrapped->output();
}

// Puts cnnvis::lrp_output on `node`'s output: every later reader reads the wrapped value (returned).
jit::Value* wrap_output(jit::Graph& graph, jit::Node* node) {
  jit::Value* out = node->output();
  jit::Node* wrapped = graph.create(lrp_output_symbol(), {out}, 1);
  wrapped->output()->setType(out->type());
  wrapped->copyMetadata(node);
  wrapped->insertAfter(node);
  out->replaceAllUsesAfterNodeWith(wrapped, wrapped->output());
  return wrapped->output();
}

}  // namespace

std::shared_ptr<jit::Graph> relevance_graph(const PreparedGraph& prepared, const std::string& file) {
  auto graph = prepared.graph->copy();
  {
    std::vector<jit::Node*> taps;
    flatten(graph->block(), taps);
    for (jit::Node* node : taps) {
      if (node->kind() != tap_symbol()) continue;
      node->output()->replaceAllUsesWith(node->input(0));
      node->destroy();
    }
  }
  // Grows with every value a rewrite creates in place of a derived one (destroyed values' addresses may be
  // reused, so the old entries are dropped with them).
  std::set<const jit::Value*> derived = derived_from_input(*graph);
  const auto replace_derived = [&](jit::Value* old_value, jit::Value* new_value) {
    derived.erase(old_value);
    derived.insert(new_value);
  };
  std::vector<jit::Node*> nodes;
  flatten(graph->block(), nodes);
  std::set<const jit::Node*> destroyed;
  int convs = 0, linears = 0;
  const auto no_rule = [&](jit::Node* node, const std::string& what) {
    const std::string path = instance_path(node);
    return UsageError(file + ": LRP has no rule for " + what + (path.empty() ? "" : " (in module '" + path + "')") +
                      "; it handles convolutions, batch norms after them, linear layers, ReLUs, sums, pooling, "
                      "concatenation, flattening and dropout");
  };
  for (jit::Node* node : nodes) {
    if (destroyed.count(node)) continue;
    const bool reads_input = std::any_of(node->inputs().begin(), node->inputs().end(),
                                         [&](const jit::Value* v) { return derived.count(v) > 0; });
    if (!reads_input) continue;  // parameters and buffers only (a training-mode counter, say)
    const std::string kind = node->kind().toQualString();
    const bool in_place = kind.back() == '_' && kind.rfind("aten::", 0) == 0;
    if (!in_place && std::none_of(node->outputs().begin(), node->outputs().end(),
                                  [](const jit::Value* v) { return carries_tensor(v->type()); })) {
      continue;  // a shape query (size, dim): no relevance flows through it
    }
    if (const auto conv = conv_inputs(node)) {
      // The convolution itself stays (shape checks may read its output); cnnvis::lrp_conv reads its input
      // and output and applies the batch norm, if one follows, in its forward.
      jit::Value* y = node->output();
      jit::Node* bn = sole_batch_norm_reader(y);
      jit::Node* last = bn != nullptr ? bn : node;
      jit::WithInsertPoint guard(last);
      jit::Value* none = graph->insertConstant(c10::IValue());
      std::vector<jit::Value*> inputs{conv->x, y, conv->weight, conv->bias};
      if (bn != nullptr) {
        for (std::size_t i : {1, 2, 3, 4, 7}) inputs.push_back(bn->input(i));
      } else {
        inputs.insert(inputs.end(), {none, none, none, none, graph->insertConstant(0.0)});
      }
      inputs.insert(inputs.end(), {conv->stride, conv->padding, conv->dilation, conv->groups,
                                   graph->insertConstant(static_cast<std::int64_t>(convs++))});
      jit::Node* rule = graph->create(lrp_conv_symbol(), inputs, 1);
      rule->output()->setType(last->output()->type());
      rule->copyMetadata(node);
      derived.insert(rule->output());
      if (bn != nullptr) {
        rule->insertBefore(bn);
        bn->output()->replaceAllUsesWith(rule->output());
        derived.erase(bn->output());
        destroyed.insert(bn);
        bn->destroy();
      } else {
        rule->insertAfter(node);
        y->replaceAllUsesAfterNodeWith(rule, rule->output());
      }
    } else if (kind == "aten::linear" ||
               (kind == "aten::addmm" && node->input(2)->node()->kind().toQualString() == std::string("aten::t") &&
                is_int_constant(node->input(3), 1) && is_int_constant(node->input(4), 1))) {
      const bool addmm = kind == "aten::addmm";
      jit::Value* x = node->input(addmm ? 1 : 0);
      jit::Value* weight = addmm ? node->input(2)->node()->input(0) : node->input(1);
      jit::Value* bias = node->input(addmm ? 0 : 2);
      jit::WithInsertPoint guard(node);
      jit::Value* index = graph->insertConstant(static_cast<std::int64_t>(linears++));
      jit::Node* linear = graph->create(lrp_linear_symbol(), {x, weight, bias, index}, 1);
      linear->output()->setType(node->output()->type());
      linear->copyMetadata(node);
      linear->insertBefore(node);
      node->output()->replaceAllUsesWith(linear->output());
      replace_derived(node->output(), linear->output());
      destroyed.insert(node);
      node->destroy();
    } else if (kind == "aten::add" || kind == "aten::add_") {
      if (node->inputs().size() != 3 || node->input(1)->type()->kind() != c10::TypeKind::TensorType ||
          !is_int_constant(node->input(2), 1)) {
        throw no_rule(node, kind + " of a tensor and a number, or with alpha other than 1");
      }
      // Each term keeps the share z_i / z of the sum's relevance; an in-place sum becomes a new value.
      jit::Value* a = node->input(0);
      jit::Node* sum = graph->create(jit::Symbol::fromQualString("aten::add"),
                                     {wrap_input(*graph, node, a), wrap_input(*graph, node, node->input(1)), node->input(2)},
                                     1);
      sum->output()->setType(node->output()->type());
      sum->copyMetadata(node);
      sum->insertBefore(node);
      node->output()->replaceAllUsesWith(sum->output());
      if (kind == "aten::add_") a->replaceAllUsesAfterNodeWith(node, sum->output());
      replace_derived(node->output(), sum->output());
      destroyed.insert(node);
      node->destroy();
      derived.insert(wrap_output(*graph, sum));
    } else if (kind == "aten::adaptive_avg_pool2d" || kind == "aten::avg_pool2d" || kind == "aten::mean") {
      node->replaceInput(0, wrap_input(*graph, node, node->input(0)));
      derived.insert(wrap_output(*graph, node));
    } else if (node->kind() == relu_symbol() || kind.rfind("prim::", 0) == 0 || hands_relevance_on(kind)) {
      continue;
    } else if (kind == "aten::batch_norm") {
      throw no_rule(node, "a batch norm that does not follow a convolution (LRP merges it into the one before it)");
    } else {
      throw no_rule(node, kind);
    }
  }
  jit::EliminateDeadCode(graph);
  graph->lint();
  return graph;
}

}  // namespace cnnvis::script
