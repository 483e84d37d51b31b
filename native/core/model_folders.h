// Where model files are found. wan-run and wan-serve read ComfyUI's layout under one folder
// (models_dir/<folder>/<name>); ComfyUI itself gives each folder several directories
// (folder_paths, extra_model_paths.yaml), which the binding adds here, so every reader (the
// validator, the nodes, the planner, the combos) looks in the same places in the same order.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace wan {

class ModelFolders {
 public:
  ModelFolders() = default;
  // The ComfyUI layout under `root` (implicit: a models folder is the common case).
  ModelFolders(std::filesystem::path root) : root_(std::move(root)) {}  // NOLINT
  ModelFolders(const std::string& root) : root_(root) {}                 // NOLINT
  ModelFolders(const char* root) : root_(root) {}                        // NOLINT

  // `dir` holds `folder`'s files directly (searched after root/<folder> and earlier additions).
  void add(const std::string& folder, std::filesystem::path dir);

  // The directories of `folder`, in search order.
  std::vector<std::filesystem::path> dirs(const std::string& folder) const;
  // No root and no added directory: nothing to look in.
  bool empty() const { return root_.empty() && extra_.empty(); }
  const std::filesystem::path& root() const { return root_; }
  // "a, b" of dirs(folder), for messages.
  std::string describe(const std::string& folder) const;

  // The path of `name` in the first of `folder`'s directories that has it, checked as
  // resolve_model_file checks it (path_rules.h). Throws ValidationError listing every directory
  // when none has it.
  std::filesystem::path resolve(const std::string& folder, const std::string& name,
                                bool allow_folder = false) const;
  // Where `name` is, or would be read from: the first directory that has it, else the first
  // directory (for messages and for planning without the files).
  std::filesystem::path locate(const std::string& folder, const std::string& name) const;

 private:
  std::filesystem::path root_;
  std::map<std::string, std::vector<std::filesystem::path>> extra_;
};

}  // namespace wan
