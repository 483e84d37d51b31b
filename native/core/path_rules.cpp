#include "core/path_rules.h"

#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "core/bounded_json.h"
#include "core/error.h"

namespace wan {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxShownChars = 200;

// 'name' for a message: invalid UTF-8 and control bytes as \xNN, long names cut, so the message
// itself is always printable and JSON-serialisable.
std::string shown(std::string_view text) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "'";
  size_t i = 0;
  while (i < text.size() && out.size() < kMaxShownChars) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (length > 1 && (i + length > text.size() || !is_valid_utf8(text.substr(i, length))))
      length = 0;
    if (length == 0 || c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      ++i;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  if (i < text.size()) out += "...";
  return out + "'";
}

// Throws when `name` cannot be a file name at all.
void check_name_text(const std::string& name, const std::string& what) {
  if (name.find('\0') != std::string::npos)
    throw ValidationError(what + " " + shown(name) +
                          " holds a NUL byte, which no file name can contain");
  if (!is_valid_utf8(name))
    throw ValidationError(what + " " + shown(name) + " is not valid UTF-8");
}

bool is_within(const fs::path& root, const fs::path& path) {
  const std::string r = root.string(), p = path.string();
  return p == r || (p.size() > r.size() && p.compare(0, r.size(), r) == 0 &&
                    (r.back() == '/' || p[r.size()] == '/'));
}

bool escapes_by_name(const fs::path& relative) {
  if (relative.empty() || relative.is_absolute()) return true;
  for (const auto& part : relative)
    if (part == "..") return true;
  return false;
}

std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// `path` resolved and checked against `root` (both canonical on return).
fs::path resolve_inside(const fs::path& root, const fs::path& path, const std::string& what,
                        bool allow_folder) {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec)
    throw ValidationError(what + ": " + shown(path.string()) + " does not exist (" + ec.message() +
                          "); put the file under " + shown(root.string()));
  if (!is_within(root, real))
    throw ValidationError(what + ": " + shown(path.string()) + " resolves to " +
                          shown(real.string()) + ", outside " + shown(root.string()) +
                          "; models must stay inside their folder (copy the file in instead of "
                          "linking out)");
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0)
    throw ValidationError(what + ": cannot read " + shown(real.string()) + " (" +
                          std::strerror(errno) + ")");
  if (!(S_ISREG(st.st_mode) || (allow_folder && S_ISDIR(st.st_mode))))
    throw ValidationError(what + ": " + shown(path.string()) + " is " + file_kind(st.st_mode) +
                          ", not a model file");
  return real;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The shard file names a *.index.json lists in its weight_map.
std::set<std::string> index_shards(const fs::path& index, const std::string& what) {
  // Bounded like every outside JSON (size, depth, string and number limits; a FIFO is refused
  // without blocking): an index is a flat map, so the limits never bind a real one.
  nlohmann::json json;
  try {
    json = read_json_file_bounded(index.string());
  } catch (const ValidationError& e) {
    throw ValidationError(what + ": " + shown(index.string()) + " is not a shard index: " + e.what());
  }
  if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object())
    throw ValidationError(what + ": " + shown(index.string()) +
                          " is not a shard index (no \"weight_map\" object)");
  std::set<std::string> shards;
  for (const auto& [key, shard] : json["weight_map"].items()) {
    if (!shard.is_string())
      throw ValidationError(what + ": " + shown(index.string()) + " maps tensor " + shown(key) +
                            " to a non-string shard");
    shards.insert(shard.get<std::string>());
  }
  return shards;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // overlong
      if (c == 0xED) high = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // overlong
      if (c == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (i + length > n || s[i + 1] < low || s[i + 1] > high) return false;
    for (size_t k = 2; k < length; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return false;
    i += length;
  }
  return true;
}

OutputPrefix parse_output_prefix(const std::string& prefix) {
  const std::string what = "filename_prefix";
  if (prefix.empty())
    throw ValidationError("filename_prefix is empty; give a name such as \"wan\" or \"videos/wan\"");
  check_name_text(prefix, what);
  if (prefix.front() == '/')
    throw ValidationError("filename_prefix " + shown(prefix) +
                          " is an absolute path; outputs stay inside the output folder, so give "
                          "a relative prefix such as \"videos/wan\"");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= prefix.size()) {
    size_t end = prefix.find('/', start);
    if (end == std::string::npos) end = prefix.size();
    const std::string part = prefix.substr(start, end - start);
    if (part == "..") {
      if (parts.empty())
        throw ValidationError("filename_prefix " + shown(prefix) +
                              " leaves the output folder through '..'; saving outside it is not "
                              "allowed");
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  if (parts.empty())
    throw ValidationError("filename_prefix " + shown(prefix) +
                          " names no file; add a name such as \"wan\"");
  OutputPrefix result;
  result.name = parts.back();
  parts.pop_back();
  for (const auto& part : parts) result.subfolder += (result.subfolder.empty() ? "" : "/") + part;
  return result;
}

std::string folder_unwritable_reason(const fs::path& folder) {
  fs::path probe = folder.empty() ? fs::path(".") : folder;
  struct stat st {};
  // Up to the nearest part that exists; only that one must be a writable folder.
  while (::stat(probe.c_str(), &st) != 0) {
    if (errno != ENOENT)
      return shown(probe.string()) + " cannot be read (" + std::strerror(errno) + ")";
    if (!probe.has_relative_path() || probe.parent_path() == probe) return "no part of it exists";
    probe = probe.parent_path();
    if (probe.empty()) probe = ".";
  }
  if (!S_ISDIR(st.st_mode))
    return shown(probe.string()) + " is " + file_kind(st.st_mode) + ", not a folder";
  if (::access(probe.c_str(), W_OK | X_OK) != 0)
    return shown(probe.string()) + " is not writable (" + std::strerror(errno) + ")";
  return "";
}

bool is_file_pattern(const std::string& name) {
  return name.find_first_of("*?[") != std::string::npos;
}

fs::path check_input_file(const fs::path& input_dir, const std::string& name, bool allow_pattern) {
  if (name.empty()) throw ValidationError("the file name is empty; give a file to read");
  check_name_text(name, "file name");
  const fs::path given(name);
  const fs::path path = given.is_absolute() || input_dir.empty() ? given : input_dir / given;
  if (allow_pattern && is_file_pattern(name)) {
    glob_t found{};
    const int rc = ::glob(path.c_str(), GLOB_NOSORT, nullptr, &found);
    size_t regular = 0;
    for (size_t i = 0; rc == 0 && i < found.gl_pathc; ++i) {
      struct stat st {};
      if (::stat(found.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode)) ++regular;
    }
    globfree(&found);
    if (regular == 0)
      throw ValidationError("the pattern " + shown(path.string()) + " matches no file");
    return path;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw ValidationError(shown(path.string()) + " cannot be read (" + std::strerror(errno) + ")" +
                          (given.is_absolute() || input_dir.empty()
                               ? std::string()
                               : "; relative names are looked up under the input folder " +
                                     shown(input_dir.string())));
  if (!S_ISREG(st.st_mode))
    throw ValidationError(shown(path.string()) + " is " + file_kind(st.st_mode) +
                          "; give a regular file");
  return path;
}

fs::path resolve_model_file(const fs::path& models_dir, const std::string& folder,
                            const std::string& name, bool allow_folder) {
  return resolve_model_file_in(models_dir / folder, name, allow_folder);
}

fs::path resolve_model_file_in(const fs::path& folder_dir, const std::string& name,
                               bool allow_folder) {
  const std::string what = "model name " + shown(name);
  check_name_text(name, "model name");
  const fs::path relative(name);
  const fs::path& root_given = folder_dir;
  if (escapes_by_name(relative))
    throw ValidationError(what + " must be a file under " + shown(root_given.string()) +
                          " (no absolute path, no '..')");
  std::error_code ec;
  const fs::path root = fs::canonical(root_given, ec);
  if (ec)
    throw ValidationError(what + ": the models folder " + shown(root_given.string()) +
                          " does not exist");
  const fs::path path = root_given / relative;
  const fs::path real = resolve_inside(root, path, what, allow_folder);
  if (ends_with(name, ".index.json")) {
    for (const auto& shard : index_shards(real, what)) {
      const std::string shard_what = what + " shard " + shown(shard);
      check_name_text(shard, shard_what + ": the shard name");
      if (fs::path(shard).is_absolute())
        throw ValidationError(shard_what + " is an absolute path; shards sit next to the index");
      resolve_inside(root, path.parent_path() / shard, shard_what, /*allow_folder=*/false);
    }
  }
  return path;
}

AnnotatedName parse_annotated_name(const std::string& name) {
  static const std::pair<const char*, AnnotatedFolder> kSuffixes[] = {
      {" [input]", AnnotatedFolder::kInput},
      {" [output]", AnnotatedFolder::kOutput},
      {" [temp]", AnnotatedFolder::kTemp}};
  for (const auto& [suffix, folder] : kSuffixes) {
    const size_t n = std::char_traits<char>::length(suffix);
    if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0)
      return {name.substr(0, name.size() - n), folder};
  }
  return {name, AnnotatedFolder::kInput};
}

}  // namespace wan
