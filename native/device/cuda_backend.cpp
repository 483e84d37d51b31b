#include "device/cuda_backend.h"

#include <c10/util/Exception.h>

#include "core/error.h"
#include "device/tracking_allocator.h"

#ifdef WAN_WITH_CUDA
#include <ATen/Context.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/from_blob.h>
#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <torch/version.h>
#endif

namespace wan::device::cuda_backend {

bool is_out_of_memory(const std::exception& e) {
  return dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr;
}

#ifdef WAN_WITH_CUDA

namespace {
// Index 0 of every caching-allocator stat array is the aggregate over pools in all LibTorch
// versions, whichever namespace StatType lives in.
constexpr size_t kAggregate = 0;

// The caching allocator makes its per-device state when ATen first initialises CUDA (the first
// CUDA tensor); stats or a memory fraction asked for before that find no device and crash. A
// budgeted ComputeDevice sets its fraction before any tensor exists, so every call below has
// ATen initialise CUDA first, as a tensor would (once per process; later calls return at once).
void ensure_allocator() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 7)
  at::globalContext().lazyInitDevice(c10::DeviceType::CUDA);
#else
  at::globalContext().lazyInitCUDA();
#endif
}
}  // namespace

bool available() { return c10::cuda::device_count() > 0; }

std::string unavailable_reason() {
  if (available()) return "";
  return "LibTorch has CUDA but sees no device (no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides "
         "them)";
}

int device_count() { return static_cast<int>(c10::cuda::device_count()); }

void mem_info(int index, int64_t* free, int64_t* total) {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(index));
  size_t free_bytes = 0, total_bytes = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  *free = static_cast<int64_t>(free_bytes);
  *total = static_cast<int64_t>(total_bytes);
}

int64_t allocated_current(int index) {
  ensure_allocator();
  const auto stats =
      c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  return stats.allocated_bytes[kAggregate].current;
}

int64_t allocated_peak(int index) {
  ensure_allocator();
  const auto stats =
      c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  return stats.allocated_bytes[kAggregate].peak;
}

void reset_peak(int index) {
  ensure_allocator();
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(index));
}

int64_t reserved_current(int index) {
  ensure_allocator();
  const auto stats =
      c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  return stats.reserved_bytes[kAggregate].current;
}

void empty_cache() {
  ensure_allocator();
  c10::cuda::CUDACachingAllocator::emptyCache();
}

void set_memory_fraction(double fraction, int index) {
  ensure_allocator();
  c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction,
                                                     static_cast<c10::DeviceIndex>(index));
}

namespace {
// One copy stream per device for the process, taken from ATen's pool on first use.
c10::cuda::CUDAStream copy_stream(int index) {
  static std::mutex mutex;
  static std::map<int, c10::cuda::CUDAStream> streams;
  std::lock_guard<std::mutex> lock(mutex);
  auto found = streams.find(index);
  if (found == streams.end())
    found = streams
                .emplace(index, c10::cuda::getStreamFromPool(/*isHighPriority=*/false,
                                                             static_cast<c10::DeviceIndex>(index)))
                .first;
  return found->second;
}
}  // namespace

CopyStreamScope::CopyStreamScope(int index)
    : guard_(std::make_shared<c10::cuda::CUDAStreamGuard>(copy_stream(index))) {}
CopyStreamScope::~CopyStreamScope() = default;

std::shared_ptr<void> record_copies(int index) {
  auto done = std::make_shared<at::cuda::CUDAEvent>();
  done->record(copy_stream(index));
  return done;
}

void wait_for_copies(const std::shared_ptr<void>& copies_done, int index,
                     const std::vector<at::Tensor>& tensors) {
  const auto current = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(index));
  std::static_pointer_cast<at::cuda::CUDAEvent>(copies_done)->block(current);
  for (const auto& tensor : tensors)
    if (tensor.defined() && tensor.is_cuda()) tensor.record_stream(current.unwrap());
}

at::Tensor page_locked_buffer(int64_t bytes) {
  ensure_allocator();
  void* data = nullptr;
  const cudaError_t rc = cudaHostAlloc(&data, static_cast<size_t>(bytes), cudaHostAllocDefault);
  if (rc != cudaSuccess) {
    // Clears the error, or the next kernel launch check would report it as its own.
    (void)cudaGetLastError();
    throw Error("cannot page-lock " + format_bytes(bytes) + " of CPU memory (" +
                cudaGetErrorString(rc) + ")");
  }
  TrackingAllocator::count_external(MemoryPool::kHost, bytes);
  return at::from_blob(
      data, {bytes},
      [bytes](void* memory) {
        // Waits for copies still reading it (cudaFreeHost synchronizes).
        cudaFreeHost(memory);
        TrackingAllocator::count_external(MemoryPool::kHost, -bytes);
      },
      at::TensorOptions().dtype(at::kByte));
}

#else  // CPU-only LibTorch

bool available() { return false; }
std::string unavailable_reason() {
  return "this build of wan-native has no CUDA support (LibTorch without CUDA)";
}
int device_count() { return 0; }

[[noreturn]] static void no_cuda() {
  throw Error(
      "this build of wan-native has no CUDA support (LibTorch without CUDA); use --device cpu");
}
void mem_info(int, int64_t*, int64_t*) { no_cuda(); }
int64_t allocated_current(int) { no_cuda(); }
int64_t allocated_peak(int) { no_cuda(); }
void reset_peak(int) { no_cuda(); }
int64_t reserved_current(int) { no_cuda(); }
void empty_cache() { no_cuda(); }
void set_memory_fraction(double, int) { no_cuda(); }
CopyStreamScope::CopyStreamScope(int) { no_cuda(); }
CopyStreamScope::~CopyStreamScope() = default;
std::shared_ptr<void> record_copies(int) { no_cuda(); }
void wait_for_copies(const std::shared_ptr<void>&, int, const std::vector<at::Tensor>&) { no_cuda(); }
at::Tensor page_locked_buffer(int64_t) { no_cuda(); }

#endif

}  // namespace wan::device::cuda_backend
