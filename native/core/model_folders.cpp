#include "core/model_folders.h"

#include "core/error.h"
#include "core/path_rules.h"

namespace wan {

namespace fs = std::filesystem;

void ModelFolders::add(const std::string& folder, fs::path dir) {
  auto& dirs = extra_[folder];
  for (const auto& existing : dirs)
    if (existing == dir) return;
  dirs.push_back(std::move(dir));
}

std::vector<fs::path> ModelFolders::dirs(const std::string& folder) const {
  std::vector<fs::path> out;
  if (!root_.empty()) out.push_back(root_ / folder);
  if (auto it = extra_.find(folder); it != extra_.end())
    for (const auto& dir : it->second)
      if (out.empty() || dir != out.front()) out.push_back(dir);
  return out;
}

std::string ModelFolders::describe(const std::string& folder) const {
  std::string text;
  for (const auto& dir : dirs(folder)) text += (text.empty() ? "" : ", ") + dir.string();
  return text.empty() ? "(no " + folder + " folder configured)" : text;
}

fs::path ModelFolders::locate(const std::string& folder, const std::string& name) const {
  const auto all = dirs(folder);
  std::error_code ec;
  for (const auto& dir : all)
    if (fs::exists(fs::symlink_status(dir / name, ec))) return dir / name;
  return all.empty() ? fs::path(folder) / name : all.front() / name;
}

fs::path ModelFolders::resolve(const std::string& folder, const std::string& name,
                               bool allow_folder) const {
  const auto all = dirs(folder);
  if (all.empty())
    throw ValidationError("model name '" + name + "': no " + folder + " folder is configured");
  std::error_code ec;
  for (const auto& dir : all)
    if (fs::exists(fs::symlink_status(dir / name, ec)))
      return resolve_model_file_in(dir, name, allow_folder);
  // In none of them: the first directory's check says which rule the name breaks (absolute,
  // '..', not UTF-8, or simply absent); with several directories, absent from all is said so.
  const fs::path relative(name);
  bool plain = !name.empty() && !relative.is_absolute();
  for (const auto& part : relative)
    if (part == "..") plain = false;
  if (all.size() == 1 || !plain) resolve_model_file_in(all.front(), name, allow_folder);
  throw ValidationError("model name '" + name + "' does not exist in any " + folder +
                        " directory (" + describe(folder) + ")");
}

}  // namespace wan
