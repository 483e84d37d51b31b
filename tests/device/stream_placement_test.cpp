// `stream` placement on the virtual accelerator with a model of four blocks (a top-level
// ModuleList) whose forward visits them: outputs equal to `gpu`, two blocks on the device at most,
// every block in and out once per forward, and a block that does not fit rolls back and names
// its tensor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "device/device_manager.h"
#include "device_test_util.h"
#include "models/common/block_visit.h"

namespace wan::device {
namespace {

constexpr int64_t kWidth = 64;
constexpr int kBlocks = 4;
constexpr int64_t kBlockBytes = (kWidth * kWidth + kWidth) * 4;  // one Linear(64, 64), float32
constexpr int64_t kResidentBytes = kBlockBytes;                  // the input layer

int64_t virtual_bytes() { return TrackingAllocator::stats(MemoryPool::kVirtual).bytes_current; }

struct BlocksNetImpl : torch::nn::Module {
  BlocksNetImpl() {
    input = register_module("input", torch::nn::Linear(kWidth, kWidth));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < kBlocks; ++i) blocks->push_back(torch::nn::Linear(kWidth, kWidth));
  }
  // Records the device bytes at each block, besides `before`.
  at::Tensor forward(at::Tensor x, int64_t before, std::vector<int64_t>* held) {
    x = input->forward(x);
    for (size_t i = 0; i < blocks->size(); ++i) {
      const auto visit = models::visit_block(*blocks[i], i + 1 < blocks->size() ? blocks[i + 1].get() : nullptr);
      if (held) held->push_back(virtual_bytes() - before);
      x = blocks[i]->as<torch::nn::Linear>()->forward(x).relu();
    }
    return x;
  }
  torch::nn::Linear input{nullptr};
  torch::nn::ModuleList blocks{nullptr};
};

ComputeDeviceOptions budget(int64_t usable) {
  ComputeDeviceOptions options;
  options.device = "cpu";
  options.reserve = 0;
  options.vram = usable;
  return options;
}

std::shared_ptr<BlocksNetImpl> seeded_net() {
  torch::manual_seed(7);
  return std::make_shared<BlocksNetImpl>();
}

TEST(StreamPlacement, BlocksVisitTwoAtATimeAndTheOutputEqualsGpu) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({3, kWidth});
  at::Tensor expected;
  {
    DeviceManager devices(budget(kGiB));
    auto model = devices.adopt(seeded_net(), Placement::kGpu, "net");
    auto lease = devices.lease(model, "Test (node 1)");
    expected = lease.to_cpu(model.module_as<BlocksNetImpl>()->forward(lease.to_compute(x), 0, nullptr));
  }
  DeviceManager devices(budget(kGiB));
  const int64_t before = virtual_bytes();
  auto net = seeded_net();
  auto model = devices.adopt(net, Placement::kStream, "net");
  EXPECT_EQ(virtual_bytes(), before);  // nothing moves at adopt
  std::vector<int64_t> held;
  devices.ledger().begin_stage("1", "Test");
  {
    auto lease = devices.lease(model, "Test (node 1)");
    const auto input = lease.to_compute(x);
    const int64_t input_bytes = virtual_bytes() - before - kResidentBytes;
    for (int pass = 0; pass < 2; ++pass) {
      held.clear();
      const auto out = lease.to_cpu(net->forward(input, before + input_bytes, &held));
      EXPECT_TRUE(at::equal(out, expected));
      // Block i and block i + 1 on the device (the last block alone), never more; the
      // activations of earlier blocks are freed by then or not yet made.
      ASSERT_EQ(held.size(), static_cast<size_t>(kBlocks));
      for (int i = 0; i < kBlocks; ++i) {
        const int64_t blocks_in = i + 1 < kBlocks ? 2 : 1;
        EXPECT_GE(held[i], kResidentBytes + blocks_in * kBlockBytes) << "block " << i;
        EXPECT_LT(held[i], kResidentBytes + (blocks_in + 1) * kBlockBytes) << "block " << i;
      }
    }
    // Between forwards only the resident part (and the input) is in.
    EXPECT_EQ(virtual_bytes() - before, kResidentBytes + input_bytes);
  }
  EXPECT_EQ(virtual_bytes(), before);
  devices.ledger().end_stage();
  const auto stage = devices.ledger().to_json()["nodes"][0];
  // Resident once, every block once per forward (two forwards), in and out.
  EXPECT_EQ(stage["transfers"]["bytes_in"].get<int64_t>(), kResidentBytes + 2 * kBlocks * kBlockBytes);
  EXPECT_EQ(stage["transfers"]["bytes_out"].get<int64_t>(), kResidentBytes + 2 * kBlocks * kBlockBytes);
}

TEST(StreamPlacement, ABlockThatDoesNotFitRollsBackAndNamesItsTensor) {
  torch::NoGradGuard no_grad;
  // Room for the input layer, one block and the activations, not for the block brought ahead.
  DeviceManager devices(budget(kResidentBytes + kBlockBytes + kBlockBytes / 2));
  const int64_t before = virtual_bytes();
  auto net = seeded_net();
  auto model = devices.adopt(net, Placement::kStream, "net");
  try {
    auto lease = devices.lease(model, "Sample (node 6)");
    net->forward(lease.to_compute(torch::randn({1, kWidth})), 0, nullptr);
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("Sample (node 6): vgpu out of memory moving net tensor 'blocks.1.weight'"),
              std::string::npos)
        << message;
  }
  // Every tensor is back in CPU memory and the device holds nothing.
  EXPECT_EQ(virtual_bytes(), before);
  for (const auto& p : net->named_parameters())
    EXPECT_NE(TrackingAllocator::pool_of(p.value()), MemoryPool::kVirtual) << p.key();
}

}  // namespace
}  // namespace wan::device
