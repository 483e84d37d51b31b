// Opening files named by a workflow or a model folder: only regular files are read, within a
// size bound, and opening never blocks (a FIFO or a device given as an image or a workflow would
// otherwise hang the run or read without end).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace wan::io {

// Throws LoadError "<path>: ..." unless `path` names a regular file (after symlinks) of at most
// max_bytes; returns its size. Checked on an O_NONBLOCK descriptor, so a FIFO does not block.
uint64_t require_regular_file(const std::string& path, uint64_t max_bytes);

// The whole content of the regular file `path` (same checks), read in full or a LoadError: a file
// that changes size while being read, or one whose read fails (/proc/self/mem), is refused.
std::string read_regular_file(const std::string& path, uint64_t max_bytes);

}  // namespace wan::io
