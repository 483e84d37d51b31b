#include "io/torch_zip.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <functional>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/restricted_unpickler.h"
#include "io/zip_archive.h"

namespace wan::io {
namespace {

struct Checkpoint {
  ZipArchive archive;
  std::string prefix;  // "<archive name>/" before data.pkl and data/<key>
};

Checkpoint open_checkpoint(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!ZipArchive::looks_like_zip(file->data(), file->size())) {
    throw LoadError(path +
                    ": not a torch.save zip checkpoint (the legacy pre-1.6 format is not "
                    "supported: re-save it with a current torch.save)");
  }
  Checkpoint ckpt{ZipArchive(file), ""};
  bool found = false;
  for (const auto& [name, record] : ckpt.archive.records()) {
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash + 1) == "data.pkl") {
      ckpt.prefix = name.substr(0, slash + 1);
      found = true;
      break;
    }
  }
  if (!found) throw LoadError(path + ": zip archive has no <name>/data.pkl record");
  const std::string byteorder = ckpt.prefix + "byteorder";
  if (ckpt.archive.contains(byteorder)) {
    const auto& r = ckpt.archive.stored(byteorder);
    const std::string order(reinterpret_cast<const char*>(file->data() + r.offset), r.size);
    if (order != "little") throw LoadError(path + ": big-endian checkpoints are not supported");
  }
  return ckpt;
}

// Runs the restricted unpickler; with `with_data` each storage maps its zip record.
PickleValuePtr unpickle(const std::string& path, const Checkpoint& ckpt, bool with_data) {
  const auto& file = ckpt.archive.file();
  const auto& pkl = ckpt.archive.stored(ckpt.prefix + "data.pkl");
  std::map<std::string, PickleValuePtr> storages;  // shared between views of one storage

  auto persistent_load = [&](const PickleValue& pid, size_t offset) -> PickleValuePtr {
    const auto bad = [&](const std::string& what) {
      return LoadError(path + ": refused pickle at byte " + std::to_string(offset) + ": " + what);
    };
    if (pid.kind != PickleValue::Kind::kTuple || pid.items.size() < 5 ||
        pid.items[0]->kind != PickleValue::Kind::kString || pid.items[0]->text != "storage")
      throw bad("persistent id is not a ('storage', type, key, location, numel) tuple");
    const auto& type = pid.items[1];
    const auto& key = pid.items[2];
    const auto& numel = pid.items[4];
    if (type->kind != PickleValue::Kind::kGlobal) throw bad("storage type is not a storage class");
    const std::string dtype = RestrictedUnpickler::storage_dtype(type->text);
    if (dtype.empty()) throw bad("unknown storage class '" + type->text + "'");
    if (key->kind != PickleValue::Kind::kString) throw bad("storage key is not a string");
    if (numel->kind != PickleValue::Kind::kInt || numel->integer < 0) throw bad("bad storage size");
    if (auto it = storages.find(key->text); it != storages.end()) return it->second;

    auto storage = std::make_shared<PickleValue>();
    storage->kind = PickleValue::Kind::kStorage;
    storage->text = dtype;
    storage->numel = numel->integer;
    const std::string record_name = ckpt.prefix + "data/" + key->text;
    const auto& record = ckpt.archive.stored(record_name);
    const auto scalar = dtype_to_scalar_type(dtype);
    // Compared by division: numel x element size could wrap past 2^64 for a forged numel.
    const uint64_t element = c10::elementSize(scalar);
    if (static_cast<uint64_t>(numel->integer) > record.size / element)
      throw LoadError(path + ": storage record '" + record_name + "' holds " +
                      std::to_string(record.size) + " bytes, fewer than its " +
                      std::to_string(numel->integer) + " elements need");
    const uint64_t bytes = static_cast<uint64_t>(numel->integer) * element;
    if (record.size < bytes)
      throw LoadError(path + ": storage record '" + record_name + "' holds " +
                      std::to_string(record.size) + " bytes, its tensors need " + std::to_string(bytes));
    if (with_data) {
      uint8_t* ptr = file->data() + record.offset;
      const auto options = at::TensorOptions().dtype(scalar);
      if (bytes == 0) {
        storage->tensor = at::empty({0}, options);
      } else if (reinterpret_cast<uintptr_t>(ptr) % c10::elementSize(scalar) == 0) {
        storage->tensor = at::from_blob(ptr, {numel->integer}, [file](void*) {}, options);
      } else {
        storage->tensor = at::empty({numel->integer}, options);
        std::memcpy(storage->tensor.data_ptr(), ptr, bytes);
      }
    }
    storages[key->text] = storage;
    return storage;
  };

  RestrictedUnpickler unpickler(file->data() + pkl.offset, pkl.size, path + " (data.pkl)",
                                persistent_load);
  return unpickler.load();
}

// Walks the (possibly nested) dict of the pickle, calling `leaf` for each tensor.
void walk(const std::string& path, const PickleValuePtr& value, const std::string& prefix,
          const std::function<void(const std::string&, const PickleValue&)>& leaf) {
  if (value->kind == PickleValue::Kind::kTensor) {
    leaf(prefix, *value);
    return;
  }
  if (value->kind != PickleValue::Kind::kDict) {
    if (prefix.empty()) throw LoadError(path + ": checkpoint is not a state dict (a dict of tensors)");
    spdlog::debug("{}: ignoring non-tensor entry '{}'", path, prefix);
    return;
  }
  for (const auto& [key, item] : value->entries) {
    if (key->kind != PickleValue::Kind::kString)
      throw LoadError(path + ": state dict has a non-string key");
    walk(path, item, prefix.empty() ? key->text : prefix + "." + key->text, leaf);
  }
}

}  // namespace

TensorMap load_torch_zip(const std::string& path, const LoadOptions& /*options*/) {
  const auto ckpt = open_checkpoint(path);
  const auto root = unpickle(path, ckpt, /*with_data=*/true);
  TensorMap tensors;
  walk(path, root, "", [&](const std::string& name, const PickleValue& v) {
    tensors[name] = v.tensor;
  });
  return tensors;
}

std::vector<TensorInfo> read_torch_zip_infos(const std::string& path) {
  const auto ckpt = open_checkpoint(path);
  const auto root = unpickle(path, ckpt, /*with_data=*/false);
  std::vector<TensorInfo> infos;
  walk(path, root, "", [&](const std::string& name, const PickleValue& v) {
    infos.push_back(TensorInfo{name, v.text, v.shape, path});
  });
  return infos;
}

}  // namespace wan::io
