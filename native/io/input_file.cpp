#include "io/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace wan::io {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

// Opens without blocking, checks the type and size; the descriptor is blocking again after.
uint64_t open_checked(const std::string& path, uint64_t max_bytes, Fd& out) {
  if (path.empty()) throw LoadError("(empty file name): no file given");
  if (path.find('\0') != std::string::npos)
    throw LoadError(path.substr(0, path.find('\0')) + ": the file name contains a NUL byte");
  // stat first: opening a FIFO for reading, even O_NONBLOCK, can have side effects on a writer.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw LoadError(path + ": cannot open (" + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode)) throw LoadError(path + ": is " + kind_of(st.st_mode) + ", not a regular file");
  out.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (out.fd < 0) throw LoadError(path + ": cannot open (" + std::strerror(errno) + ")");
  if (::fstat(out.fd, &st) != 0)
    throw LoadError(path + ": cannot stat (" + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode)) throw LoadError(path + ": is " + kind_of(st.st_mode) + ", not a regular file");
  const int flags = ::fcntl(out.fd, F_GETFL);
  if (flags >= 0) ::fcntl(out.fd, F_SETFL, flags & ~O_NONBLOCK);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes)
    throw LoadError(path + ": " + format_bytes(static_cast<int64_t>(size)) +
                    " is larger than the " + format_bytes(static_cast<int64_t>(max_bytes)) +
                    " accepted for this kind of file");
  return size;
}

}  // namespace

uint64_t require_regular_file(const std::string& path, uint64_t max_bytes) {
  Fd fd;
  return open_checked(path, max_bytes, fd);
}

std::string read_regular_file(const std::string& path, uint64_t max_bytes) {
  Fd fd;
  const uint64_t size = open_checked(path, max_bytes, fd);
  std::string bytes(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw LoadError(path + ": read failed after " + std::to_string(done) + " of " +
                      std::to_string(size) + " bytes (" + std::strerror(errno) + ")");
    if (n == 0)
      throw LoadError(path + ": the file shrank while being read (" + std::to_string(done) +
                      " of " + std::to_string(size) + " bytes)");
    done += static_cast<size_t>(n);
  }
  char extra = 0;
  ssize_t n = 0;
  do {
    n = ::read(fd.fd, &extra, 1);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    throw LoadError(path + ": read failed (" + std::string(std::strerror(errno)) + ")");
  if (n > 0) throw LoadError(path + ": the file grew while being read");
  return bytes;
}

}  // namespace wan::io
