#include "device/compute_device.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <unistd.h>

#include "core/error.h"
#include "device/cuda_backend.h"

namespace wan::device {
namespace {

// Only one virtual accelerator may exist at a time: it is the one process-wide virtual pool.
std::atomic<int> g_virtual_devices{0};

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

int64_t unit_multiplier(const std::string& unit) {
  static const struct {
    const char* name;
    double factor;
  } kUnits[] = {
      {"", 1.0},
      {"b", 1.0},
      {"k", 1024.0},
      {"kib", 1024.0},
      {"kb", 1e3},
      {"m", 1048576.0},
      {"mib", 1048576.0},
      {"mb", 1e6},
      {"g", 1073741824.0},
      {"gib", 1073741824.0},
      {"gb", 1e9},
      {"t", 1099511627776.0},
      {"tib", 1099511627776.0},
      {"tb", 1e12},
  };
  for (const auto& u : kUnits) {
    if (unit == u.name) return static_cast<int64_t>(u.factor);
  }
  return -1;
}

}  // namespace

int64_t default_page_lock() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 2 : 0;
}

int64_t parse_size(const std::string& text) {
  const std::string bad = "size '" + text +
                          "' is not understood; write bytes or a number with a unit, "
                          "e.g. 12GiB, 11.5GB, 800MiB";
  const std::string s = lower(text);
  size_t pos = 0;
  while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
  const size_t number_begin = pos;
  while (pos < s.size() && (std::isdigit(static_cast<unsigned char>(s[pos])) || s[pos] == '.')) {
    ++pos;
  }
  const std::string number = s.substr(number_begin, pos - number_begin);
  if (number.empty() || std::count(number.begin(), number.end(), '.') > 1 || number == ".") {
    throw ValidationError(bad);
  }
  while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
  size_t unit_end = s.size();
  while (unit_end > pos && std::isspace(static_cast<unsigned char>(s[unit_end - 1]))) --unit_end;
  const int64_t factor = unit_multiplier(s.substr(pos, unit_end - pos));
  if (factor < 0) throw ValidationError(bad);
  const double value = std::strtod(number.c_str(), nullptr) * static_cast<double>(factor);
  if (!std::isfinite(value) || value >= 9.2e18) {
    throw ValidationError("size '" + text + "' is too large");
  }
  return static_cast<int64_t>(std::floor(value));
}

ComputeDevice::ComputeDevice(const ComputeDeviceOptions& options) {
  TrackingAllocator::install();
  const std::string requested = lower(options.device);
  bool want_cuda = false;
  int cuda_index = 0;
  if (requested == "auto") {
    want_cuda = cuda_backend::available();
  } else if (requested == "cpu") {
    want_cuda = false;
  } else if (requested.rfind("cuda", 0) == 0) {
    want_cuda = true;
    if (requested.size() > 4) {
      const std::string index = requested.substr(4);
      if (index.size() < 2 || index[0] != ':' ||
          index.find_first_not_of("0123456789", 1) != std::string::npos) {
        throw ValidationError("--device '" + options.device + "': use auto, cpu, cuda or cuda:N");
      }
      cuda_index = std::atoi(index.c_str() + 1);
    }
    if (!cuda_backend::available() || cuda_index >= cuda_backend::device_count()) {
      throw ValidationError("--device '" + options.device +
                            "': no such CUDA device here; use --device cpu (with --vram to "
                            "emulate a card of that size)");
    }
  } else {
    throw ValidationError("--device '" + options.device + "': use auto, cpu, cuda or cuda:N");
  }
  if (options.reserve < 0) throw ValidationError("--reserve must not be negative");
  if (options.vram && *options.vram <= options.reserve) {
    throw ValidationError("--vram " + format_bytes(*options.vram) +
                          " leaves nothing usable after --reserve " +
                          format_bytes(options.reserve) + "; raise --vram or lower --reserve");
  }

  if (want_cuda) {
    kind_ = ComputeKind::kCuda;
    device_ = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(cuda_index));
    name_ = device_.str();
    int64_t driver_free = 0, driver_total = 0;
    cuda_backend::mem_info(cuda_index, &driver_free, &driver_total);
    const bool budgeted = options.vram.has_value();
    bytes_total_ = budgeted ? *options.vram : driver_total;
    if (bytes_total_ > driver_total) {
      spdlog::warn("--vram {} is more than {} has ({}); the card's own limit applies",
                   format_bytes(bytes_total_), name_, format_bytes(driver_total));
    }
    bytes_capacity_ = bytes_total_ - options.reserve;
    if (budgeted) {
      // The caching allocator then raises its own out-of-memory for activations past the cap.
      cuda_backend::set_memory_fraction(
          std::min(1.0, static_cast<double>(bytes_capacity_) / static_cast<double>(driver_total)),
          cuda_index);
    }
  } else if (options.vram) {
    if (g_virtual_devices.fetch_add(1) != 0) {
      g_virtual_devices.fetch_sub(1);
      throw Error(
          "a budgeted virtual accelerator already exists in this process; only one "
          "can be counted at a time");
    }
    kind_ = ComputeKind::kVirtual;
    name_ = "vgpu";
    bytes_total_ = *options.vram;
    bytes_capacity_ = bytes_total_ - options.reserve;
    TrackingAllocator::set_capacity(MemoryPool::kVirtual, bytes_capacity_, name_);
  }
  spdlog::info("compute device: {}{}", name_,
               bytes_capacity_ >= 0 ? " (" + format_bytes(bytes_capacity_) + " usable of " +
                                          format_bytes(bytes_total_) + ")"
                                    : std::string());
}

ComputeDevice::~ComputeDevice() {
  if (kind_ == ComputeKind::kVirtual) {
    TrackingAllocator::clear_capacity(MemoryPool::kVirtual);
    g_virtual_devices.fetch_sub(1);
  }
}

int64_t ComputeDevice::bytes_in_use() const {
  switch (kind_) {
    case ComputeKind::kCuda:
      return cuda_backend::allocated_current(device_.index());
    case ComputeKind::kVirtual:
      return TrackingAllocator::stats(MemoryPool::kVirtual).bytes_current;
    case ComputeKind::kCpu:
      return TrackingAllocator::stats(MemoryPool::kHost).bytes_current;
  }
  return 0;
}

int64_t ComputeDevice::bytes_peak() const {
  switch (kind_) {
    case ComputeKind::kCuda:
      return cuda_backend::allocated_peak(device_.index());
    case ComputeKind::kVirtual:
      return TrackingAllocator::stats(MemoryPool::kVirtual).bytes_peak;
    case ComputeKind::kCpu:
      return TrackingAllocator::stats(MemoryPool::kHost).bytes_peak;
  }
  return 0;
}

int64_t ComputeDevice::bytes_free() const {
  if (bytes_capacity_ < 0) return -1;
  return std::max<int64_t>(0, bytes_capacity_ - bytes_in_use());
}

void ComputeDevice::reset_peak() {
  switch (kind_) {
    case ComputeKind::kCuda:
      cuda_backend::reset_peak(device_.index());
      break;
    case ComputeKind::kVirtual:
      TrackingAllocator::reset_peak(MemoryPool::kVirtual);
      break;
    case ComputeKind::kCpu:
      TrackingAllocator::reset_peak(MemoryPool::kHost);
      break;
  }
}

void ComputeDevice::check_fits(int64_t bytes, const std::string& tensor) const {
  if (bytes_capacity_ < 0) return;
  const int64_t in_use = bytes_in_use();
  if (in_use + bytes <= bytes_capacity_) return;
  const int64_t free = std::max<int64_t>(0, bytes_capacity_ - in_use);
  throw OutOfMemory(name_ + " out of memory: tried to allocate " + format_bytes(bytes) + "; " +
                        format_bytes(free) + " free of " + format_bytes(bytes_capacity_),
                    name_, tensor, bytes, free, bytes_capacity_);
}

std::unique_ptr<MemoryPoolScope> ComputeDevice::open_scope() const {
  return std::make_unique<MemoryPoolScope>(kind_ == ComputeKind::kVirtual ? MemoryPool::kVirtual
                                                                          : MemoryPool::kHost);
}

MemoryPoolStats ComputeDevice::host_stats() { return TrackingAllocator::stats(MemoryPool::kHost); }

void ComputeDevice::reset_host_peak() { TrackingAllocator::reset_peak(MemoryPool::kHost); }

}  // namespace wan::device
