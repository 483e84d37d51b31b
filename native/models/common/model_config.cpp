#include "models/common/model_config.h"

#include <cmath>
#include <system_error>

#include "core/bounded_json.h"
#include "core/error.h"
#include "io/input_file.h"

namespace wan::models {
namespace {

JsonLimits config_limits() {
  JsonLimits limits;
  limits.max_bytes = kMaxConfigFileBytes;
  limits.max_depth = 32;
  limits.max_string_bytes = 64 << 10;
  limits.max_values = 1 << 16;
  return limits;
}

std::string type_name(const nlohmann::json& value) {
  if (value.is_number_float()) return "a number (" + printable(value.dump(), 40) + ")";
  if (value.is_number()) return "an integer (" + value.dump() + ")";
  if (value.is_string()) return "a string (" + printable(value.dump(), 40) + ")";
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return value.type_name();
}

}  // namespace

ModelConfig ModelConfig::parse(std::string_view text, const std::string& origin) {
  nlohmann::json json;
  try {
    json = parse_json_bounded(text, origin, config_limits());
  } catch (const ValidationError& e) {
    throw LoadError(std::string(e.what()) + " (model configuration)");
  }
  if (!json.is_object())
    throw LoadError(printable(origin, 400) + ": a model configuration must be a JSON object, got " +
                    type_name(json));
  return ModelConfig(std::move(json), printable(origin, 400));
}

std::optional<ModelConfig> ModelConfig::read(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) return std::nullopt;
  return parse(io::read_regular_file(path.string(), kMaxConfigFileBytes), path.string());
}

std::filesystem::path ModelConfig::beside(const std::filesystem::path& weights) {
  return weights.parent_path() / (weights.stem().string() + "_config.json");
}

bool ModelConfig::has(const std::string& key) const {
  auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

void ModelConfig::wrong(const std::string& key, const std::string& expected) const {
  throw LoadError(origin_ + ": \"" + printable(key) + "\" must be " + expected + ", got " +
                  type_name(json_.at(key)));
}

std::optional<int64_t> ModelConfig::integer(const std::string& key, int64_t min, int64_t max) const {
  if (!has(key)) return std::nullopt;
  const auto& v = json_.at(key);
  const std::string range = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(max)) wrong(key, range);
  if (!v.is_number_integer()) wrong(key, range);
  const auto value = v.get<int64_t>();
  if (value < min || value > max) wrong(key, range);
  return value;
}

std::optional<double> ModelConfig::number(const std::string& key, double min, double max) const {
  if (!has(key)) return std::nullopt;
  const auto& v = json_.at(key);
  const std::string range = "a number in [" + nlohmann::json(min).dump() + ", " + nlohmann::json(max).dump() + "]";
  if (!v.is_number()) wrong(key, range);
  const auto value = v.get<double>();
  if (!std::isfinite(value) || value < min || value > max) wrong(key, range);
  return value;
}

std::optional<bool> ModelConfig::boolean(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  if (!json_.at(key).is_boolean()) wrong(key, "true or false");
  return json_.at(key).get<bool>();
}

std::optional<std::string> ModelConfig::string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  if (!json_.at(key).is_string()) wrong(key, "a string");
  return json_.at(key).get<std::string>();
}

std::optional<std::vector<int64_t>> ModelConfig::integers(const std::string& key, int64_t min,
                                                          int64_t max, size_t max_count) const {
  if (!has(key)) return std::nullopt;
  const auto& v = json_.at(key);
  const std::string expected = "a list of at most " + std::to_string(max_count) +
                               " integers in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!v.is_array() || v.size() > max_count) wrong(key, expected);
  std::vector<int64_t> out;
  for (const auto& item : v) {
    if (!item.is_number_integer() || (item.is_number_unsigned() && item.get<uint64_t>() > uint64_t(max)))
      wrong(key, expected);
    const auto value = item.get<int64_t>();
    if (value < min || value > max) wrong(key, expected);
    out.push_back(value);
  }
  return out;
}

std::optional<ModelConfig> ModelConfig::object(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  if (!json_.at(key).is_object()) wrong(key, "an object");
  return ModelConfig(json_.at(key), origin_ + " (" + printable(key) + ")");
}

int64_t text_len_beside(const std::filesystem::path& weights, int64_t fallback) {
  const auto config = ModelConfig::read(ModelConfig::beside(weights));
  if (!config) return fallback;
  return config->integer("text_len", 1, kMaxConfigTextLen).value_or(fallback);
}

}  // namespace wan::models
