#include "graph/executor.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <set>

#include "device/device_manager.h"
#include "graph/typed_graph.h"
#include "graph/workflow_json.h"

namespace wan::graph {

using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Every executed node is one stage of the memory ledger when the run has a device manager, so
// the runner, the Python binding and the tests all get the same per-node memory record.
void begin_stage(RunContext& run, const std::string& id, const std::string& class_type) {
  if (run.device_manager) run.device_manager->ledger().begin_stage(id, class_type);
}
void end_stage(RunContext& run, const std::string& failure = "") {
  if (!run.device_manager || !run.device_manager->ledger().in_stage()) return;
  auto& ledger = run.device_manager->ledger();
  if (failure.empty()) ledger.end_stage();
  else ledger.end_stage(device::StageOutcome::failure(failure));
}

void emit(RunContext& run, ProgressEvent::Kind kind, const std::string& id,
          const std::string& class_type, double wall_ms = 0) {
  if (!run.on_progress) return;
  ProgressEvent event{kind, id, class_type};
  event.wall_ms = wall_ms;
  run.on_progress(event);
}

// The message of the exception a NodeError wraps.
std::string cause_message(const NodeError& error) {
  try {
    if (error.cause()) std::rethrow_exception(error.cause());
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return error.what();
}

}  // namespace

const char* outcome_name(NodeRun::Outcome outcome) {
  switch (outcome) {
    case NodeRun::Outcome::kOk:
      return "ok";
    case NodeRun::Outcome::kCached:
      return "cached";
    case NodeRun::Outcome::kError:
      return "error";
    case NodeRun::Outcome::kCancelled:
      return "cancelled";
  }
  return "?";
}

int RunReport::executed() const {
  int count = 0;
  for (const auto& node : nodes) count += node.outcome == NodeRun::Outcome::kOk;
  return count;
}

int RunReport::cached() const {
  int count = 0;
  for (const auto& node : nodes) count += node.outcome == NodeRun::Outcome::kCached;
  return count;
}

json RunReport::to_json() const {
  json list = json::array();
  for (const auto& node : nodes) {
    json entry = {{"id", node.node_id},
                  {"class_type", node.class_type},
                  {"title", node.title},
                  {"outcome", outcome_name(node.outcome)},
                  {"wall_ms", node.wall_ms}};
    if (node.outcome == NodeRun::Outcome::kError) entry["error"] = node.error;
    list.push_back(entry);
  }
  return {{"nodes", list}, {"wall_ms", wall_ms}, {"executed", executed()}, {"cached", cached()}};
}

const Values* Executor::outputs(const std::string& node_id) const {
  auto key = last_keys_.find(node_id);
  if (key == last_keys_.end()) return nullptr;
  auto it = cache_.find(key->second);
  return it == cache_.end() ? nullptr : &it->second;
}

void Executor::clear_cache() {
  cache_.clear();
  interned_.clear();
  last_keys_.clear();
}

std::map<std::string, uint64_t> Executor::signatures(const json& prompt,
                                                     const std::vector<std::string>& order) {
  std::map<std::string, uint64_t> keys;
  std::set<uint64_t> used;
  for (const auto& id : order) {
    const std::string class_type = prompt[id]["class_type"].get<std::string>();
    const NodeSchema& schema = registry_.schema(class_type);
    const json& inputs = prompt[id].value("inputs", json::object());
    // Upstream nodes appear by their own key, so equal text means equal inputs all the way up.
    std::string text = class_type;
    for (const Input& input : schema.inputs()) {
      text += '\n' + input.id() + '=';
      auto it = inputs.find(input.id());
      std::string up;
      int64_t index;
      if (it == inputs.end() || it->is_null()) {
        text += '~';
      } else if (parse_link(*it, &up, &index)) {
        text += '@' + std::to_string(keys.at(up)) + ':' + std::to_string(index);
      } else {
        text += it->dump();
      }
    }
    auto [entry, inserted] = interned_.emplace(text, next_key_);
    if (inserted) ++next_key_;
    keys[id] = entry->second;
    used.insert(entry->second);
  }
  // Drop what this prompt no longer uses, before anything new is computed.
  for (auto it = cache_.begin(); it != cache_.end();) {
    it = used.count(it->first) ? std::next(it) : cache_.erase(it);
  }
  for (auto it = interned_.begin(); it != interned_.end();) {
    it = used.count(it->second) ? std::next(it) : interned_.erase(it);
  }
  return keys;
}

Values run_node(const NodeRegistry& registry, const std::string& node_id,
                const std::string& class_type, Values in, RunContext& run) {
  const NodeSchema& schema = registry.schema(class_type);
  run.node_id_ = node_id;
  run.class_type_ = class_type;
  const std::string label = run.node_label();
  try {
    in.set_owner(label);
    for (const Input* input : schema.ordered_inputs()) {
      if (in.has(input->id())) continue;
      if (input->is_widget() && !input->default_value().is_null())
        in.set(input->id(), literal_value(input->default_value(), *input));
      else if (!input->is_optional())
        throw ValidationError(label + ": required input '" + input->id() + "' is missing");
    }
    run.check_cancelled();
    begin_stage(run, node_id, class_type);
    emit(run, ProgressEvent::Kind::kNodeStarted, node_id, class_type);
    Values out = registry.create(class_type)->execute(in, run);
    if (out.size() != schema.outputs().size())
      throw Error(label + ": returned " + std::to_string(out.size()) +
                  " outputs, its schema declares " + std::to_string(schema.outputs().size()));
    out.set_owner(label);
    end_stage(run);
    return out;
  } catch (const Cancelled&) {
    end_stage(run, "cancelled");
    throw;
  } catch (const std::exception& e) {
    end_stage(run, e.what());
    const std::string message = e.what();
    // Node messages usually start with the label already; don't say it twice.
    throw NodeError(node_id, class_type, std::current_exception(),
                    message.rfind(label, 0) == 0 ? message : label + ": " + message);
  }
}

RunReport Executor::run(const json& prompt, RunContext& run) {
  last_report_ = RunReport{};
  const auto run_start = Clock::now();
  ValidationResult validation = validate_prompt(prompt, registry_, {run.models_dir, run.output_dir, run.input_dir});
  if (!validation.ok) throw InvalidPrompt(validation.to_json());

  const TypedGraph& graph = validation.graph;
  std::vector<std::string> order;
  order.reserve(graph.size());
  for (const auto& node : graph) order.push_back(node.id);
  last_keys_ = signatures(prompt, order);
  std::vector<uint64_t> created;
  auto finish = [&] {
    last_report_.wall_ms = ms_since(run_start);
    run.node_id_.clear();
    run.class_type_.clear();
  };

  for (const GraphNode& node : graph) {
    const std::string& id = node.id;
    NodeRun entry;
    entry.node_id = id;
    entry.class_type = node.class_type;
    entry.title = node.title;
    const uint64_t key = last_keys_.at(id);
    const std::string label = entry.class_type + " (node " + id + ")";

    if (cache_.count(key)) {
      entry.outcome = NodeRun::Outcome::kCached;
      last_report_.nodes.push_back(entry);
      emit(run, ProgressEvent::Kind::kNodeCached, id, entry.class_type);
      continue;
    }

    const auto node_start = Clock::now();
    // The report keeps the node's own message; NodeError's adds the label.
    auto failed = [&](const std::string& message) {
      entry.outcome = NodeRun::Outcome::kError;
      entry.error = message;
      entry.wall_ms = ms_since(node_start);
      last_report_.nodes.push_back(entry);
      spdlog::error("{} failed: {}", label, message);
      finish();
    };
    try {
      Values in = node.literals;
      for (const auto& [input, link] : node.links)
        in.set(input, cache_.at(last_keys_.at(link.node_id))[static_cast<size_t>(link.output)]);
      Values out = run_node(registry_, id, entry.class_type, std::move(in), run);
      cache_[key] = std::move(out);
      created.push_back(key);
    } catch (const Cancelled&) {
      entry.outcome = NodeRun::Outcome::kCancelled;
      entry.wall_ms = ms_since(node_start);
      last_report_.nodes.push_back(entry);
      // A cancelled run leaves nothing of its own behind; what earlier runs cached stays.
      for (uint64_t created_key : created) cache_.erase(created_key);
      spdlog::info("run cancelled in {}", label);
      finish();
      throw;
    } catch (const NodeError& e) {
      failed(cause_message(e));
      throw;
    } catch (const std::exception& e) {  // resolving the inputs failed
      failed(e.what());
      throw NodeError(id, entry.class_type, std::current_exception(), label + ": " + e.what());
    }
    entry.wall_ms = ms_since(node_start);
    last_report_.nodes.push_back(entry);
    emit(run, ProgressEvent::Kind::kNodeFinished, id, entry.class_type, entry.wall_ms);
    spdlog::debug("{}: {:.2f} ms", label, entry.wall_ms);
  }
  finish();
  return last_report_;
}

}  // namespace wan::graph
