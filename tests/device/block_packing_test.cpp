// pack_tensors, what `stream` page-locks one block at a time on CUDA, checked with a plain CPU
// buffer: every view holds its tensor's dtype, shape and values, at an aligned offset of the
// one buffer, which is exactly packed_bytes long and outlives the originals.
#include "device/block_packing.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace wan::device {
namespace {

TEST(BlockPacking, ViewsOfOneExactBufferHoldEachTensorsValues) {
  torch::manual_seed(3);
  std::vector<at::Tensor> tensors = {
      at::randn({5, 7}).to(at::kHalf),                  // 70 bytes: the next starts at 128
      at::randn({3}).to(at::kBFloat16),
      at::randn({4, 6}).to(at::kFloat8_e4m3fn),         // fp8 as a DiT file stores it
      at::tensor(0.25f),                                // a scalar scale
      at::empty({0, 4}),                                // no elements: returned as it is
      at::randn({6, 4}).t(),                            // not contiguous
      at::randint(0, 100, {9}, at::kLong),
  };
  const int64_t expected = packed_size(70) + packed_size(6) + packed_size(24) + packed_size(4) +
                           packed_size(96) + packed_size(72);
  EXPECT_EQ(packed_bytes(tensors), expected);
  EXPECT_EQ(expected, 128 + 64 + 64 + 64 + 128 + 128);

  int calls = 0;
  at::Tensor buffer;
  const auto views = pack_tensors(tensors, [&](int64_t bytes) {
    ++calls;
    EXPECT_EQ(bytes, expected);
    buffer = at::empty({bytes}, at::kByte);
    return buffer;
  });
  ASSERT_EQ(calls, 1);
  ASSERT_EQ(views.size(), tensors.size());
  const auto* base = static_cast<const char*>(buffer.data_ptr());
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE("tensor " + std::to_string(i));
    EXPECT_EQ(views[i].scalar_type(), tensors[i].scalar_type());
    EXPECT_EQ(views[i].sizes(), tensors[i].sizes());
    if (tensors[i].numel() == 0) {
      EXPECT_TRUE(views[i].is_same(tensors[i]));
      continue;
    }
    EXPECT_TRUE(views[i].is_contiguous());
    EXPECT_TRUE(views[i].storage().is_alias_of(buffer.storage()));
    const auto offset = static_cast<const char*>(views[i].data_ptr()) - base;
    EXPECT_EQ(offset % kPackAlignment, 0);
    EXPECT_LE(offset + views[i].numel() * views[i].element_size(), expected);
    // Compared as bytes: fp8 has no equality kernel on the CPU in every torch.
    EXPECT_TRUE(at::equal(views[i].contiguous().view(at::kByte).flatten(),
                          tensors[i].contiguous().view(at::kByte).flatten()));
  }
  // The views keep the buffer: dropping every other reference leaves the values readable.
  const at::Tensor original = tensors[0].clone();
  tensors.clear();
  buffer.reset();
  EXPECT_TRUE(at::equal(views[0], original));
}

TEST(BlockPacking, NothingToPackAsksForNoBuffer) {
  int calls = 0;
  const std::vector<at::Tensor> empty = {at::empty({0})};
  const auto views = pack_tensors(empty, [&](int64_t) {
    ++calls;
    return at::empty({0}, at::kByte);
  });
  EXPECT_EQ(calls, 0);
  ASSERT_EQ(views.size(), 1u);
  EXPECT_TRUE(views[0].is_same(empty[0]));
}

TEST(BlockPacking, ABufferOfTheWrongKindIsRefused) {
  const std::vector<at::Tensor> tensors = {at::ones({4})};
  EXPECT_THROW(pack_tensors(tensors, [](int64_t bytes) { return at::empty({bytes / 4}); }),
               std::exception);
  EXPECT_THROW(pack_tensors(tensors, [](int64_t) { return at::empty({8}, at::kByte); }),
               std::exception);
}

}  // namespace
}  // namespace wan::device
