// The compute device of a run: a CUDA device when present, else the CPU; optionally capped by a
// budget (`--vram`, `--reserve`), which on a CPU-only machine makes it a virtual accelerator
// backed by CPU memory that runs out of memory where a card of that size would.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "device/tracking_allocator.h"

namespace wan::device {

inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kGiB = int64_t{1} << 30;
// What the runtime itself holds on a card (CUDA context, cuBLAS/cuDNN workspaces) unless
// `--reserve` says otherwise.
inline constexpr int64_t kDefaultReserve = kGiB / 2;

// "11.49GiB", "12GB", "800MiB", "800M", "1.5g", "4096": binary units (KiB, MiB, GiB, TiB and the
// one-letter K, M, G, T) are powers of 1024, decimal ones (kB, MB, GB, TB) powers of 1000, as
// in nvidia-smi vs. vendor datasheets; a plain number is bytes. Case-insensitive, spaces allowed
// before the unit; fractional bytes round down. Throws wan::ValidationError naming `text`.
int64_t parse_size(const std::string& text);

// What `stream` page-locks when --page-lock is not given: half of the machine's physical memory.
// Locked pages cannot be reclaimed or swapped, and the mapped weights' page cache, the models
// computing on the CPU and everything else need the rest (a 14B fp16 DiT streams 28 GB).
int64_t default_page_lock();

enum class ComputeKind {
  kCpu,      // no accelerator and no budget: models compute in CPU memory, nothing moves
  kCuda,     // a CUDA device; memory counted by the caching allocator
  kVirtual,  // a budget on a CPU-only machine: CPU memory counted in MemoryPool::kVirtual
};

struct ComputeDeviceOptions {
  // "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
  std::string device = "auto";
  std::optional<int64_t> vram;        // --vram: the card's size; none = the driver's total
  int64_t reserve = kDefaultReserve;  // --reserve: held by the runtime, not usable by tensors
  // --page-lock: CPU bytes `stream` may page-lock on CUDA over the process, whole blocks in the
  // order they compute; none = default_page_lock(). The blocks beyond it stay pageable: their
  // copies are still issued on the side stream, at pageable speed and synchronous on the host.
  std::optional<int64_t> page_lock;
};

class ComputeDevice {
 public:
  // Installs the tracking CPU allocator (host accounting is always on). Throws
  // wan::ValidationError for a bad device string or a budget that leaves nothing usable, and
  // wan::Error when a second budgeted virtual device would share the one virtual pool.
  explicit ComputeDevice(const ComputeDeviceOptions& options = {});
  ~ComputeDevice();
  ComputeDevice(const ComputeDevice&) = delete;
  ComputeDevice& operator=(const ComputeDevice&) = delete;

  ComputeKind kind() const { return kind_; }
  // Where ATen tensors computed here live: cuda:N, or cpu (also for the virtual accelerator).
  c10::Device device() const { return device_; }
  // "cuda:0", "vgpu" (the virtual accelerator) or "cpu"; used in reports and messages.
  const std::string& name() const { return name_; }
  // Whether models placed on it are separate from CPU memory (weights must move).
  bool is_accelerator() const { return kind_ != ComputeKind::kCpu; }

  int64_t bytes_total() const { return bytes_total_; }  // -1 for plain CPU
  int64_t bytes_capacity() const { return bytes_capacity_; }  // usable: total - reserve; -1 none
  int64_t bytes_in_use() const;
  int64_t bytes_peak() const;
  int64_t bytes_free() const;  // capacity - in use; -1 when uncapped
  void reset_peak();

  // Throws wan::OutOfMemory naming `tensor` when `bytes` more would pass the capacity. Moves
  // check first on CUDA, where the caching allocator would otherwise take the memory.
  void check_fits(int64_t bytes, const std::string& tensor) const;
  // Opens the accounting scope of this device on the calling thread: the virtual pool for the
  // virtual accelerator, the host pool otherwise (CUDA memory is counted by CUDA).
  std::unique_ptr<MemoryPoolScope> open_scope() const;

  // CPU memory of the process as the tracking allocator counts it.
  static MemoryPoolStats host_stats();
  static void reset_host_peak();

 private:
  ComputeKind kind_ = ComputeKind::kCpu;
  c10::Device device_{c10::kCPU};
  std::string name_ = "cpu";
  int64_t bytes_total_ = -1, bytes_capacity_ = -1;
};

}  // namespace wan::device
