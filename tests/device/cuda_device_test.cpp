// The device component on a real CUDA device: what the caching allocator reports against the
// ledger for gpu and offload placement, CUDA's own out-of-memory turned into wan::OutOfMemory
// naming the tensor, and pinned host memory. Every test skips, with the reason, where no CUDA
// device is visible (CI); scripts/device_check.sh runs them on a machine with one.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "core/error.h"
#include "device/cuda_backend.h"
#include "device/block_packing.h"
#include "device/device_manager.h"
#include "device_test_util.h"
#include "models/common/block_visit.h"

namespace wan::device {
namespace {

using testing::make_tiny_net;
using testing::TinyNetImpl;

// The caching allocator hands out blocks in multiples of 512 bytes and counts blocks.
constexpr int64_t kCudaBlock = 512;
int64_t cuda_block_bytes(const at::Tensor& t) {
  const int64_t bytes = static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
  return (bytes + kCudaBlock - 1) / kCudaBlock * kCudaBlock;
}

// What the allocator charges for a module's parameters and buffers on the device.
int64_t cuda_bytes_of(torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) total += cuda_block_bytes(p);
  for (const auto& b : module.buffers()) total += cuda_block_bytes(b);
  return total;
}

bool all_on(torch::nn::Module& module, c10::DeviceType type) {
  for (const auto& p : module.parameters())
    if (p.device().type() != type) return false;
  for (const auto& b : module.buffers())
    if (b.device().type() != type) return false;
  return true;
}

// One Linear of 4096 x 2048 float32 (32 MiB) under the name "proj".
class WideNetImpl : public torch::nn::Module {
 public:
  WideNetImpl() { proj_ = register_module("proj", torch::nn::Linear(4096, 2048)); }
  static constexpr int64_t kWeightBytes = int64_t{4096} * 2048 * 4;

 private:
  torch::nn::Linear proj_{nullptr};
};
TORCH_MODULE(WideNet);

class CudaDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = cuda_backend::unavailable_reason();
    if (!reason.empty()) GTEST_SKIP() << "no CUDA device: " << reason;
    // The first matmul on a stream allocates cuBLAS/cuBLASLt workspaces through the caching
    // allocator and keeps them for the process; make them before counting from base_.
    {
      at::NoGradGuard no_grad;
      auto warm = make_tiny_net();
      warm->to(at::kCUDA);
      warm->forward(at::randn({4, 16}, at::kCUDA));
      at::mm(at::randn({8, 8}, at::kCUDA), at::randn({8, 8}, at::kCUDA));
      torch::cuda::synchronize();
    }
    cuda_backend::empty_cache();
    base_ = cuda_backend::allocated_current(0);
  }
  void TearDown() override {
    if (!cuda_backend::available()) return;
    cuda_backend::set_memory_fraction(1.0, 0);  // a budgeted ComputeDevice leaves its cap set
    cuda_backend::empty_cache();
  }
  static ComputeDeviceOptions on_cuda() {
    ComputeDeviceOptions options;
    options.device = "cuda";
    return options;
  }
  int64_t device_bytes() const { return cuda_backend::allocated_current(0) - base_; }

  int64_t base_ = 0;
};

TEST_F(CudaDevice, AutoPicksTheCudaDeviceAtTheDriversSize) {
  const ComputeDevice device(ComputeDeviceOptions{});
  int64_t driver_free = 0, driver_total = 0;
  cuda_backend::mem_info(0, &driver_free, &driver_total);
  EXPECT_EQ(device.kind(), ComputeKind::kCuda);
  EXPECT_EQ(device.name(), "cuda:0");
  EXPECT_EQ(device.bytes_total(), driver_total);
  EXPECT_EQ(device.bytes_capacity(), driver_total - kDefaultReserve);
}

TEST_F(CudaDevice, GpuPlacementMovesWeightsAtAdoptAndTheLedgerReadsTheAllocator) {
  DeviceManager devices(on_cuda());
  ASSERT_EQ(devices.compute().name(), "cuda:0");
  auto net = make_tiny_net();
  const int64_t expected = cuda_bytes_of(*net);
  devices.ledger().begin_stage("1", "LoadTiny");
  auto model = devices.adopt(net, Placement::kGpu, "tiny");
  devices.ledger().end_stage();

  EXPECT_TRUE(model.on_compute_device());
  EXPECT_TRUE(all_on(*net, c10::kCUDA));
  EXPECT_EQ(model.bytes(), TinyNetImpl::kBytes);  // the ledger counts exact tensor bytes
  EXPECT_EQ(device_bytes(), expected);            // the allocator counts its blocks
  const auto stage = devices.ledger().to_json()["nodes"][0];
  EXPECT_EQ(stage["bytes_after"]["cuda:0"].get<int64_t>(), cuda_backend::allocated_current(0));
  EXPECT_EQ(stage["models"]["tiny"], "cuda:0");
  EXPECT_EQ(stage["transfers"]["bytes_in"].get<int64_t>(), TinyNetImpl::kBytes);

  model = ModelHandle();
  net.reset();
  EXPECT_EQ(device_bytes(), 0);  // dropping the model frees its device memory
}

TEST_F(CudaDevice, OffloadMovesInForTheLeaseAndBackToTheSameCpuTensors) {
  DeviceManager devices(on_cuda());
  auto net = make_tiny_net();
  const void* weight_data = net->named_parameters()["fc1.weight"].data_ptr();
  const at::Tensor x = at::randn({4, 16});
  const at::Tensor on_cpu = net->forward(x);
  auto model = devices.adopt(net, Placement::kOffload, "tiny");
  EXPECT_EQ(device_bytes(), 0);

  devices.ledger().begin_stage("2", "Compute");
  at::Tensor out;
  {
    auto lease = devices.lease(model, "Compute (node 2)");
    EXPECT_EQ(lease.device().type(), c10::kCUDA);
    EXPECT_TRUE(all_on(*net, c10::kCUDA));
    EXPECT_EQ(device_bytes(), cuda_bytes_of(*net));
    out = lease.to_cpu(net->forward(lease.to_compute(x)));
  }
  devices.ledger().end_stage();

  EXPECT_EQ(device_bytes(), 0);
  EXPECT_TRUE(all_on(*net, c10::kCPU));
  EXPECT_EQ(net->named_parameters()["fc1.weight"].data_ptr(), weight_data);
  EXPECT_TRUE(out.device().is_cpu());
  EXPECT_TRUE(at::allclose(out, on_cpu, 1e-4, 1e-5)) << (out - on_cpu).abs().max().item<float>();
  const auto stage = devices.ledger().to_json()["nodes"][0];
  EXPECT_EQ(stage["transfers"]["bytes_in"].get<int64_t>(), TinyNetImpl::kBytes);
  EXPECT_EQ(stage["transfers"]["bytes_out"].get<int64_t>(), TinyNetImpl::kBytes);
  EXPECT_EQ(stage["computed_on"]["tiny"], "cuda:0");
}

TEST_F(CudaDevice, StagePeakIsTheAllocatorsPeakIncludingActivations) {
  DeviceManager devices(on_cuda());
  auto net = make_tiny_net();
  auto model = devices.adopt(net, Placement::kOffload, "tiny");
  constexpr int64_t kActivation = 8 << 20;  // 8 MiB, a multiple of the block size
  devices.ledger().begin_stage("3", "Compute");
  int64_t allocator_peak = 0;
  {
    auto lease = devices.lease(model, "Compute (node 3)");
    at::Tensor activation = at::empty({kActivation / 4}, at::TensorOptions(lease.device()));
    activation.fill_(1.0f);
    activation.reset();
    allocator_peak = cuda_backend::allocated_peak(0);
  }
  devices.ledger().end_stage();
  const auto stage = devices.ledger().to_json()["nodes"][0];
  EXPECT_EQ(stage["bytes_peak"]["cuda:0"].get<int64_t>(), allocator_peak);
  EXPECT_EQ(allocator_peak - base_, cuda_bytes_of(*net) + kActivation);
}

TEST_F(CudaDevice, CudasOutOfMemoryBecomesOurErrorNamingTheTensorAndUndoesTheMove) {
  // A 1.5 GiB budget lets the ledger's own check pass; the allocator, capped with
  // setMemoryFraction at 16 MiB above what it holds, then refuses the 32 MiB weight itself.
  ComputeDeviceOptions options = on_cuda();
  options.vram = 2 * kGiB;
  options.reserve = kGiB / 2;
  DeviceManager devices(options);
  int64_t driver_free = 0, driver_total = 0;
  cuda_backend::mem_info(0, &driver_free, &driver_total);
  cuda_backend::set_memory_fraction(
      static_cast<double>(cuda_backend::reserved_current(0) + 16 * kMiB) /
          static_cast<double>(driver_total),
      0);

  auto net = WideNet().ptr();
  devices.ledger().begin_stage("4", "LoadWide");
  try {
    devices.adopt(net, Placement::kGpu, "wide");
    FAIL() << "a 32 MiB weight moved onto a device capped 16 MiB above what it held";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.device(), "cuda:0");
    EXPECT_EQ(e.tensor(), "proj.weight");
    EXPECT_EQ(e.bytes_requested(), WideNetImpl::kWeightBytes);
    EXPECT_EQ(e.bytes_capacity(), 3 * kGiB / 2);
    const std::string message = e.what();
    EXPECT_NE(message.find("cuda:0 out of memory moving wide tensor 'proj.weight'"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("stays in CPU memory"), std::string::npos) << message;
  }
  devices.ledger().end_stage(StageOutcome::failure("out of memory"));
  EXPECT_TRUE(all_on(*net, c10::kCPU));
  EXPECT_EQ(device_bytes(), 0);
}

TEST_F(CudaDevice, PinnedHostMemoryRoundTripsAndIsNotChargedToTheHostPool) {
  DeviceManager devices(on_cuda());  // installs the tracking CPU allocator
  const int64_t host_before = ComputeDevice::host_stats().bytes_current;
  constexpr int64_t kElements = 1 << 20;
  at::Tensor pinned =
      at::empty({kElements}, at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
  // Pinned blocks come from CUDA's host allocator, not c10's CPU allocator (docs/gpu.md).
  EXPECT_EQ(ComputeDevice::host_stats().bytes_current, host_before);
  EXPECT_TRUE(pinned.is_pinned());
  pinned.copy_(at::arange(kElements, at::kFloat));
  const at::Tensor on_device = pinned.to(devices.compute().device(), /*non_blocking=*/true);
  at::Tensor back = at::empty_like(pinned, at::TensorOptions().pinned_memory(true));
  back.copy_(on_device, /*non_blocking=*/true);
  torch::cuda::synchronize();
  EXPECT_TRUE(at::equal(back, at::arange(kElements, at::kFloat)));
}

// Eight blocks of Linear(2048, 2048) float32 (16 MiB each) visited in order, as a streamed DiT
// does; each block's output feeds the next, so a block that computed before its copy finished
// would change the result.
class StreamNetImpl : public torch::nn::Module {
 public:
  static constexpr int kBlocks = 8;
  static constexpr int64_t kWidth = 2048;
  static constexpr int64_t kBlockBytes = (kWidth * kWidth + kWidth) * 4;
  StreamNetImpl() {
    blocks_ = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < kBlocks; ++i) blocks_->push_back(torch::nn::Linear(kWidth, kWidth));
  }
  at::Tensor forward(at::Tensor x) {
    for (size_t i = 0; i < blocks_->size(); ++i) {
      const auto visit =
          models::visit_block(*blocks_[i], i + 1 < blocks_->size() ? blocks_[i + 1].get() : nullptr);
      x = blocks_[i]->as<torch::nn::Linear>()->forward(x).tanh();
    }
    return x;
  }
  torch::nn::ModuleList blocks_{nullptr};
};

// A second net with `net`'s weights: one for `gpu`, one for `stream`.
std::shared_ptr<StreamNetImpl> copy_of(StreamNetImpl& net) {
  at::NoGradGuard no_grad;
  auto copy = std::make_shared<StreamNetImpl>();
  for (size_t i = 0; i < net.parameters().size(); ++i) copy->parameters()[i].copy_(net.parameters()[i]);
  return copy;
}

// `stream` on CUDA copies the next block on a side stream from page-locked memory while the
// current one computes; the compute stream waits for the copy before the block computes. The
// output equals `gpu` placement's bit for bit over repeated leases, every block crosses once
// per forward, and after the lease the weights are back in (page-locked) CPU memory.
TEST_F(CudaDevice, StreamCopiesTheNextBlockOnASideStreamWithTheGpuOutput) {
  at::NoGradGuard no_grad;
  torch::manual_seed(11);
  auto reference = std::make_shared<StreamNetImpl>();
  auto streamed = copy_of(*reference);
  const auto x = at::randn({512, StreamNetImpl::kWidth});
  DeviceManager devices(on_cuda());
  auto gpu = devices.adopt(reference, Placement::kGpu, "reference");
  auto stream = devices.adopt(streamed, Placement::kStream, "streamed");
  at::Tensor expected;
  {
    auto lease = devices.lease(gpu, "Reference (node 1)");
    expected = lease.to_cpu(reference->forward(lease.to_compute(x)));
  }
  for (int round = 0; round < 3; ++round) {
    devices.ledger().begin_stage(std::to_string(round + 2), "Streamed");
    at::Tensor out;
    {
      auto lease = devices.lease(stream, "Streamed (node " + std::to_string(round + 2) + ")");
      out = lease.to_cpu(streamed->forward(lease.to_compute(x)));
    }
    devices.ledger().end_stage();
    EXPECT_TRUE(at::equal(out, expected)) << "round " << round << ": max abs "
                                          << (out - expected).abs().max().item<float>();
    const auto stage = devices.ledger().to_json()["nodes"][round];
    EXPECT_EQ(stage["transfers"]["bytes_in"].get<int64_t>(),
              StreamNetImpl::kBlocks * StreamNetImpl::kBlockBytes);
  }
  for (const auto& p : streamed->parameters()) {
    EXPECT_TRUE(p.device().is_cpu());
    EXPECT_TRUE(p.is_pinned());
  }
}

// `stream` page-locks each streamed block's weights in one buffer of exactly their bytes (not a
// copy per tensor, which CUDA's host allocator would round up to powers of two), and the CPU
// memory it holds is counted: the host pool loses the pageable originals and gains the buffers,
// so it is unchanged, and every tensor of a block shares its buffer.
TEST_F(CudaDevice, StreamPageLocksEachBlockInOneBufferCountedAsCpuMemory) {
  at::NoGradGuard no_grad;
  DeviceManager devices(on_cuda());  // installs the tracking CPU allocator first
  auto streamed = std::make_shared<StreamNetImpl>();
  const auto x = at::randn({64, StreamNetImpl::kWidth});
  auto stream = devices.adopt(streamed, Placement::kStream, "streamed");
  const int64_t host_before = ComputeDevice::host_stats().bytes_current;
  {
    auto lease = devices.lease(stream, "Streamed (node 1)");
    lease.to_cpu(streamed->forward(lease.to_compute(x)));
  }
  torch::cuda::synchronize();
  // The input and its output (64 x 2048 float32 each) are the only other host bytes that moved.
  EXPECT_NEAR(static_cast<double>(ComputeDevice::host_stats().bytes_current),
              static_cast<double>(host_before), 2.0 * 64 * StreamNetImpl::kWidth * 4 + 4096);
  for (size_t i = 0; i < streamed->blocks_->size(); ++i) {
    auto& linear = *streamed->blocks_[i]->as<torch::nn::Linear>();
    EXPECT_TRUE(linear.weight.is_pinned()) << "block " << i;
    EXPECT_FALSE(TrackingAllocator::pool_of(linear.weight).has_value()) << "block " << i;
    EXPECT_TRUE(linear.weight.storage().is_alias_of(linear.bias.storage())) << "block " << i;
    EXPECT_EQ(linear.weight.storage().nbytes(),
              packed_size(StreamNetImpl::kWidth * StreamNetImpl::kWidth * 4) +
                  packed_size(StreamNetImpl::kWidth * 4))
        << "block " << i;
  }
  // The buffers go with the model, and their count with them.
  const int64_t held = ComputeDevice::host_stats().bytes_current;
  stream = ModelHandle();
  streamed.reset();
  EXPECT_EQ(ComputeDevice::host_stats().bytes_current,
            held - StreamNetImpl::kBlocks * StreamNetImpl::kBlockBytes);
}

// --page-lock three blocks' bytes: blocks 0-2 are page-locked, the other five stay pageable
// (their copies on the side stream are synchronous on the host), and the output is the same.
TEST_F(CudaDevice, PageLockLimitLocksTheFirstBlocksAndTheOutputIsTheSame) {
  at::NoGradGuard no_grad;
  torch::manual_seed(12);
  auto reference = std::make_shared<StreamNetImpl>();
  auto streamed = copy_of(*reference);
  const auto x = at::randn({256, StreamNetImpl::kWidth});
  ComputeDeviceOptions options = on_cuda();
  options.page_lock = 3 * StreamNetImpl::kBlockBytes;
  DeviceManager devices(options);
  auto gpu = devices.adopt(reference, Placement::kGpu, "reference");
  auto stream = devices.adopt(streamed, Placement::kStream, "streamed");
  at::Tensor expected, out;
  {
    auto lease = devices.lease(gpu, "Reference (node 1)");
    expected = lease.to_cpu(reference->forward(lease.to_compute(x)));
  }
  for (int round = 0; round < 2; ++round) {
    auto lease = devices.lease(stream, "Streamed (node 2)");
    out = lease.to_cpu(streamed->forward(lease.to_compute(x)));
    EXPECT_TRUE(at::equal(out, expected)) << "round " << round;
  }
  for (size_t i = 0; i < streamed->blocks_->size(); ++i)
    EXPECT_EQ(streamed->blocks_[i]->as<torch::nn::Linear>()->weight.is_pinned(), i < 3)
        << "block " << i;
}

}  // namespace
}  // namespace wan::device
