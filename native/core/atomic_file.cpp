#include "core/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace wan {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxPathBytes = 4096;

// state: 0 free, 1 being filled or emptied, 2 holds a path the handler may remove.
struct TempSlot {
  std::atomic<int> state{0};
  char path[kMaxPathBytes];
};
TempSlot g_slots[TempFileGuard::kMaxTempFiles];

// getdents64's record; the libc wrappers around it (readdir) may allocate, this does not.
struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

void remove_folder_entries(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  alignas(8) char buffer[4096];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    for (long offset = 0; offset < n;) {
      const auto* entry = reinterpret_cast<const LinuxDirent64*>(buffer + offset);
      offset += entry->d_reclen;
      const char* name = entry->d_name;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
      ::unlinkat(fd, name, 0);
    }
  }
  ::close(fd);
}

}  // namespace

TempFileGuard::TempFileGuard(const std::string& path) {
  if (path.size() >= kMaxPathBytes) return;
  for (int i = 0; i < kMaxTempFiles; ++i) {
    int expected = 0;
    if (!g_slots[i].state.compare_exchange_strong(expected, 1)) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].state.store(2);
    slot_ = i;
    return;
  }
}

TempFileGuard::~TempFileGuard() {
  if (slot_ >= 0) g_slots[slot_].state.store(0);
}

void remove_temp_files_from_signal_handler() {
  for (auto& slot : g_slots) {
    int expected = 2;
    if (!slot.state.compare_exchange_strong(expected, 1)) continue;
    if (::unlink(slot.path) != 0 && (errno == EISDIR || errno == EPERM)) {
      remove_folder_entries(slot.path);
      ::rmdir(slot.path);
    }
    slot.state.store(0);
  }
}

std::string temp_sibling(const std::string& folder, const std::string& name) {
  static std::atomic<uint64_t> sequence{0};
  return (fs::path(folder) / ("." + name + ".partial-" + std::to_string(::getpid()) + "-" +
                              std::to_string(sequence++)))
      .string();
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return;  // the writer never created it
  fs::remove_all(path, ec);
  if (ec) spdlog::warn("could not remove temporary output {}: {}", path, ec.message());
}

void write_atomically(const std::string& path, const WriteFn& write) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    if (!S_ISCHR(st.st_mode))
      throw Error(path + ": is a FIFO or socket; give a regular file to write");
    // A device cannot be replaced by a rename; its own writes report errors (ENOSPC).
    write(path);
    return;
  }
  const fs::path target(path);
  const std::string folder = target.has_parent_path() ? target.parent_path().string() : ".";
  const std::string temp = temp_sibling(folder, target.filename().string());
  TempFileGuard guard(temp);
  try {
    write(temp);
    if (std::rename(temp.c_str(), path.c_str()) != 0)
      throw Error(path + ": cannot move the finished file into place (" + std::strerror(errno) +
                  ")");
  } catch (...) {
    remove_quietly(temp);
    throw;
  }
}

void write_new_file(const std::string& path, const void* data, size_t size,
                    const std::string& origin) {
  struct stat st {};
  const bool device = ::stat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
  const int flags = device ? O_WRONLY | O_CLOEXEC : O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) throw Error(origin + ": cannot create " + path + " (" + std::strerror(errno) + ")");
  const auto* bytes = static_cast<const char*>(data);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      throw Error(origin + ": writing " + path + " failed after " + std::to_string(done) + " of " +
                  std::to_string(size) + " bytes (" + std::strerror(err) + ")");
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0)
    throw Error(origin + ": writing " + path + " failed on close (" + std::strerror(errno) + ")");
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  write_atomically(path.string(), [&](const std::string& temp) {
    write_new_file(temp, text.data(), text.size(), path.string());
  });
}

}  // namespace wan
