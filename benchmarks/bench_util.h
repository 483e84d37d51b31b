// Small helpers shared by the benchmarks: wall time and the process's memory high-water mark.
#pragma once
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

namespace wan::bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Reads a "VmXXX:   123 kB" line of /proc/self/status, in bytes.
inline int64_t proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
  return -1;
}

inline int64_t peak_rss_bytes() { return proc_status_bytes("VmHWM"); }
inline int64_t rss_bytes() { return proc_status_bytes("VmRSS"); }

inline double gib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

}  // namespace wan::bench
