// The only CUDA-specific calls of the device component, compiled for real when CMake finds a
// CUDA LibTorch (WAN_WITH_CUDA); otherwise they report "no CUDA".
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wan::device::cuda_backend {

bool available();
// Why available() is false, for skip and error messages: a CPU-only build, or a CUDA build
// that sees no device. Empty when a device is available.
std::string unavailable_reason();
int device_count();
// Driver view of a device: free and total bytes (cudaMemGetInfo).
void mem_info(int index, int64_t* free, int64_t* total);
// Bytes held by live tensors per the caching allocator, and their peak since reset_peak.
int64_t allocated_current(int index);
int64_t allocated_peak(int index);
void reset_peak(int index);
// Bytes the caching allocator holds from the driver: live blocks plus its cache.
int64_t reserved_current(int index);
// Gives the cache's unused blocks back to the driver, so that a memory fraction set next
// limits live tensors only.
void empty_cache();
// Makes the caching allocator raise its own out-of-memory past fraction * total.
void set_memory_fraction(double fraction, int index);
// Whether `e` is CUDA's out-of-memory error (c10::OutOfMemoryError).
bool is_out_of_memory(const std::exception& e);

// ---- copies that overlap compute (`stream` placement) ----

// While alive, work the calling thread issues on device `index` goes to that device's copy
// stream (one side stream per device) instead of the current stream.
class CopyStreamScope {
 public:
  explicit CopyStreamScope(int index);
  ~CopyStreamScope();
  CopyStreamScope(const CopyStreamScope&) = delete;
  CopyStreamScope& operator=(const CopyStreamScope&) = delete;

 private:
  std::shared_ptr<void> guard_;
};
// Marks the end of the copies issued so far on device `index`'s copy stream.
std::shared_ptr<void> record_copies(int index);
// Makes the calling thread's current stream on device `index` wait for `copies_done` (from
// record_copies) and marks `tensors` as used by that stream, so that the caching allocator
// reuses their memory, once they drop, only after that stream has passed its work on them.
void wait_for_copies(const std::shared_ptr<void>& copies_done, int index,
                     const std::vector<at::Tensor>& tensors);
// `bytes` of page-locked CPU memory (cudaHostAlloc, exactly that size) as a uint8 tensor: what
// a host-to-device copy can read asynchronously. Counted as CPU memory of the host pool while it
// lives (TrackingAllocator::count_external), as CUDA's host allocator is not the tracked one.
at::Tensor page_locked_buffer(int64_t bytes);

}  // namespace wan::device::cuda_backend
