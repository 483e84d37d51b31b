// The JSON configuration that may accompany a model's weights: "<stem>_config.json" or
// "config.json" beside the file, or the safetensors metadata entry "config". Every loader reads
// it through this class, so every one has the same rules: bounded JSON, a value of the wrong type
// is an error naming the file and the key (never silently ignored), and every size a
// configuration may state is checked against a sane maximum before anything is allocated from it.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wan::models {

// Upper bounds for what a configuration may state. Sizes the weights carry are checked against
// the weights instead; these bound the rest (the official Wan2.1 values are far below).
inline constexpr int64_t kMaxConfigTextLen = 4096;  // tokens; the official models use 512
inline constexpr int64_t kMaxConfigDim = int64_t(1) << 16;
inline constexpr int64_t kMaxConfigHeads = 1024;
inline constexpr int64_t kMaxConfigLayers = 1024;
inline constexpr uint64_t kMaxConfigFileBytes = uint64_t(1) << 20;

class ModelConfig {
 public:
  // Parses `text`, which must be one JSON object. Throws LoadError "<origin>: ...".
  static ModelConfig parse(std::string_view text, const std::string& origin);
  // The configuration in the file `path`, or nullopt when nothing exists there. A directory, a
  // FIFO, a file over kMaxConfigFileBytes or invalid JSON is a LoadError.
  static std::optional<ModelConfig> read(const std::filesystem::path& path);
  // "<folder>/<stem>_config.json" for the weights file `weights`.
  static std::filesystem::path beside(const std::filesystem::path& weights);

  const std::string& origin() const { return origin_; }
  const nlohmann::json& json() const { return json_; }
  // `key` is present and not null.
  bool has(const std::string& key) const;

  // The value of `key`, nullopt when absent or null. A LoadError naming the origin and the key
  // when it has another type or lies outside [min, max].
  std::optional<int64_t> integer(const std::string& key, int64_t min, int64_t max) const;
  std::optional<double> number(const std::string& key, double min, double max) const;
  std::optional<bool> boolean(const std::string& key) const;
  std::optional<std::string> string(const std::string& key) const;
  std::optional<std::vector<int64_t>> integers(const std::string& key, int64_t min, int64_t max,
                                               size_t max_count) const;
  // A nested object (a Hugging Face "vision_config"), with origin "<origin> (key)".
  std::optional<ModelConfig> object(const std::string& key) const;

 private:
  ModelConfig(nlohmann::json json, std::string origin)
      : json_(std::move(json)), origin_(std::move(origin)) {}
  [[noreturn]] void wrong(const std::string& key, const std::string& expected) const;

  nlohmann::json json_;
  std::string origin_;
};

// text_len from "<stem>_config.json" beside a text encoder's weights, in [1, kMaxConfigTextLen];
// `fallback` when there is no such file or it does not set text_len.
int64_t text_len_beside(const std::filesystem::path& weights, int64_t fallback);

}  // namespace wan::models
