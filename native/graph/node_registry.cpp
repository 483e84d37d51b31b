#include "graph/node_registry.h"

#include <stdexcept>

#include "core/error.h"
#include "core/path_rules.h"

namespace wan::graph {

namespace fs = std::filesystem;

std::pair<const NodeView*, int64_t> NodeView::upstream(const std::string& input) const {
  auto it = upstream_.find(input);
  if (it == upstream_.end()) return {nullptr, 0};
  return it->second;
}

void NodeView::set_upstream(const std::string& input, const NodeView* node, int64_t output_index) {
  upstream_[input] = {node, output_index};
}

void RunContext::check_cancelled() const {
  if (cancel_flag && cancel_flag->load(std::memory_order_relaxed)) throw Cancelled();
}

void RunContext::report_ui(const nlohmann::json& ui) const {
  if (on_ui) on_ui(node_id_, ui);
}

void RunContext::report_latent(const at::Tensor& x0) const {
  if (on_latent) on_latent(node_id_, x0);
}

void RunContext::report_step(int64_t step, int64_t steps) {
  if (on_progress) {
    ProgressEvent event{ProgressEvent::Kind::kStep, node_id_, class_type_};
    event.step = step;
    event.steps = steps;
    on_progress(event);
  }
  check_cancelled();
}

device::DeviceManager& RunContext::devices() const {
  if (!device_manager) {
    throw Error(node_label() + ": no device manager in this run; the runner must set one");
  }
  return *device_manager;
}

fs::path RunContext::model_path(const std::string& folder, const std::string& name) const {
  const fs::path relative(name);
  const auto escapes = [&] {
    if (name.empty() || relative.is_absolute()) return true;
    for (const auto& part : relative)
      if (part == "..") return true;
    return false;
  };
  if (escapes())
    throw ValidationError(node_label() + ": model name '" + name + "' must be a file under " +
                          models_dir.describe(folder) + " (no absolute path, no '..')");
  const fs::path path = models_dir.locate(folder, name);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw LoadError(node_label() + ": model file '" + path.string() +
                    "' does not exist; put it under " + models_dir.describe(folder));
  }
  // A symlink may point anywhere inside the folder, never out of it; shards of an index too.
  try {
    return models_dir.resolve(folder, name, /*allow_folder=*/fs::is_directory(path, ec));
  } catch (const ValidationError& e) {
    throw ValidationError(node_label() + ": " + e.what());
  }
}

std::string RunContext::node_label() const {
  if (node_id_.empty()) return class_type_.empty() ? std::string("node") : class_type_;
  return class_type_ + " (node " + node_id_ + ")";
}

void NodeRegistry::add(NodeSchema schema, Factory factory) {
  const std::string name = schema.name();
  if (entries_.count(name)) {
    throw std::invalid_argument("NodeRegistry: node '" + name + "' is registered twice");
  }
  entries_.emplace(name, Entry{std::move(schema), std::move(factory)});
}

const NodeSchema* NodeRegistry::find(const std::string& class_type) const {
  auto it = entries_.find(class_type);
  return it == entries_.end() ? nullptr : &it->second.schema;
}

const NodeSchema& NodeRegistry::schema(const std::string& class_type) const {
  const NodeSchema* found = find(class_type);
  if (!found) throw ValidationError("unknown node type '" + class_type + "'");
  return *found;
}

std::unique_ptr<Node> NodeRegistry::create(const std::string& class_type) const {
  auto it = entries_.find(class_type);
  if (it == entries_.end()) throw ValidationError("unknown node type '" + class_type + "'");
  return it->second.factory();
}

std::vector<const NodeSchema*> NodeRegistry::schemas() const {
  std::vector<const NodeSchema*> all;
  for (const auto& [name, entry] : entries_) all.push_back(&entry.schema);
  return all;
}

nlohmann::json NodeRegistry::object_info(const ModelFolders& models_dir,
                                         const fs::path& input_dir) const {
  nlohmann::json info = nlohmann::json::object();
  for (const auto& [name, entry] : entries_)
    info[name] = entry.schema.object_info(models_dir, input_dir);
  return info;
}

}  // namespace wan::graph
