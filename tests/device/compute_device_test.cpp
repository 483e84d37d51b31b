#include "device/compute_device.h"
#include "device/cuda_backend.h"

#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "device/tracking_allocator.h"

namespace wan::device {
namespace {

TEST(ParseSize, ReadsBinaryDecimalAndPlainBytes) {
  EXPECT_EQ(parse_size("4096"), 4096);
  EXPECT_EQ(parse_size("800MiB"), 800 * kMiB);
  EXPECT_EQ(parse_size("800M"), 800 * kMiB);
  EXPECT_EQ(parse_size("12GB"), 12'000'000'000LL);
  EXPECT_EQ(parse_size("12gib"), 12 * kGiB);
  EXPECT_EQ(parse_size("11.49GiB"), static_cast<int64_t>(11.49 * static_cast<double>(kGiB)));
  EXPECT_EQ(parse_size(" 1.5 g "), 3 * kGiB / 2);
  EXPECT_EQ(parse_size("2KiB"), 2048);
  EXPECT_EQ(parse_size("2kB"), 2000);
  EXPECT_EQ(parse_size("1TB"), 1'000'000'000'000LL);
  EXPECT_EQ(parse_size("0.5GiB"), kDefaultReserve);
}

TEST(ParseSize, RejectsWhatItCannotRead) {
  for (const char* text : {"", "GiB", "12XB", "-1GB", "1.2.3MB", "12 G B", ".", "1e9"}) {
    EXPECT_THROW(parse_size(text), ValidationError) << text;
  }
  try {
    parse_size("12XB");
    FAIL();
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("'12XB'"), std::string::npos) << e.what();
  }
}

TEST(ComputeDevice, CpuWithoutBudgetIsPlainCpu) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  ComputeDevice device(options);
  EXPECT_EQ(device.kind(), ComputeKind::kCpu);
  EXPECT_FALSE(device.is_accelerator());
  EXPECT_EQ(device.name(), "cpu");
  EXPECT_EQ(device.bytes_capacity(), -1);
  EXPECT_TRUE(TrackingAllocator::is_installed());
}

TEST(ComputeDevice, AutoWithoutCudaIsPlainCpu) {
  if (cuda_backend::available())
    GTEST_SKIP() << "a CUDA device is visible: auto picks it (CudaDevice.AutoPicksTheCudaDevice...)";
  ComputeDevice device(ComputeDeviceOptions{});
  EXPECT_EQ(device.kind(), ComputeKind::kCpu);
  EXPECT_EQ(device.name(), "cpu");
}

TEST(ComputeDevice, BudgetOnCpuIsVirtualAcceleratorOfVramMinusReserve) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.vram = parse_size("11.49GiB");
  ComputeDevice device(options);
  EXPECT_EQ(device.kind(), ComputeKind::kVirtual);
  EXPECT_TRUE(device.is_accelerator());
  EXPECT_EQ(device.name(), "vgpu");
  EXPECT_EQ(device.device(), c10::Device(c10::kCPU));
  EXPECT_EQ(device.bytes_total(), *options.vram);
  EXPECT_EQ(device.bytes_capacity(), *options.vram - kDefaultReserve);
  EXPECT_EQ(TrackingAllocator::stats(MemoryPool::kVirtual).bytes_capacity, device.bytes_capacity());
}

TEST(ComputeDevice, RejectsBudgetThatLeavesNothingAfterReserve) {
  ComputeDeviceOptions options;
  options.vram = 400 * kMiB;
  EXPECT_THROW(ComputeDevice{options}, ValidationError);
  options.device = "tpu";
  options.vram.reset();
  EXPECT_THROW(ComputeDevice{options}, ValidationError);
}

TEST(ComputeDevice, OnlyOneVirtualAcceleratorAtATime) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.vram = kGiB;
  {
    ComputeDevice first(options);
    EXPECT_THROW(ComputeDevice{options}, Error);
  }
  ComputeDevice again(options);  // the first one's end frees the pool
  EXPECT_EQ(again.bytes_capacity(), kGiB - kDefaultReserve);
}

TEST(TrackingAllocator, AllocationPastCapThrowsOutOfMemoryWithNumbers) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.reserve = 0;
  options.vram = kMiB;
  ComputeDevice device(options);
  const int64_t before = device.bytes_in_use();
  auto scope = device.open_scope();
  at::Tensor half = at::empty({128 * 1024}, at::kFloat);  // 512 KiB
  EXPECT_EQ(device.bytes_in_use() - before, 512 * 1024);
  EXPECT_EQ(TrackingAllocator::pool_of(half), MemoryPool::kVirtual);
  try {
    at::Tensor too_much = at::empty({3 * 64 * 1024}, at::kFloat);  // 768 KiB
    FAIL() << "allocation past the cap did not throw";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.device(), "vgpu");
    EXPECT_EQ(e.bytes_requested(), 768 * 1024);
    EXPECT_EQ(e.bytes_free(), kMiB - before - 512 * 1024);
    EXPECT_EQ(e.bytes_capacity(), kMiB);
    if (before == 0) {
      EXPECT_STREQ(e.what(),
                   "vgpu out of memory: tried to allocate 768.00 KiB; 512.00 KiB free of 1.00 MiB");
    }
  }
  // The failed allocation took nothing.
  EXPECT_EQ(device.bytes_in_use() - before, 512 * 1024);
}

TEST(TrackingAllocator, FreeOutsideScopeReturnsBytesToThePoolCharged) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.vram = kGiB;
  ComputeDevice device(options);
  const int64_t before = device.bytes_in_use();
  at::Tensor t;
  {
    auto scope = device.open_scope();
    t = at::ones({1000}, at::kDouble);
  }
  EXPECT_EQ(device.bytes_in_use() - before, 8000);
  const int64_t host_before = ComputeDevice::host_stats().bytes_current;
  t = at::Tensor();  // freed outside the scope
  EXPECT_EQ(device.bytes_in_use(), before);
  EXPECT_EQ(ComputeDevice::host_stats().bytes_current, host_before);
}

TEST(TrackingAllocator, PeakFollowsHighestAndResets) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.vram = kGiB;
  ComputeDevice device(options);
  auto scope = device.open_scope();
  const int64_t base = device.bytes_in_use();
  device.reset_peak();
  {
    at::Tensor a = at::empty({1 << 20}, at::kByte);
    at::Tensor b = at::empty({1 << 19}, at::kByte);
  }
  at::Tensor c = at::empty({1 << 18}, at::kByte);
  EXPECT_EQ(device.bytes_peak() - base, (1 << 20) + (1 << 19));
  device.reset_peak();
  EXPECT_EQ(device.bytes_peak() - base, 1 << 18);
}

// Memory another allocator holds for a pool (the page-locked buffers of `stream` on CUDA) moves
// its count and its peak, and is never refused by a capacity.
TEST(TrackingAllocator, ExternalBytesCountInThePoolAndItsPeak) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.vram = kGiB;
  options.reserve = 0;
  ComputeDevice device(options);
  const int64_t base = device.bytes_in_use();
  device.reset_peak();
  TrackingAllocator::count_external(MemoryPool::kVirtual, 3 * kGiB);  // past the 1 GiB cap
  EXPECT_EQ(device.bytes_in_use() - base, 3 * kGiB);
  TrackingAllocator::count_external(MemoryPool::kVirtual, -3 * kGiB);
  EXPECT_EQ(device.bytes_in_use(), base);
  EXPECT_EQ(device.bytes_peak() - base, 3 * kGiB);
}

TEST(MemoryPoolScope, NestsAndMayEndOutOfOrder) {
  EXPECT_EQ(active_pool(), MemoryPool::kHost);
  auto outer = std::make_unique<MemoryPoolScope>(MemoryPool::kVirtual);
  auto inner = std::make_unique<MemoryPoolScope>(MemoryPool::kHost);
  EXPECT_EQ(active_pool(), MemoryPool::kHost);
  auto third = std::make_unique<MemoryPoolScope>(MemoryPool::kVirtual);
  inner.reset();  // ends before the scope opened after it
  EXPECT_EQ(active_pool(), MemoryPool::kVirtual);
  third.reset();
  EXPECT_EQ(active_pool(), MemoryPool::kVirtual);
  outer.reset();
  EXPECT_EQ(active_pool(), MemoryPool::kHost);
}

TEST(TrackingAllocator, OutOfMemoryCrossesAtenKernels) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.reserve = 0;
  options.vram = 4 * kMiB;
  ComputeDevice device(options);
  auto scope = device.open_scope();
  at::Tensor a = at::ones({512, 512}, at::kFloat);  // 1 MiB
  EXPECT_THROW(at::matmul(a, a.t()).repeat({4, 1}), OutOfMemory);
  EXPECT_NO_THROW(at::matmul(a, a));
}

TEST(TrackingAllocator, SupportsRawAllocateAndZeroByteAllocations) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.vram = kGiB;
  ComputeDevice device(options);
  auto scope = device.open_scope();
  const int64_t before = device.bytes_in_use();
  c10::Allocator* allocator = c10::GetCPUAllocator();
  void* raw = allocator->raw_allocate(1000);  // ATen kernels take scratch buffers this way
  EXPECT_EQ(device.bytes_in_use() - before, 1000);
  allocator->raw_deallocate(raw);
  EXPECT_EQ(device.bytes_in_use(), before);
  allocator->raw_deallocate(allocator->raw_allocate(0));
  at::Tensor empty = at::empty({0});
  at::Tensor g = at::gelu(at::randn({8, 64}));  // uses a zero-byte raw buffer in LibTorch 1.13
  EXPECT_EQ(device.bytes_in_use() - before, 8 * 64 * 4);  // g; the randn input is gone
}

}  // namespace
}  // namespace wan::device
