#include "io/tensor_index.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/bounded_json.h"
#include "core/error.h"
#include "io/input_file.h"
#include "io/safetensors.h"
#include "io/torch_zip.h"

namespace wan::io {
namespace {

enum class Format { kSafetensors, kShardIndex, kTorchZip };

// A *.index.json lists every tensor key once; 64 MiB is far beyond the largest real one.
constexpr uint64_t kMaxShardIndexBytes = uint64_t(64) << 20;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Format detect_format(const std::string& path) {
  require_regular_file(path, UINT64_MAX);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LoadError(path + ": cannot open (missing file?)");
  char magic[4] = {};
  in.read(magic, 4);
  if (in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4)
    return Format::kTorchZip;
  if (ends_with(path, ".json")) return Format::kShardIndex;
  return Format::kSafetensors;
}

// The shard files of an index.json, each with the keys it should hold.
std::map<std::string, std::set<std::string>> read_shard_index(const std::string& path,
                                                              std::map<std::string, std::string>* metadata) {
  JsonLimits limits;
  limits.max_bytes = kMaxShardIndexBytes;
  limits.max_depth = 8;
  nlohmann::json json;
  try {
    json = parse_json_bounded(read_regular_file(path, limits.max_bytes), path + " (shard index)", limits);
  } catch (const ValidationError& e) {
    throw LoadError(e.what());
  }
  if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object())
    throw LoadError(path + ": shard index has no \"weight_map\" object");
  const auto folder = std::filesystem::path(path).parent_path();
  std::map<std::string, std::set<std::string>> shards;
  for (const auto& [key, file] : json["weight_map"].items()) {
    if (!file.is_string()) throw LoadError(path + ": weight_map entry '" + key + "' is not a file name");
    const std::string name = file.get<std::string>();
    if (name.find("..") != std::string::npos || name.empty() || name[0] == '/')
      throw LoadError(path + ": shard name '" + name + "' escapes the index's folder");
    shards[(folder / name).string()].insert(key);
  }
  if (metadata && json.contains("metadata") && json["metadata"].is_object())
    for (const auto& [k, v] : json["metadata"].items())
      (*metadata)[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return shards;
}

}  // namespace

TensorMap load_tensors(const std::string& path, const LoadOptions& options) {
  switch (detect_format(path)) {
    case Format::kTorchZip:
      return load_torch_zip(path, options);
    case Format::kSafetensors:
      return load_safetensors(path, options);
    case Format::kShardIndex: {
      TensorMap all;
      for (const auto& [shard, keys] : read_shard_index(path, nullptr)) {
        auto tensors = load_safetensors(shard, options);
        for (const auto& key : keys) {
          auto it = tensors.find(key);
          if (it == tensors.end())
            throw LoadError(path + ": tensor '" + key + "' is listed in the index but missing from " + shard);
          all[key] = it->second;
        }
      }
      return all;
    }
  }
  return {};
}

std::vector<TensorInfo> read_tensor_infos(const std::string& path) {
  switch (detect_format(path)) {
    case Format::kTorchZip:
      return read_torch_zip_infos(path);
    case Format::kSafetensors: {
      std::vector<TensorInfo> infos;
      for (auto& record : read_safetensors_header(path).records) infos.push_back(record.info);
      return infos;
    }
    case Format::kShardIndex: {
      std::vector<TensorInfo> infos;
      for (const auto& [shard, keys] : read_shard_index(path, nullptr))
        for (auto& record : read_safetensors_header(shard).records)
          if (keys.count(record.info.name)) infos.push_back(record.info);
      return infos;
    }
  }
  return {};
}

std::map<std::string, std::string> read_metadata(const std::string& path) {
  switch (detect_format(path)) {
    case Format::kTorchZip:
      return {};
    case Format::kSafetensors:
      return read_safetensors_header(path).metadata;
    case Format::kShardIndex: {
      std::map<std::string, std::string> metadata;
      for (const auto& [shard, keys] : read_shard_index(path, &metadata))
        for (const auto& [k, v] : read_safetensors_header(shard).metadata) metadata.emplace(k, v);
      return metadata;
    }
  }
  return {};
}

}  // namespace wan::io
