#include "media/output_files.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/path_rules.h"

namespace wan::media {
namespace fs = std::filesystem;
namespace {

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size())
    text.replace(pos, from.size(), to);
  return text;
}

std::string two_digits(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }

// ComfyUI's compute_vars: size and local-time placeholders.
std::string substitute_vars(std::string prefix, int64_t width, int64_t height) {
  if (prefix.find('%') == std::string::npos) return prefix;
  prefix = replace_all(prefix, "%width%", std::to_string(width));
  prefix = replace_all(prefix, "%height%", std::to_string(height));
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  prefix = replace_all(prefix, "%year%", std::to_string(local.tm_year + 1900));
  prefix = replace_all(prefix, "%month%", two_digits(local.tm_mon + 1));
  prefix = replace_all(prefix, "%day%", two_digits(local.tm_mday));
  prefix = replace_all(prefix, "%hour%", two_digits(local.tm_hour));
  prefix = replace_all(prefix, "%minute%", two_digits(local.tm_min));
  prefix = replace_all(prefix, "%second%", two_digits(local.tm_sec));
  return prefix;
}

// The counter an existing entry uses, as ComfyUI's map_filename reads it: the digits between
// "<name>_" and the next '_' ("wan_00012_.png" -> 12); -1 when the entry is not "<name>_...",
// 0 when it is but those characters are not a number.
int64_t entry_counter(const std::string& entry, const std::string& name) {
  if (entry.size() <= name.size() || entry.compare(0, name.size(), name) != 0 ||
      entry[name.size()] != '_')
    return -1;
  std::string digits = entry.substr(name.size() + 1);
  digits = digits.substr(0, digits.find('_'));
  if (digits.empty() || digits.size() > 15 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return std::stoll(digits);
}

// rename(2) that fails with EEXIST instead of replacing `to`. Falls back to link+unlink (files)
// or check-then-rename (folders) on filesystems without RENAME_NOREPLACE.
bool rename_no_replace(const std::string& from, const std::string& to, int* error) {
#ifdef RENAME_NOREPLACE
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
    *error = errno;
    return false;
  }
#endif
  struct stat st {};
  if (::lstat(from.c_str(), &st) != 0) {
    *error = errno;
    return false;
  }
  if (!S_ISDIR(st.st_mode) && ::link(from.c_str(), to.c_str()) == 0) {
    ::unlink(from.c_str());
    return true;
  }
  if (!S_ISDIR(st.st_mode) && errno == EEXIST) {
    *error = EEXIST;
    return false;
  }
  if (::lstat(to.c_str(), &st) == 0) {
    *error = EEXIST;
    return false;
  }
  if (::rename(from.c_str(), to.c_str()) == 0) return true;
  *error = errno;
  return false;
}

}  // namespace

OutputTarget resolve_output_target(const std::string& output_dir, const std::string& prefix,
                                   int64_t width, int64_t height) {
  // The same rules the validator applied (placeholders cannot add '/' or '..').
  const OutputPrefix parts = parse_output_prefix(substitute_vars(prefix, width, height));
  OutputTarget target;
  target.name = parts.name;
  target.subfolder = parts.subfolder;
  target.folder = target.subfolder.empty() ? output_dir : (fs::path(output_dir) / target.subfolder).string();

  std::error_code ec;
  fs::create_directories(target.folder, ec);
  if (ec || !fs::is_directory(target.folder))
    throw Error(target.folder + ": cannot create the output folder (" +
                (ec ? ec.message() : std::string("a file of that name exists")) + ")");

  int64_t highest = -1;
  for (const auto& entry : fs::directory_iterator(target.folder, ec))
    highest = std::max(highest, entry_counter(entry.path().filename().string(), target.name));
  if (ec) throw Error(target.folder + ": cannot list the output folder (" + ec.message() + ")");
  target.counter = highest >= 0 ? highest + 1 : 1;
  return target;
}

std::string counter_name(const std::string& name, int64_t counter, const std::string& extension) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%05lld", static_cast<long long>(counter));
  return name + "_" + digits + "_" + (extension.empty() ? "" : "." + extension);
}

void write_atomically(const std::string& path, const WriteFn& write) {
  wan::write_atomically(path, write);
}

SavedOutput save_with_counter(const std::string& output_dir, const std::string& prefix,
                              const std::string& extension, int64_t width, int64_t height,
                              const WriteFn& write) {
  OutputTarget target = resolve_output_target(output_dir, prefix, width, height);
  std::string temp = temp_sibling(target.folder, counter_name(target.name, target.counter, extension));
  TempFileGuard guard(temp);  // a second signal during the encode removes it
  try {
    write(temp);
    // Another writer may have claimed numbers while this one encoded: take the next free one.
    constexpr int64_t kMaxTries = 100000;
    for (int64_t counter = target.counter; counter < target.counter + kMaxTries; ++counter) {
      SavedOutput saved;
      saved.filename = counter_name(target.name, counter, extension);
      saved.subfolder = target.subfolder;
      saved.path = (fs::path(target.folder) / saved.filename).string();
      int error = 0;
      if (rename_no_replace(temp, saved.path, &error)) return saved;
      if (error != EEXIST && error != ENOTEMPTY)
        throw Error(saved.path + ": cannot move the finished output into place (" +
                    std::strerror(error) + ")");
    }
    throw Error(target.folder + ": no free counter for '" + target.name + "' after " +
                std::to_string(kMaxTries) + " tries");
  } catch (...) {
    remove_quietly(temp);
    throw;
  }
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LoadError(path + ": cannot open (" + std::strerror(errno) + ")");
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < 0) throw LoadError(path + ": cannot read (not a regular file?)");
  in.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw LoadError(path + ": read failed after " + std::to_string(in.gcount()) + " of " +
                    std::to_string(size) + " bytes");
  return bytes;
}

void write_new_file(const std::string& path, const uint8_t* data, size_t size,
                    const std::string& origin) {
  wan::write_new_file(path, data, size, origin);
}

}  // namespace wan::media
