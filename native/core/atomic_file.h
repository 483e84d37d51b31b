// The one way outputs are written: into a temporary sibling, then renamed into place, so a reader
// never sees half a file and a failure leaves nothing behind. While it is being written, the
// temporary's path sits in a fixed-size table that a signal handler may read without allocating:
// on a second Ctrl-C (or SIGTERM/SIGHUP during cleanup) the handler unlinks every entry before the
// process leaves, so no interrupted save leaves a ".partial-*" file or folder of frames.
#pragma once
#include <filesystem>
#include <functional>
#include <string>

namespace wan {

// Registers `path` (a file or a folder being written) for removal by
// remove_temp_files_from_signal_handler() while the guard lives. When the table is full (more
// than kMaxTempFiles writes at once) the path is simply not registered.
class TempFileGuard {
 public:
  static constexpr int kMaxTempFiles = 64;
  explicit TempFileGuard(const std::string& path);
  ~TempFileGuard();
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;

 private:
  int slot_ = -1;
};

// Async-signal-safe: unlinks every registered path; a folder loses its entries (one level, the
// layout of a folder of frames) and then itself. Only unlink, rmdir, open and getdents are used.
void remove_temp_files_from_signal_handler();

// "<folder>/.<name>.partial-<pid>-<n>": hidden, so no counter scan of the folder sees it.
std::string temp_sibling(const std::string& folder, const std::string& name);

// Removes what a failed writer left at `path` (file or folder), if anything; never throws.
void remove_quietly(const std::string& path);

using WriteFn = std::function<void(const std::string& temp_path)>;

// Lets `write` create a temporary sibling of `path` (registered as above), then renames it onto
// `path`, replacing an existing file. On any exception the temporary is removed, `path` is left
// as it was, and the exception propagates. A `path` that is an existing character device
// (/dev/null, /dev/full, /dev/stdout) is written directly: it cannot be renamed over, and a write
// error (ENOSPC from /dev/full) still throws. A FIFO or socket is refused.
void write_atomically(const std::string& path, const WriteFn& write);

// write_atomically with `text` as the content; every write and the close are checked, so a
// full disk is an Error naming the file and the errno text.
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

// Writes bytes to a new file at `path` (which must not exist); throws Error naming `origin`.
void write_new_file(const std::string& path, const void* data, size_t size,
                    const std::string& origin);

}  // namespace wan
