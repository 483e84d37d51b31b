#include "device/device_manager.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "device_test_util.h"

namespace wan::device {
namespace {

using testing::make_tiny_net;
using testing::TinyNetImpl;

ComputeDeviceOptions budget(int64_t usable) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.reserve = kMiB;
  options.vram = usable + kMiB;
  return options;
}

int64_t virtual_bytes() { return TrackingAllocator::stats(MemoryPool::kVirtual).bytes_current; }

// Every parameter and buffer in the order the manager moves them.
std::vector<std::pair<std::string, at::Tensor>> all_weights(torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

bool wholly_in(torch::nn::Module& module, MemoryPool pool) {
  for (const auto& [key, t] : all_weights(module)) {
    const auto where = TrackingAllocator::pool_of(t);
    const bool in_pool = where.has_value() && *where == pool;
    if (pool == MemoryPool::kHost ? (where == MemoryPool::kVirtual) : !in_pool) return false;
  }
  return true;
}

TEST(DeviceManager, ModelBytesArePlusBuffers) {
  DeviceManager devices(budget(kGiB));
  auto model = devices.adopt(make_tiny_net(), Placement::kCpu, "tiny");
  EXPECT_EQ(model.bytes(), TinyNetImpl::kBytes);
}

TEST(DeviceManager, GpuPlacementMovesWeightsAtAdopt) {
  DeviceManager devices(budget(kGiB));
  const int64_t before = virtual_bytes();
  auto net = make_tiny_net();
  auto model = devices.adopt(net, Placement::kGpu, "tiny");
  EXPECT_TRUE(model.on_compute_device());
  EXPECT_EQ(virtual_bytes() - before, TinyNetImpl::kBytes);
  EXPECT_TRUE(wholly_in(*net, MemoryPool::kVirtual));
  EXPECT_EQ(TrackingAllocator::pool_of(net->named_buffers()["scale"]), MemoryPool::kVirtual);
  {
    auto lease = devices.lease(model, "Test (node 1)");
    EXPECT_TRUE(lease.on_virtual_accelerator());
    EXPECT_EQ(virtual_bytes() - before, TinyNetImpl::kBytes);  // already there: nothing moves
  }
  EXPECT_EQ(virtual_bytes() - before, TinyNetImpl::kBytes);  // and it stays
  model = ModelHandle();
  net.reset();
  EXPECT_EQ(virtual_bytes(), before);  // freeing the model frees the device memory
}

TEST(DeviceManager, OffloadMovesInDuringLeaseAndOutAfterBuffersIncluded) {
  DeviceManager devices(budget(kGiB));
  const int64_t before = virtual_bytes();
  auto net = make_tiny_net();
  const void* scale_data = net->named_buffers()["scale"].data_ptr();
  const void* weight_data = net->named_parameters()["fc1.weight"].data_ptr();
  auto model = devices.adopt(net, Placement::kOffload, "tiny");
  EXPECT_FALSE(model.on_compute_device());
  EXPECT_EQ(virtual_bytes(), before);
  {
    auto lease = devices.lease(model, "Test (node 1)");
    EXPECT_TRUE(model.on_compute_device());
    EXPECT_EQ(virtual_bytes() - before, TinyNetImpl::kBytes);  // parameters + buffer, exactly
    EXPECT_TRUE(wholly_in(*net, MemoryPool::kVirtual));
    EXPECT_NE(net->named_buffers()["scale"].data_ptr(), scale_data);
    {
      auto nested = devices.lease(model, "Test (node 1)");
      EXPECT_EQ(virtual_bytes() - before, TinyNetImpl::kBytes);  // nested: no second copy
    }
    EXPECT_EQ(virtual_bytes() - before, TinyNetImpl::kBytes);  // the outer lease still holds it
  }
  EXPECT_FALSE(model.on_compute_device());
  EXPECT_EQ(virtual_bytes(), before);
  // Moving out points back at the very CPU tensors the model had.
  EXPECT_EQ(net->named_buffers()["scale"].data_ptr(), scale_data);
  EXPECT_EQ(net->named_parameters()["fc1.weight"].data_ptr(), weight_data);
}

TEST(DeviceManager, UnloadIdleModelsMovesIdleGpuWeightsOutAndTheNextLeaseBackIn) {
  DeviceManager devices(budget(kGiB));
  const int64_t before = virtual_bytes();
  auto net = make_tiny_net();
  const at::Tensor x = torch::randn({3, 16});
  const at::Tensor expected = net->forward(x);
  auto model = devices.adopt(net, Placement::kGpu, "tiny");
  auto busy_net = make_tiny_net(2);
  auto busy = devices.adopt(busy_net, Placement::kGpu, "busy");
  ASSERT_EQ(virtual_bytes() - before, 2 * TinyNetImpl::kBytes);
  {
    // A model that is computing stays; the idle one leaves the device, wholly.
    auto lease = devices.lease(busy, "Test (node 2)");
    EXPECT_EQ(devices.unload_idle_models(), TinyNetImpl::kBytes);
    EXPECT_FALSE(model.on_compute_device());
    EXPECT_TRUE(busy.on_compute_device());
    EXPECT_EQ(virtual_bytes() - before, TinyNetImpl::kBytes);
    EXPECT_TRUE(wholly_in(*net, MemoryPool::kHost));
  }
  EXPECT_EQ(devices.unload_idle_models(), TinyNetImpl::kBytes);  // now the other one
  EXPECT_EQ(virtual_bytes(), before);
  EXPECT_EQ(devices.unload_idle_models(), 0);  // nothing left to unload
  {
    auto lease = devices.lease(model, "Test (node 1)");
    EXPECT_TRUE(model.on_compute_device());
    EXPECT_TRUE(wholly_in(*net, MemoryPool::kVirtual));
    EXPECT_TRUE(torch::equal(net->forward(x), expected));
  }
  EXPECT_TRUE(model.on_compute_device());  // `gpu`: it stays after the lease, as before
}

TEST(DeviceManager, UnloadIdleModelsMovesOutAnOffloadedModelLeftInByNoOne) {
  DeviceManager devices(budget(kGiB));
  const int64_t before = virtual_bytes();
  auto model = devices.adopt(make_tiny_net(), Placement::kOffload, "tiny");
  {
    auto lease = devices.lease(model, "Test (node 1)");
    EXPECT_EQ(devices.unload_idle_models(), 0);  // leased: it stays for the computation
  }
  EXPECT_EQ(virtual_bytes(), before);
  EXPECT_EQ(devices.unload_idle_models(), 0);
}

TEST(DeviceManager, CpuPlacementComputesOnCpuUncountedOnDevice) {
  DeviceManager devices(budget(kGiB));
  const int64_t before = virtual_bytes();
  auto net = make_tiny_net();
  auto model = devices.adopt(net, Placement::kCpu, "tiny");
  auto lease = devices.lease(model, "Test (node 1)");
  EXPECT_FALSE(lease.on_compute_device());
  EXPECT_FALSE(lease.on_virtual_accelerator());
  at::Tensor y = net->forward(lease.to_compute(torch::ones({4, 16})));
  EXPECT_EQ(virtual_bytes(), before);
  EXPECT_NE(TrackingAllocator::pool_of(y), MemoryPool::kVirtual);
}

TEST(DeviceManager, FailedOffloadMoveRollsBackWholly) {
  auto net = make_tiny_net();
  // A cap 100 bytes short of the model: the move fails at the tensor that crosses it.
  const int64_t cap = TinyNetImpl::kBytes - 100;
  DeviceManager devices(budget(cap));
  const int64_t base = virtual_bytes();
  std::string failing_key;
  int64_t failing_bytes = 0, moved_before = 0;
  for (const auto& [key, t] : all_weights(*net)) {
    const int64_t bytes = t.numel() * t.element_size();
    if (base + moved_before + bytes > cap) {
      failing_key = key;
      failing_bytes = bytes;
      break;
    }
    moved_before += bytes;
  }
  ASSERT_FALSE(failing_key.empty());
  std::vector<const void*> data_before;
  for (const auto& [key, t] : all_weights(*net)) data_before.push_back(t.data_ptr());
  const at::Tensor expected = net->forward(torch::ones({2, 16}));

  auto model = devices.adopt(net, Placement::kOffload, "tiny");
  try {
    auto lease = devices.lease(model, "Sample (node 7)");
    FAIL() << "the move should not fit";
  } catch (const OutOfMemory& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("Sample (node 7)"), std::string::npos) << message;
    EXPECT_NE(message.find("tiny"), std::string::npos) << message;
    EXPECT_NE(message.find("'" + failing_key + "'"), std::string::npos) << message;
    EXPECT_EQ(e.tensor(), failing_key);
    EXPECT_EQ(e.device(), "vgpu");
    EXPECT_EQ(e.bytes_requested(), failing_bytes);
    EXPECT_EQ(e.bytes_free(), cap - base - moved_before);
    EXPECT_EQ(e.bytes_capacity(), cap);
  }
  // Wholly where it was: same storages, nothing left on the device, counters as before.
  EXPECT_FALSE(model.on_compute_device());
  EXPECT_EQ(virtual_bytes(), base);
  size_t i = 0;
  for (const auto& [key, t] : all_weights(*net)) EXPECT_EQ(t.data_ptr(), data_before[i++]) << key;
  EXPECT_TRUE(wholly_in(*net, MemoryPool::kHost));
  EXPECT_TRUE(torch::equal(net->forward(torch::ones({2, 16})), expected));
}

TEST(DeviceManager, FailedGpuAdoptNamesStageNodeAndLeavesModelOnCpu) {
  auto net = make_tiny_net();
  DeviceManager devices(budget(1024));
  const int64_t base = virtual_bytes();
  devices.ledger().begin_stage("3", "LoadDiT");
  try {
    devices.adopt(net, Placement::kGpu, "dit");
    FAIL() << "the move should not fit";
  } catch (const OutOfMemory& e) {
    const std::string message = e.what();
    EXPECT_EQ(
        message.rfind("LoadDiT (node 3): vgpu out of memory moving dit tensor 'fc1.weight'", 0), 0u)
        << message;
    EXPECT_NE(message.find("placement=offload"), std::string::npos) << message;
    EXPECT_EQ(e.bytes_requested(), 16 * 32 * 4);
  }
  devices.ledger().end_stage(StageOutcome::failure("out of memory"));
  EXPECT_EQ(virtual_bytes(), base);
  EXPECT_TRUE(wholly_in(*net, MemoryPool::kHost));
}

TEST(DeviceManager, ActivationsInsideLeaseAreCountedWithExactPeak) {
  // Inference: without it autograd would keep saved activations alive through the output.
  torch::NoGradGuard no_grad;
  DeviceManager devices(budget(kGiB));
  auto net = make_tiny_net();
  auto model = devices.adopt(net, Placement::kOffload, "tiny");
  const int64_t base = virtual_bytes();
  const int64_t batch = 64;
  const at::Tensor x = torch::randn({batch, 16});
  devices.reset_peaks();
  at::Tensor y;
  {
    auto lease = devices.lease(model, "Test (node 1)");
    at::Tensor x_in = lease.to_compute(x);
    EXPECT_EQ(TrackingAllocator::pool_of(x_in), MemoryPool::kVirtual);
    at::Tensor y_dev = net->forward(x_in);
    EXPECT_EQ(TrackingAllocator::pool_of(y_dev), MemoryPool::kVirtual);
    // Live at the end of forward's full expression: x_in, fc1 out, relu out, fc2 out, product.
    const int64_t activations = batch * (16 + 32 + 32 + 8 + 8) * 4;
    EXPECT_EQ(devices.compute().bytes_peak() - base, TinyNetImpl::kBytes + activations);
    y = lease.to_cpu(y_dev);
    EXPECT_NE(TrackingAllocator::pool_of(y), MemoryPool::kVirtual);
  }
  EXPECT_EQ(virtual_bytes(), base);  // weights, input and activations all released
  EXPECT_TRUE(torch::equal(y, net->forward(x)));
}

TEST(DeviceManager, ActivationPastCapThrowsAndLeaseStillMovesOut) {
  DeviceManager devices(budget(TinyNetImpl::kBytes + 4096));
  auto net = make_tiny_net();
  auto model = devices.adopt(net, Placement::kOffload, "tiny");
  const int64_t base = virtual_bytes();
  try {
    auto lease = devices.lease(model, "Test (node 1)");
    at::Tensor y = net->forward(lease.to_compute(torch::ones({1024, 16})));
    FAIL() << "activations should not fit";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.device(), "vgpu");
  }
  EXPECT_FALSE(model.on_compute_device());
  EXPECT_EQ(virtual_bytes(), base);
}

TEST(DeviceManager, OutputsIdenticalAcrossPlacements) {
  const at::Tensor x = torch::randn({5, 16});
  std::vector<at::Tensor> outputs;
  for (Placement placement : {Placement::kCpu, Placement::kGpu, Placement::kOffload}) {
    DeviceManager devices(budget(kGiB));
    auto net = make_tiny_net(/*seed=*/42);
    auto model = devices.adopt(net, placement, "tiny");
    auto lease = devices.lease(model, "Test (node 1)");
    outputs.push_back(lease.to_cpu(net->forward(lease.to_compute(x))));
  }
  {
    // No budget: the compute device is CUDA when present, else the CPU itself.
    DeviceManager plain;
    auto net = make_tiny_net(/*seed=*/42);
    auto model = plain.adopt(net, Placement::kOffload, "tiny");
    auto lease = plain.lease(model, "Test (node 1)");
    outputs.push_back(lease.to_cpu(net->forward(lease.to_compute(x))));
  }
  EXPECT_TRUE(torch::equal(outputs[0], outputs[1]));
  EXPECT_TRUE(torch::equal(outputs[0], outputs[2]));
  // Bitwise on the CPU; a CUDA device may differ in the last bits of a matmul.
  EXPECT_TRUE(torch::allclose(outputs[0], outputs[3], /*rtol=*/0, /*atol=*/1e-5));
}

}  // namespace
}  // namespace wan::device
