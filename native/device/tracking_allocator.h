// Counts CPU allocations per memory pool, so a CPU-only run can behave as a card of a given size.
//
// TrackingAllocator wraps c10's CPU allocator. Every CPU allocation ATen makes is charged to the
// pool active on the allocating thread (MemoryPoolScope), and the pool is recorded in a small
// header in front of the allocation, so the free that follows decrements the same pool on any
// thread and outside any scope. A pool may have a capacity: an allocation past it throws
// wan::OutOfMemory before any memory is taken.
//
// Not counted: memory that does not come from c10's CPU allocator (memory-mapped weights, which
// are page cache; from_blob tensors; allocations made before install()) unless its owner says so
// (count_external: the page-locked copies of `stream` on CUDA), and allocator overhead
// (only the bytes asked for are counted, not the 64-byte header or malloc's own bookkeeping). Work
// that ATen splits onto its intra-op thread pool charges the host pool for the rare buffers those
// threads allocate themselves.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <thread>

namespace wan::device {

enum class MemoryPool : uint8_t {
  kHost = 0,     // CPU memory of the process: models on the CPU, inputs, outputs
  kVirtual = 1,  // the virtual accelerator: weights moved in and activations computed there
};
inline constexpr int kMemoryPoolCount = 2;

struct MemoryPoolStats {
  int64_t bytes_current = 0;
  int64_t bytes_peak = 0;       // highest bytes_current since the last reset_peak
  int64_t bytes_capacity = -1;  // -1: no cap
};

class TrackingAllocator {
 public:
  // Wraps the CPU allocator in place; idempotent. Allocations made before stay uncounted.
  static void install();
  // Puts the wrapped allocator back (benchmarks compare both). Tensors allocated while installed
  // still release through their own context, so uninstalling at any time is safe.
  static void uninstall();
  static bool is_installed();

  static MemoryPoolStats stats(MemoryPool pool);
  // Counts `bytes` (negative: releases them) of memory another allocator holds for the pool, as
  // the CUDA host allocator's page-locked copies are CPU memory; never over a capacity.
  static void count_external(MemoryPool pool, int64_t bytes);
  static void reset_peak(MemoryPool pool);
  // Caps `pool` at `bytes`; `device_name` is what OutOfMemory messages call it.
  static void set_capacity(MemoryPool pool, int64_t bytes, const std::string& device_name);
  static void clear_capacity(MemoryPool pool);
  // The pool a tensor's storage was charged to; nullopt for storage the allocator did not make.
  static std::optional<MemoryPool> pool_of(const at::Tensor& tensor);
};

// The pool allocations on this thread are charged to now.
MemoryPool active_pool();

// Charges this thread's allocations to `pool` while alive. Scopes nest; one may end before a
// scope opened after it (the latest still-open scope wins). Must end on the thread that opened it.
class MemoryPoolScope {
 public:
  explicit MemoryPoolScope(MemoryPool pool);
  ~MemoryPoolScope();
  MemoryPoolScope(const MemoryPoolScope&) = delete;
  MemoryPoolScope& operator=(const MemoryPoolScope&) = delete;
  MemoryPool pool() const { return pool_; }

 private:
  MemoryPool pool_;
  std::thread::id thread_;
};

const char* memory_pool_name(MemoryPool pool);

}  // namespace wan::device
