#include "device/tracking_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/alignment.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "core/error.h"

namespace wan::device {
namespace {

// Trivially destructible on purpose: tensors freed during static destruction still update them.
struct PoolCounter {
  std::atomic<int64_t> current{0};
  std::atomic<int64_t> peak{0};
  std::atomic<int64_t> capacity{-1};
};
PoolCounter g_pools[kMemoryPoolCount];

// Names used in OutOfMemory messages; leaked so late frees never see a destroyed string.
std::mutex& names_mutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}
std::array<std::string, kMemoryPoolCount>& pool_device_names() {
  static auto* names = new std::array<std::string, kMemoryPoolCount>{"cpu", "vgpu"};
  return *names;
}

// Each allocation carries a header in front of the data it hands out: the wrapped allocator's
// DataPtr and what to give back to the pool. Keeping it in band (rather than in a separate
// context object) keeps context == data, which ATen's raw_allocate/raw_deallocate require, and
// saves a heap allocation per tensor.
struct Header {
  c10::DataPtr inner;
  int64_t bytes;
  MemoryPool pool;
};
// Offsetting by the allocator's alignment keeps the data as aligned as the wrapped allocator's.
constexpr size_t kHeaderBytes = std::max<size_t>(64, c10::gAlignment);
static_assert(sizeof(Header) <= kHeaderBytes, "tracking header does not fit its slot");

Header* header_of(const void* data) {
  return reinterpret_cast<Header*>(const_cast<char*>(static_cast<const char*>(data)) -
                                   kHeaderBytes);
}

void free_tracked(void* data) {
  if (data == nullptr) return;  // zero-byte allocations carry no header
  Header* header = header_of(data);
  PoolCounter& counter = g_pools[static_cast<int>(header->pool)];
  counter.current.fetch_sub(header->bytes, std::memory_order_relaxed);
  c10::DataPtr inner = std::move(header->inner);
  header->~Header();
  inner.clear();  // releases the block through the wrapped allocator's deleter
}

// The stack of open scopes on this thread; the last entry is the active pool.
struct ScopeStack {
  std::vector<const MemoryPoolScope*> open;
};
thread_local ScopeStack t_scopes;
thread_local MemoryPool t_active = MemoryPool::kHost;

void refresh_active() {
  t_active = t_scopes.open.empty() ? MemoryPool::kHost : t_scopes.open.back()->pool();
}

[[noreturn]] void throw_out_of_memory(MemoryPool pool, int64_t requested, int64_t in_use,
                                      int64_t capacity) {
  std::string device;
  {
    std::lock_guard<std::mutex> lock(names_mutex());
    device = pool_device_names()[static_cast<int>(pool)];
  }
  const int64_t free = std::max<int64_t>(0, capacity - in_use);
  throw OutOfMemory(device + " out of memory: tried to allocate " + format_bytes(requested) + "; " +
                        format_bytes(free) + " free of " + format_bytes(capacity),
                    device, "", requested, free, capacity);
}

class TrackingAllocatorImpl final : public c10::Allocator {
 public:
  explicit TrackingAllocatorImpl(c10::Allocator* inner) : inner_(inner) {}

  // The c10::Allocator of torch >= 2.3 (the pinned torch): allocate() is non-const, and
  // copy_data() backs Allocator::clone.
  c10::DataPtr allocate(size_t n) override { return allocate_tracked(n); }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    std::memcpy(dest, src, count);
  }

  // ATen frees raw_allocate()d buffers through this; the header makes the data pointer enough.
  c10::DeleterFnPtr raw_deleter() const override { return &free_tracked; }

  c10::Allocator* inner() const { return inner_; }

 private:
  c10::DataPtr allocate_tracked(size_t n) const {
    if (n == 0) return c10::DataPtr(nullptr, nullptr, &free_tracked, c10::Device(c10::kCPU));
    const MemoryPool pool = t_active;
    PoolCounter& counter = g_pools[static_cast<int>(pool)];
    const auto bytes = static_cast<int64_t>(n);
    const int64_t now = counter.current.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    const int64_t capacity = counter.capacity.load(std::memory_order_relaxed);
    if (capacity >= 0 && now > capacity) {
      counter.current.fetch_sub(bytes, std::memory_order_relaxed);
      throw_out_of_memory(pool, bytes, now - bytes, capacity);
    }
    int64_t peak = counter.peak.load(std::memory_order_relaxed);
    while (now > peak &&
           !counter.peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    c10::DataPtr inner;
    try {
      inner = inner_->allocate(n + kHeaderBytes);
    } catch (...) {
      counter.current.fetch_sub(bytes, std::memory_order_relaxed);
      throw;
    }
    // get() is `void*` in 1.x and `const void*` in 2.x; the block is ours to write either way.
    char* base = static_cast<char*>(const_cast<void*>(static_cast<const void*>(inner.get())));
    const c10::Device device = inner.device();
    new (base) Header{std::move(inner), bytes, pool};
    void* data = base + kHeaderBytes;
    return c10::DataPtr(data, data, &free_tracked, device);
  }

  c10::Allocator* inner_;
};

std::mutex& install_mutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}
TrackingAllocatorImpl* g_instance = nullptr;  // leaked: live tensors may still point at it

}  // namespace

void TrackingAllocator::install() {
  std::lock_guard<std::mutex> lock(install_mutex());
  c10::Allocator* current = c10::GetCPUAllocator();
  if (g_instance != nullptr && current == g_instance) return;
  if (g_instance == nullptr || g_instance->inner() != current) {
    g_instance = new TrackingAllocatorImpl(current);
  }
  c10::SetCPUAllocator(g_instance, /*priority=*/0);
  if (c10::GetCPUAllocator() != g_instance) {
    // Someone registered a CPU allocator with a higher priority; counting would silently miss.
    throw Error(
        "cannot install the tracking CPU allocator: a higher-priority CPU allocator is "
        "registered, so memory accounting is unavailable");
  }
}

void TrackingAllocator::uninstall() {
  std::lock_guard<std::mutex> lock(install_mutex());
  if (g_instance != nullptr && c10::GetCPUAllocator() == g_instance) {
    c10::SetCPUAllocator(g_instance->inner(), /*priority=*/0);
  }
}

bool TrackingAllocator::is_installed() {
  std::lock_guard<std::mutex> lock(install_mutex());
  return g_instance != nullptr && c10::GetCPUAllocator() == g_instance;
}

MemoryPoolStats TrackingAllocator::stats(MemoryPool pool) {
  const PoolCounter& counter = g_pools[static_cast<int>(pool)];
  MemoryPoolStats stats;
  stats.bytes_current = counter.current.load();
  stats.bytes_peak = std::max(counter.peak.load(), stats.bytes_current);
  stats.bytes_capacity = counter.capacity.load();
  return stats;
}

void TrackingAllocator::count_external(MemoryPool pool, int64_t bytes) {
  PoolCounter& counter = g_pools[static_cast<int>(pool)];
  const int64_t now = counter.current.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  int64_t peak = counter.peak.load(std::memory_order_relaxed);
  while (now > peak && !counter.peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void TrackingAllocator::reset_peak(MemoryPool pool) {
  PoolCounter& counter = g_pools[static_cast<int>(pool)];
  counter.peak.store(counter.current.load());
}

void TrackingAllocator::set_capacity(MemoryPool pool, int64_t bytes,
                                     const std::string& device_name) {
  {
    std::lock_guard<std::mutex> lock(names_mutex());
    pool_device_names()[static_cast<int>(pool)] = device_name;
  }
  g_pools[static_cast<int>(pool)].capacity.store(bytes);
}

void TrackingAllocator::clear_capacity(MemoryPool pool) {
  g_pools[static_cast<int>(pool)].capacity.store(-1);
}

std::optional<MemoryPool> TrackingAllocator::pool_of(const at::Tensor& tensor) {
  if (!tensor.defined() || !tensor.has_storage()) return std::nullopt;
  const c10::DataPtr& data_ptr = tensor.storage().data_ptr();
  if (data_ptr.get_deleter() != &free_tracked || data_ptr.get() == nullptr) return std::nullopt;
  return header_of(data_ptr.get())->pool;
}

MemoryPool active_pool() { return t_active; }

MemoryPoolScope::MemoryPoolScope(MemoryPool pool)
    : pool_(pool), thread_(std::this_thread::get_id()) {
  t_scopes.open.push_back(this);
  refresh_active();
}

MemoryPoolScope::~MemoryPoolScope() {
  if (thread_ != std::this_thread::get_id()) {
    spdlog::error(
        "memory pool scope ended on another thread than it began; accounting of the "
        "opening thread stays on pool '{}'",
        memory_pool_name(pool_));
    return;
  }
  auto& open = t_scopes.open;
  auto it = std::find(open.rbegin(), open.rend(), this);
  if (it != open.rend()) open.erase(std::next(it).base());
  refresh_active();
}

const char* memory_pool_name(MemoryPool pool) {
  return pool == MemoryPool::kHost ? "host" : "virtual";
}

}  // namespace wan::device
