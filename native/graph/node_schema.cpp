#include "graph/node_schema.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <stdexcept>
#include <utility>

#include "core/path_rules.h"

namespace wan::graph {

namespace fs = std::filesystem;
using nlohmann::json;

Input& Input::default_to(json value) {
  default_ = std::move(value);
  return *this;
}
Input& Input::min(json value) {
  min_ = std::move(value);
  return *this;
}
Input& Input::max(json value) {
  max_ = std::move(value);
  return *this;
}
Input& Input::step(json value) {
  step_ = std::move(value);
  return *this;
}
Input& Input::multiline(bool on) {
  multiline_ = on;
  return *this;
}
Input& Input::optional(bool on) {
  optional_ = on;
  return *this;
}
Input& Input::tooltip(std::string text) {
  tooltip_ = std::move(text);
  return *this;
}
Input& Input::control_after_generate(bool on) {
  control_after_generate_ = on;
  return *this;
}
Input& Input::force_input(bool on) {
  force_input_ = on;
  return *this;
}
Input& Input::options(std::vector<std::string> options) {
  options_ = std::move(options);
  provider_ = nullptr;
  return *this;
}
Input& Input::options(ComboProvider provider) {
  provider_ = std::move(provider);
  options_.clear();
  return *this;
}

Input& Input::multiple_of(int64_t step, int64_t offset) {
  if (step < 1 || offset < 0 || offset >= step)
    throw std::invalid_argument("input '" + id_ + "': multiple_of(" + std::to_string(step) + ", " +
                                std::to_string(offset) + ") needs step >= 1, 0 <= offset < step");
  multiple_of_step_ = step;
  multiple_of_offset_ = offset;
  return *this;
}
Input& Input::output_prefix() {
  path_rule_ = PathRule::kOutputPrefix;
  return *this;
}
Input& Input::input_file(InputFiles kind) {
  path_rule_ = PathRule::kInputFile;
  input_files_ = kind;
  return *this;
}
Input& Input::model_folder(std::string folder) {
  path_rule_ = PathRule::kModelFile;
  model_folder_ = std::move(folder);
  return *this;
}
Input& Input::allow_folder(bool on) {
  allow_folder_ = on;
  return *this;
}
Input& Input::no_file_value(std::string value) {
  no_file_values_.push_back(std::move(value));
  return *this;
}
Input& Input::planner_choice(int64_t auto_value, std::vector<int64_t> candidates) {
  planner_auto_value_ = auto_value;
  planner_candidates_.assign(candidates.begin(), candidates.end());
  return *this;
}
Input& Input::planner_choice(std::string auto_value, std::vector<std::string> candidates) {
  planner_auto_value_ = std::move(auto_value);
  planner_candidates_.assign(candidates.begin(), candidates.end());
  return *this;
}
Input& Input::planner_choice_when(std::string input, std::string value) {
  planner_when_ = {std::move(input), std::move(value)};
  return *this;
}

bool Input::is_widget() const {
  if (force_input_) return false;
  return type_ == kInt || type_ == kFloat || type_ == kString || type_ == kBoolean ||
         type_ == kCombo;
}

Input& Input::upload(std::string kind) {
  upload_ = std::move(kind);
  return *this;
}

namespace {
// The files directly in input_dir whose extension suits an upload combo of `kind`, sorted: what
// ComfyUI's LoadImage / LoadVideo list (folder_paths.filter_files_content_types).
std::vector<std::string> list_input_files(const fs::path& input_dir, const std::string& kind) {
  static const std::vector<std::string> images = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"};
  static const std::vector<std::string> videos = {".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif", ".webp"};
  const auto& wanted = kind == "video" ? videos : images;
  std::vector<std::string> files;
  std::error_code ec;
  if (input_dir.empty() || !fs::is_directory(input_dir, ec)) return files;
  for (fs::directory_iterator it(input_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (std::find(wanted.begin(), wanted.end(), ext) != wanted.end())
      files.push_back(it->path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}
}  // namespace

std::vector<std::string> Input::combo_options(const ModelFolders& models_dir,
                                              const fs::path& input_dir) const {
  if (!upload_.empty()) return list_input_files(input_dir, upload_);
  return provider_ ? provider_(models_dir) : options_;
}

json Input::object_info(const ModelFolders& models_dir, const fs::path& input_dir) const {
  json config = json::object();
  if (!default_.is_null()) config["default"] = default_;
  if (!min_.is_null()) config["min"] = min_;
  if (!max_.is_null()) config["max"] = max_;
  if (!step_.is_null()) config["step"] = step_;
  if (multiline_) config["multiline"] = true;
  if (control_after_generate_) config["control_after_generate"] = true;
  if (force_input_) config["forceInput"] = true;
  if (!tooltip_.empty()) config["tooltip"] = tooltip_;
  if (!upload_.empty()) config[upload_ + "_upload"] = true;
  json type = is_combo() ? json(combo_options(models_dir, input_dir)) : json(type_);
  if (config.empty()) return json::array({type});
  return json::array({type, config});
}

Input Int(std::string id) { return Input(std::move(id), kInt); }
Input Float(std::string id) { return Input(std::move(id), kFloat); }
Input String(std::string id) { return Input(std::move(id), kString); }
Input Boolean(std::string id) { return Input(std::move(id), kBoolean); }
Input Choice(std::string id, std::vector<std::string> options) {
  return Input(std::move(id), kCombo).options(std::move(options));
}
Input Choice(std::string id, ComboProvider provider) {
  return Input(std::move(id), kCombo).options(std::move(provider));
}
Input ModelFile(std::string id, std::string folder) {
  return Choice(std::move(id),
                [folder](const ModelFolders& models_dir) {
                  return list_model_files(models_dir, folder, model_file_extensions());
                })
      .model_folder(folder);
}
Input Socket(std::string id, std::string type) { return Input(std::move(id), std::move(type)); }

const std::vector<std::string>& model_file_extensions() {
  static const std::vector<std::string> kExtensions = {
      ".safetensors", ".sft", ".pth", ".pt", ".bin", ".ckpt", ".safetensors.index.json"};
  return kExtensions;
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Whether canonical path `path` is `root` or below it.
bool is_within(const fs::path& root, const fs::path& path) {
  const std::string r = root.string(), p = path.string();
  return p == r || (p.size() > r.size() && p.compare(0, r.size(), r) == 0 &&
                    (r.back() == '/' || p[r.size()] == '/'));
}

}  // namespace

namespace {

// The model files of one directory (appended to `files`).
void list_dir_model_files(const fs::path& folder_dir, const std::vector<std::string>& extensions,
                          std::vector<std::string>& files) {
  std::error_code ec;
  const fs::path root = fs::canonical(folder_dir, ec);
  if (ec || !fs::is_directory(root, ec)) return;
  // Iterative walk over names as given (so a listed name is what the user types), following
  // symlinks only when their target stays inside `root`; (device, inode) pairs stop loops.
  std::set<std::pair<dev_t, ino_t>> visited;
  std::vector<std::pair<fs::path, int>> pending = {{fs::path(), 0}};  // relative folder, depth
  struct stat st {};
  if (::stat(root.c_str(), &st) == 0) visited.insert({st.st_dev, st.st_ino});
  while (!pending.empty()) {
    const auto [relative, depth] = pending.back();
    pending.pop_back();
    for (fs::directory_iterator it(root / relative, fs::directory_options::skip_permission_denied,
                                   ec),
         end;
         !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!is_valid_utf8(name)) {
        spdlog::warn("{}: skipping a file name that is not valid UTF-8", (root / relative).string());
        continue;
      }
      const fs::path entry = relative / name;
      std::error_code entry_ec;
      const fs::path target = fs::canonical(root / entry, entry_ec);
      if (entry_ec || !is_within(root, target)) continue;  // dangling, or points out of the folder
      if (::stat(target.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        if (depth + 1 < kModelListDepth && visited.insert({st.st_dev, st.st_ino}).second)
          pending.push_back({entry, depth + 1});
        continue;
      }
      if (!S_ISREG(st.st_mode)) continue;
      for (const auto& extension : extensions) {
        if (ends_with(name, extension)) {
          files.push_back(entry.generic_string());
          break;
        }
      }
    }
    ec.clear();
  }
}

}  // namespace

std::vector<std::string> list_model_files(const ModelFolders& models_dir, const std::string& folder,
                                          const std::vector<std::string>& extensions) {
  std::vector<std::string> files;
  for (const auto& dir : models_dir.dirs(folder)) list_dir_model_files(dir, extensions, files);
  // A name in two directories is one choice (the first directory's file is the one read).
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

NodeSchema::NodeSchema(std::string name, std::string category)
    : name_(std::move(name)), category_(std::move(category)) {}

NodeSchema& NodeSchema::input(Input input) {
  if (find_input(input.id())) {
    throw std::invalid_argument("NodeSchema '" + name_ + "': duplicate input id '" + input.id() +
                                "'");
  }
  inputs_.push_back(std::move(input));
  return *this;
}

NodeSchema& NodeSchema::output(std::string type, std::string name, std::string tooltip) {
  if (name.empty()) name = type;  // ComfyUI names an unnamed output after its type
  outputs_.push_back({std::move(type), std::move(name), std::move(tooltip)});
  return *this;
}

NodeSchema& NodeSchema::display_name(std::string text) {
  display_name_ = std::move(text);
  return *this;
}
NodeSchema& NodeSchema::description(std::string text) {
  description_ = std::move(text);
  return *this;
}
NodeSchema& NodeSchema::output_node(bool on) {
  output_node_ = on;
  return *this;
}

const Input* NodeSchema::find_input(const std::string& id) const {
  for (const auto& input : inputs_) {
    if (input.id() == id) return &input;
  }
  return nullptr;
}

std::vector<const Input*> NodeSchema::ordered_inputs() const {
  std::vector<const Input*> ordered;
  for (const auto& input : inputs_) {
    if (!input.is_optional()) ordered.push_back(&input);
  }
  for (const auto& input : inputs_) {
    if (input.is_optional()) ordered.push_back(&input);
  }
  return ordered;
}

NodeSchema& NodeSchema::comfy_core(std::string module) {
  core_module_ = std::move(module);
  return *this;
}

NodeSchema& NodeSchema::hidden(std::string id, std::string type) {
  hidden_.emplace_back(std::move(id), std::move(type));
  return *this;
}

json NodeSchema::object_info(const ModelFolders& models_dir, const fs::path& input_dir) const {
  json required = json::object(), optional = json::object();
  json order_required = json::array(), order_optional = json::array();
  for (const Input* input : ordered_inputs()) {
    (input->is_optional() ? optional : required)[input->id()] =
        input->object_info(models_dir, input_dir);
    (input->is_optional() ? order_optional : order_required).push_back(input->id());
  }
  json info;
  info["input"] = {{"required", required}};
  info["input_order"] = {{"required", order_required}};
  if (!optional.empty()) {
    info["input"]["optional"] = optional;
    info["input_order"]["optional"] = order_optional;
  }
  if (!hidden_.empty()) {
    json hidden = json::object(), order_hidden = json::array();
    for (const auto& [id, type] : hidden_) {
      hidden[id] = type;
      order_hidden.push_back(id);
    }
    info["input"]["hidden"] = hidden;
    info["input_order"]["hidden"] = order_hidden;
  }
  json types = json::array(), names = json::array(), is_list = json::array(),
       tooltips = json::array();
  for (const auto& output : outputs_) {
    types.push_back(output.type);
    names.push_back(output.name);
    is_list.push_back(false);
    tooltips.push_back(output.tooltip);
  }
  info["output"] = types;
  info["output_is_list"] = is_list;
  info["output_name"] = names;
  info["output_tooltips"] = tooltips;
  info["name"] = name_;
  info["display_name"] = display_name();
  info["description"] = description_;
  info["python_module"] = core_module_.empty() ? "wan_native" : core_module_;
  info["category"] = category_;
  info["output_node"] = output_node_;
  return info;
}

namespace {

std::set<std::string> split_types(const std::string& types) {
  std::set<std::string> parts;
  size_t start = 0;
  while (start <= types.size()) {
    size_t comma = types.find(',', start);
    if (comma == std::string::npos) comma = types.size();
    std::string part = types.substr(start, comma - start);
    const auto first = part.find_first_not_of(' ');
    const auto last = part.find_last_not_of(' ');
    if (first != std::string::npos) parts.insert(part.substr(first, last - first + 1));
    start = comma + 1;
  }
  return parts;
}

}  // namespace

bool types_compatible(const std::string& output_type, const Input& input) {
  const std::string& input_type = input.type();
  if (output_type == input_type || output_type == "*" || input_type == "*") return true;
  const auto received = split_types(output_type);
  for (const auto& type : split_types(input_type)) {
    if (received.count(type)) return true;
  }
  return false;
}

}  // namespace wan::graph
