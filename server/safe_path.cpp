#include "server/safe_path.h"

#include <algorithm>
#include <map>
#include <vector>

#include "core/path_rules.h"

namespace wan::server {

namespace fs = std::filesystem;

namespace {

bool is_inside(const fs::path& folder, const fs::path& path) {
  auto f = folder.begin(), p = path.begin();
  for (; f != folder.end(); ++f, ++p) {
    if (p == path.end() || *f != *p) return false;
  }
  return true;
}

ResolvedPath failure(int status, std::string error) {
  ResolvedPath result;
  result.status = status;
  result.error = std::move(error);
  return result;
}

}  // namespace

ResolvedPath resolve_in_folder(const fs::path& folder, const std::string& relative,
                               bool must_exist) {
  if (relative.find('\0') != std::string::npos) return failure(400, "the name holds a NUL byte");
  if (!is_valid_utf8(relative)) return failure(400, "the name is not valid UTF-8");
  if (!relative.empty() && relative[0] == '/') return failure(400, "absolute paths are refused");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= relative.size()) {
    size_t end = relative.find('/', start);
    if (end == std::string::npos) end = relative.size();
    const std::string part = relative.substr(start, end - start);
    if (part == "..") return failure(400, "'..' is refused in names");
    if (!part.empty() && part != ".") parts.push_back(part);
    start = end + 1;
  }
  std::error_code ec;
  const fs::path root = fs::canonical(folder, ec);
  if (ec) return failure(404, "the folder does not exist");
  fs::path joined = root;
  for (const auto& part : parts) joined /= part;

  ResolvedPath result;
  result.path = joined;
  const auto status = fs::symlink_status(joined, ec);
  if (!ec && fs::exists(status)) {
    const fs::path real = fs::canonical(joined, ec);
    if (ec) return failure(404, "not found");  // a dangling symlink
    if (!is_inside(root, real)) return failure(403, "the name leads outside its folder");
    return result;
  }
  if (must_exist) return failure(404, "not found");
  // Missing: its nearest existing ancestor decides where a new file would land.
  fs::path ancestor = joined.parent_path();
  while (!ancestor.empty() && !fs::exists(ancestor, ec)) ancestor = ancestor.parent_path();
  const fs::path real = fs::canonical(ancestor, ec);
  if (ec || !is_inside(root, real)) return failure(403, "the name leads outside its folder");
  return result;
}

std::string bad_file_name_reason(const std::string& name) {
  if (name.empty()) return "the file name is empty";
  if (name.size() > 255) return "the file name is longer than 255 bytes";
  if (name.find('\0') != std::string::npos) return "the file name holds a NUL byte";
  if (!is_valid_utf8(name)) return "the file name is not valid UTF-8";
  if (name.find('/') != std::string::npos) return "the file name holds a '/'";
  if (name == "." || name == "..") return "the file name is '" + name + "'";
  return "";
}

std::string content_type_for(const fs::path& path) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".webp", "image/webp"},
      {".gif", "image/gif"},
      {".ico", "image/x-icon"},
      {".mp4", "video/mp4"},
      {".webm", "video/webm"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".ttf", "font/ttf"},
      {".wasm", "application/wasm"},
      {".txt", "text/plain; charset=utf-8"},
      {".md", "text/markdown; charset=utf-8"},
      {".safetensors", "application/octet-stream"},
  };
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto it = kTypes.find(extension);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

}  // namespace wan::server
