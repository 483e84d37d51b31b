// Weights kept in their stored dtype (bf16, ComfyUI's scaled fp8): the tiny t2v DiT computing in
// float32 gives bit-identical outputs to the float32 model loaded from the same (dequantized)
// values, holds its parameters in the stored dtype and takes exactly the stored bytes.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "io/safetensors.h"
#include "models/common/weight_cast.h"
#include "models/dit/wan_dit.h"
#include "test_util.h"

namespace wan::models {
namespace {

using testing::golden;
using testing::golden_tensor;
using testing::tiny_path;

namespace fs = std::filesystem;

// A temp folder per test, removed at the end.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

struct TinyDit {
  io::TensorMap tensors;
  std::map<std::string, std::string> metadata;  // carries the config (heads, text_len)
};

TinyDit tiny_t2v() {
  TinyDit dit;
  dit.tensors = io::load_safetensors(tiny_path("weights/dit_t2v_tiny.safetensors"), {}, &dit.metadata);
  return dit;
}

int64_t bytes_of(const at::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

int64_t module_bytes(torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& item : module.named_parameters()) total += bytes_of(item.value());
  for (const auto& item : module.named_buffers()) total += bytes_of(item.value());
  return total;
}

// Points every parameter of `model` at a fresh copy. A float32 file's tensors are views of the
// mapped file at whatever offset it gives them (8 bytes mod 64 here), while a weight cast per call
// or converted at load is a fresh 64-byte-aligned allocation, and MKL's small matrix-vector
// kernels round differently by alignment on some CPUs (1.2e-6 on time_embedding.0 measured on
// an AMD EPYC, none on others): compared in the same kind of memory, only the dtype path differs.
void in_fresh_memory(WanDit& model) {
  at::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) item.value().set_data(item.value().clone());
}

// The t2v golden case "single" ([16, 3, 8, 8] latent, 48 tokens) through `model`.
at::Tensor run_single(WanDit& model) {
  const auto& g = golden("dit_t2v");
  return model->forward({g.at("single.x.0")}, g.at("single.t"), {g.at("single.context.0")}, 48)
      .at(0);
}

// ComfyUI-style scaled fp8: q = fp8(w / s) with s = max|w| / 448 (one value, or one per row).
struct Scaled {
  at::Tensor q, scale, dequantized;
};
Scaled quantize(const at::Tensor& w, bool per_row) {
  Scaled out;
  const auto amax = per_row ? w.abs().flatten(1).amax(1) : w.abs().max();
  out.scale = (amax / 448.0).clamp_min(1e-12).to(at::kFloat);
  std::vector<int64_t> shape(static_cast<size_t>(w.dim()), 1);
  if (per_row) shape[0] = w.size(0);
  const auto s = per_row ? out.scale.reshape(shape) : out.scale;
  out.q = (w / s).to(at::kFloat8_e4m3fn);
  out.dequantized = out.q.to(at::kFloat) * s;
  return out;
}

TEST(WanDitWeightStorage, Bf16FileStaysBf16AndMatchesTheFloat32ModelBitForBit) {
  TempDir dir("wan_dit_bf16_storage");
  auto dit = tiny_t2v();
  io::TensorMap bf16, reference;
  int64_t expected_bytes = 0;
  for (const auto& [key, value] : dit.tensors) {
    bf16[key] = value.to(at::kBFloat16);
    reference[key] = bf16[key].to(at::kFloat);
    // As stored, except the float32 parts of the dtype policy.
    expected_bytes += value.numel() * (dit_keeps_float32(key) ? 4 : 2);
  }
  const auto bf16_path = (dir.path / "dit_bf16.safetensors").string();
  const auto reference_path = (dir.path / "dit_reference.safetensors").string();
  io::save_safetensors(bf16_path, bf16, dit.metadata);
  io::save_safetensors(reference_path, reference, dit.metadata);

  auto stored = load_wan_dit(bf16_path, std::nullopt, at::kFloat);
  auto widened = load_wan_dit(reference_path, at::kFloat, at::kFloat);
  in_fresh_memory(widened);
  const auto params = stored->named_parameters();
  EXPECT_EQ(params["blocks.0.self_attn.q.weight"].scalar_type(), at::kBFloat16);
  EXPECT_EQ(params["blocks.0.ffn.0.weight"].scalar_type(), at::kBFloat16);
  EXPECT_EQ(params["patch_embedding.weight"].scalar_type(), at::kBFloat16);
  EXPECT_EQ(params["time_embedding.0.weight"].scalar_type(), at::kFloat);
  EXPECT_EQ(module_bytes(*stored), expected_bytes);

  // bf16 -> float32 is exact, so float32 compute sees the same values in every layer.
  const auto out = run_single(stored), expected = run_single(widened);
  EXPECT_TRUE(at::equal(out, expected)) << "max abs " << (out - expected).abs().max().item<double>();
}

TEST(WanDitWeightStorage, ScaledFp8FileStaysFp8WithItsScalesAndMatchesTheDequantizedModelBitForBit) {
  TempDir dir("wan_dit_fp8_storage");
  auto dit = tiny_t2v();
  io::TensorMap scaled, reference;
  int64_t expected_bytes = 0;
  int64_t quantized = 0;
  for (const auto& [key, value] : dit.tensors) {
    // ComfyUI's files quantize the matrices; here the patch convolution too (per-row scale,
    // broadcast over its 5-D kernel), and one float32-policy matrix that the loader must
    // dequantize at load instead.
    const bool matrix = value.dim() >= 2 && key.size() > 7 &&
                        key.compare(key.size() - 7, 7, ".weight") == 0;
    const bool keeps_float32 = dit_keeps_float32(key);
    if (!matrix || (keeps_float32 && key != "time_embedding.0.weight")) {
      scaled[kComfyDitPrefix + key] = value;
      reference[key] = value;
      expected_bytes += bytes_of(value);
      continue;
    }
    const bool per_row = key == "patch_embedding.weight" || key == "blocks.1.ffn.2.weight";
    const auto q = quantize(value, per_row);
    const std::string layer = key.substr(0, key.size() - std::string("weight").size());
    scaled[kComfyDitPrefix + key] = q.q;
    scaled[kComfyDitPrefix + layer + (per_row ? "weight_scale" : "scale_weight")] = q.scale;
    reference[key] = q.dequantized;
    expected_bytes += keeps_float32 ? value.numel() * 4 : bytes_of(q.q) + bytes_of(q.scale);
    ++quantized;
  }
  scaled[kComfyDitPrefix + std::string("scaled_fp8")] = at::empty({0}, at::kFloat8_e4m3fn);
  ASSERT_GT(quantized, 10);
  const auto scaled_path = (dir.path / "dit_fp8_scaled.safetensors").string();
  const auto reference_path = (dir.path / "dit_reference.safetensors").string();
  io::save_safetensors(scaled_path, scaled, dit.metadata);
  io::save_safetensors(reference_path, reference, dit.metadata);

  auto stored = load_wan_dit(scaled_path, std::nullopt, at::kFloat);
  auto widened = load_wan_dit(reference_path, at::kFloat, at::kFloat);
  in_fresh_memory(widened);
  const auto params = stored->named_parameters();
  const auto buffers = stored->named_buffers();
  EXPECT_EQ(params["blocks.0.self_attn.q.weight"].scalar_type(), at::kFloat8_e4m3fn);
  EXPECT_EQ(params["patch_embedding.weight"].scalar_type(), at::kFloat8_e4m3fn);
  EXPECT_EQ(buffers["blocks.0.self_attn.q.scale_weight"].dim(), 0);
  EXPECT_EQ(buffers["patch_embedding.scale_weight"].sizes(), at::IntArrayRef({64, 1, 1, 1, 1}))
      << "a per-row scale broadcasts over the 5-D kernel";
  // A float32-policy matrix is dequantized at load and keeps no scale.
  EXPECT_EQ(params["time_embedding.0.weight"].scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(params["time_embedding.0.weight"], reference.at("time_embedding.0.weight")));
  EXPECT_EQ(buffers.find("time_embedding.0.scale_weight"), nullptr);
  EXPECT_EQ(module_bytes(*stored), expected_bytes);

  // float32(q) * scale in float32 is the reference's value, in every layer, at every call.
  const auto out = run_single(stored), expected = run_single(widened);
  EXPECT_TRUE(at::equal(out, expected)) << "max abs " << (out - expected).abs().max().item<double>();
  // The fp8 rounding did change the weights: the comparison above is not of two float32 files.
  EXPECT_GT((out - golden_tensor("dit_t2v", "single.out.0")).abs().max().item<double>(), 0.0);
}

TEST(WeightCast, ScaleIsAppliedInTheComputeDtypeAndNeverWritesTheParameter) {
  const auto q = at::tensor({1.0f, -2.0f, 0.5f, 448.0f}).reshape({2, 2}).to(at::kFloat8_e4m3fn);
  const auto bits = q.view(at::kByte).clone();
  const auto scale = at::tensor(0.25f).reshape({});
  EXPECT_TRUE(at::equal(cast_weight(q, at::kFloat, scale),
                        at::tensor({0.25f, -0.5f, 0.125f, 112.0f}).reshape({2, 2})));
  // bf16 compute: the fp8 value exactly in bf16, times the scale rounded to bf16.
  EXPECT_EQ(cast_weight(q, at::kBFloat16, scale).scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(q.view(at::kByte), bits));
  // A weight already in the compute dtype with no scale is the parameter itself (no copy).
  const auto w = at::ones({2, 2});
  EXPECT_TRUE(cast_weight(w, at::kFloat).is_same(w));
}

}  // namespace
}  // namespace wan::models
