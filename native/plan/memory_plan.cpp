#include "plan/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <torch/cuda.h>

#include "core/error.h"
#include "device/placement.h"
#include "graph/typed_graph.h"
#include "graph/validator.h"
#include "graph/workflow_json.h"
#include "plan/plan_context.h"

namespace wan::plan {
namespace {

using nlohmann::json;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string pad(std::string s, size_t n) {
  if (s.size() < n) s.append(n - s.size(), ' ');
  return s;
}

// With a preset the weights need not be present: a prompt whose only problems are model files
// missing from the models folder is planned from the official shapes.
bool only_missing_model_files(const graph::ValidationResult& validation) {
  if (!validation.node_errors.is_object() || validation.node_errors.empty()) return false;
  for (const auto& [id, node] : validation.node_errors.items()) {
    for (const auto& error : node.value("errors", json::array())) {
      const std::string input =
          error.contains("extra_info") ? error["extra_info"].value("input_name", "") : "";
      // Not listed in the combo, or refused by the model-file rule (the folder does not exist).
      // With a preset nothing is read, so missing model and input files are no obstacle.
      const std::string type = error.value("type", "");
      const bool path_rule = type == "custom_validation_failed" &&
                             error.value("message", "") == "Value names a path the node cannot use";
      if (path_rule) continue;
      if (type != "value_not_in_list" || (input != "model_name" && input != "tokenizer"))
        return false;
    }
  }
  return true;
}

}  // namespace

PlanResult plan_prompt(const nlohmann::json& api_prompt, const graph::NodeRegistry& registry,
                       const PlanOptions& options) {
  auto validation = graph::validate_prompt(
      api_prompt, registry, {options.models_dir, options.output_dir, options.input_dir});
  if (!validation.ok && !(options.preset.empty() ? false : only_missing_model_files(validation)))
    throw graph::InvalidPrompt(validation.to_json());
  if (validation.outputs.empty()) {
    for (const auto& id : graph::sorted_node_ids(api_prompt)) {
      const auto* schema = registry.find(api_prompt[id].value("class_type", ""));
      if (schema && schema->is_output_node()) validation.outputs.push_back(id);
    }
  }

  // The ComputeDevice rules (docs/memory.md) without creating one: a budget on a CPU-only
  // machine is the virtual accelerator; CUDA without --vram uses the driver's total.
  const std::string dev = lower(options.device.device);
  const bool cuda = dev != "cpu" && torch::cuda::is_available();
  if (dev != "auto" && dev != "cpu" && dev.rfind("cuda", 0) != 0)
    throw ValidationError("memory plan: unknown device '" + options.device.device + "'");
  bool accelerator = false;
  std::string device_name = "cpu";
  int64_t capacity = -1;
  if (cuda) {
    device::ComputeDevice probe(options.device);
    accelerator = true;
    device_name = probe.name();
    capacity = probe.bytes_capacity();
  } else if (options.device.vram) {
    accelerator = true;
    device_name = "vgpu";
    capacity = *options.device.vram - options.device.reserve;
    if (capacity <= 0)
      throw ValidationError("--vram " + format_bytes(*options.device.vram) +
                            " leaves nothing usable after --reserve " +
                            format_bytes(options.device.reserve) +
                            "; raise --vram or lower --reserve");
  }
  PlanContext p(options.models_dir, options.preset, accelerator, device_name, capacity);
  p.set_input_folders(options.input_dir, options.output_dir);
  if (options.page_locked_streaming.value_or(cuda))
    p.set_page_lock_limit(options.device.page_lock.value_or(device::default_page_lock()));

  PlanResult result;
  result.device_name = device_name;
  result.capacity = capacity;
  json nodes = json::array();
  // Validated (or, planning a preset, failing only on the absent model files): the typed graph
  // the executor runs.
  const graph::TypedGraph graph = validation.ok
                                      ? std::move(validation.graph)
                                      : graph::typed_graph(api_prompt, registry, validation.outputs);
  for (const graph::GraphNode& node : graph) {
    const std::string& id = node.id;
    const std::string& class_type = node.class_type;
    const graph::NodeSchema& schema = *node.schema;
    const graph::Values& in = node.literals;
    std::map<std::string, std::pair<std::string, int64_t>> links;
    for (const auto& [name, link] : node.links) links[name] = {link.node_id, link.output};
    const std::string label = class_type + " (node " + id + ")";
    result.nodes.push_back(PlannedNode{id, class_type});
    PlannedNode& planned = result.nodes.back();
    p.begin_node(planned, label, links, schema.outputs().size());
    // A node that declares no plan is refused, not counted as free: the plan would be wrong.
    if (!registry.create(class_type)->plan(in, p))
      throw ValidationError(label + " declares no memory plan (graph::Node::plan), so --plan "
                            "and placement auto cannot predict this prompt; plan without it, or "
                            "give " + class_type + " a plan()");
    p.end_node(id);
    planned.device_after = p.device_held(), planned.cpu_after = p.cpu_held();
    planned.device_peak = p.device_peak(), planned.cpu_peak = p.cpu_peak();
    planned.peak_part = p.peak_part();
    if (planned.device_peak > result.device_peak) {
      result.device_peak = planned.device_peak;
      result.device_peak_node = label;
    }
    result.cpu_peak = std::max(result.cpu_peak, planned.cpu_peak);
    result.transfer_bytes += planned.bytes_in;

    json models = json::object();
    for (const auto& m : p.models())
      models[m->name] = m->on_device ? device_name : std::string("cpu");
    json entry = {{"node", id},
                  {"class_type", class_type},
                  {"bytes_after", {{device_name, planned.device_after}, {"cpu", planned.cpu_after}}},
                  {"bytes_peak", {{device_name, planned.device_peak}, {"cpu", planned.cpu_peak}}},
                  {"models", models},
                  {"transfers", {{"bytes_in", planned.bytes_in}, {"bytes_out", planned.bytes_out}}},
                  {"peak", planned.peak_part}};
    if (p.oom()) {
      planned.ok = false;
      planned.error = *p.oom();
      entry["outcome"] = "error";
      entry["error"] = *p.oom();
      nodes.push_back(entry);
      result.fits = false;
      result.first_oom_message = *p.oom();
      break;
    }
    entry["outcome"] = "ok";
    nodes.push_back(entry);
  }
  result.cpu_work = p.cpu_work();
  json models = json::object();
  for (const auto& m : p.models()) {
    models[m->name] = {{"placement", device::placement_name(m->placement)}, {"bytes", m->bytes}};
    result.model_bytes.emplace_back(m->name, m->bytes);
  }
  result.json = {{"device", device_name},
                 {"capacity", capacity},
                 {"preset", options.preset},
                 {"models", models},
                 {"nodes", nodes},
                 {"peak", {{device_name, result.device_peak}, {"cpu", result.cpu_peak}}},
                 {"peak_node", result.device_peak_node},
                 {"transfer_bytes", result.transfer_bytes},
                 {"fits", result.fits}};
  if (!result.fits) result.json["first_oom"] = result.first_oom_message;

  std::ostringstream text;
  text << "memory plan on " << device_name;
  if (capacity >= 0) text << " (" << format_bytes(capacity) << " usable)";
  if (!options.preset.empty()) text << ", preset " << options.preset;
  text << "\nmodels:";
  for (const auto& m : p.models())
    text << " " << m->name << " " << format_bytes(m->bytes) << " ("
         << device::placement_name(m->placement) << ")";
  text << "\n"
       << pad("node", 30) << pad(device_name + " after", 14) << pad(device_name + " peak", 14)
       << pad("cpu after", 14) << pad("moved in", 12) << "peak made of\n";
  for (const auto& n : result.nodes) {
    text << pad(n.class_type + " (" + n.node_id + ")", 30) << pad(format_bytes(n.device_after), 14)
         << pad(format_bytes(n.device_peak), 14) << pad(format_bytes(n.cpu_after), 14)
         << pad(format_bytes(n.bytes_in), 12) << n.peak_part << (n.ok ? "" : "  OUT OF MEMORY")
         << "\n";
  }
  if (result.fits) {
    text << "fits: peak " << format_bytes(result.device_peak) << " on " << device_name << " in "
         << result.device_peak_node << "; " << format_bytes(result.transfer_bytes)
         << " moved onto the device\n";
  } else {
    text << "does not fit: " << result.first_oom_message << "\n";
  }
  result.text = text.str();
  return result;
}

}  // namespace wan::plan
