// Weights kept in their stored dtype (bf16, ComfyUI's scaled fp8 in the Hugging Face layout): the
// tiny encoder computing in float32 gives bit-identical outputs to the float32 encoder loaded
// from the same (dequantized) values, holds its parameters in the stored dtype, reads them
// without a copy and takes exactly the stored bytes.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/safetensors.h"
#include "io/tensor_index.h"
#include "models/common/weight_cast.h"
#include "models/t5/t5_key_layout.h"
#include "models/t5/umt5_text_encoder.h"
#include "test_util.h"

namespace wan::models {
namespace {

using testing::golden_tensor;
using testing::tiny_path;

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

io::TensorMap tiny_official() { return io::load_tensors(tiny_path("weights/t5_tiny_encoder.pth")); }

int64_t bytes_of(const at::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

int64_t module_bytes(torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& item : module.named_parameters()) total += bytes_of(item.value());
  for (const auto& item : module.named_buffers()) total += bytes_of(item.value());
  return total;
}

at::Tensor encode_golden(Umt5Encoder& encoder) {
  return encoder->forward(golden_tensor("t5", "input_ids"), golden_tensor("t5", "attention_mask"));
}

// The linear layers' weights (what ComfyUI's scaled files quantize): 2-D, not the embeddings.
bool is_linear_weight(const std::string& key, const at::Tensor& value) {
  return value.dim() == 2 && key.find("embedding") == std::string::npos;
}

TEST(Umt5WeightStorage, Bf16FileStaysBf16UnconvertedAndMatchesTheFloat32EncoderBitForBit) {
  TempDir dir("wan_t5_bf16_storage");
  io::TensorMap bf16, reference;
  int64_t file_bytes = 0;
  for (const auto& [key, value] : tiny_official()) {
    bf16[key] = value.to(at::kBFloat16);
    reference[key] = bf16[key].to(at::kFloat);
    file_bytes += bytes_of(bf16[key]);
  }
  const auto path = (dir.path / "t5_bf16.safetensors").string();
  io::save_safetensors(path, bf16);

  // A float32 encoder keeps the narrower bf16 weights as they are and casts them per call.
  const auto file = io::load_tensors(path);
  auto stored = load_umt5_encoder(file, path, Umt5EncoderOptions().dtype(at::kFloat));
  auto widened = load_umt5_encoder(reference, "reference", Umt5EncoderOptions().dtype(at::kFloat));
  for (const auto& item : stored->named_parameters()) {
    EXPECT_EQ(item.value().scalar_type(), at::kBFloat16) << item.key();
    EXPECT_EQ(item.value().data_ptr(), file.at(item.key()).data_ptr())
        << item.key() << " was copied instead of viewing the mapped file";
  }
  EXPECT_EQ(module_bytes(*stored), file_bytes);

  const auto out = encode_golden(stored), expected = encode_golden(widened);
  EXPECT_TRUE(at::equal(out, expected)) << "max abs " << (out - expected).abs().max().item<double>();
}

// ComfyUI's umt5_xxl_fp8_e4m3fn_scaled layout, tiny: Hugging Face names, every linear weight
// fp8 with a float32 scale (one value, or one per row for one layer), the `scaled_fp8` marker.
struct ScaledFile {
  std::string path;
  io::TensorMap dequantized;  // the float32 values it stands for, official names
  int64_t bytes = 0;          // every tensor's bytes but the marker's
};

ScaledFile write_scaled_fp8(const fs::path& dir) {
  ScaledFile out;
  io::TensorMap official;
  for (const auto& [key, value] : tiny_official()) {
    if (!is_linear_weight(key, value)) {
      official[key] = value;
      out.dequantized[key] = value;
      out.bytes += bytes_of(value);
      continue;
    }
    const bool per_row = key == "blocks.1.ffn.fc2.weight";
    const auto amax = per_row ? value.abs().amax(1) : value.abs().max();
    const auto scale = (amax / 448.0).clamp_min(1e-12).to(at::kFloat);
    const auto s = per_row ? scale.reshape({-1, 1}) : scale;
    const auto q = (value / s).to(at::kFloat8_e4m3fn);
    const std::string layer = key.substr(0, key.size() - std::string("weight").size());
    official[key] = q;
    official[layer + (per_row ? "weight_scale" : "scale_weight")] = scale;
    out.dequantized[key] = q.to(at::kFloat) * s;
    out.bytes += bytes_of(q) + bytes_of(scale);
  }
  auto hf = official_to_hf_t5(std::move(official));
  hf["scaled_fp8"] = at::empty({0}, at::kFloat8_e4m3fn);
  out.path = (dir / "t5_fp8_scaled.safetensors").string();
  io::save_safetensors(out.path, hf);
  return out;
}

TEST(Umt5WeightStorage, ScaledFp8FileStaysFp8WithItsScalesAndMatchesTheDequantizedEncoderBitForBit) {
  TempDir dir("wan_t5_fp8_storage");
  const auto scaled = write_scaled_fp8(dir.path);
  const auto file = io::load_tensors(scaled.path);
  auto stored = load_umt5_encoder(file, scaled.path, Umt5EncoderOptions().dtype(at::kFloat));
  auto widened =
      load_umt5_encoder(scaled.dequantized, "reference", Umt5EncoderOptions().dtype(at::kFloat));

  const auto params = stored->named_parameters();
  const auto buffers = stored->named_buffers();
  EXPECT_EQ(params["blocks.0.attn.q.weight"].scalar_type(), at::kFloat8_e4m3fn);
  EXPECT_EQ(params["blocks.1.ffn.fc2.weight"].scalar_type(), at::kFloat8_e4m3fn);
  EXPECT_EQ(params["blocks.0.attn.q.weight"].data_ptr(),
            file.at("encoder.block.0.layer.0.SelfAttention.q.weight").data_ptr())
      << "the fp8 weight was copied instead of viewing the mapped file";
  EXPECT_EQ(params["token_embedding.weight"].scalar_type(), at::kFloat);
  EXPECT_EQ(buffers["blocks.0.attn.q.scale_weight"].dim(), 0);
  EXPECT_EQ(buffers["blocks.1.ffn.fc2.scale_weight"].sizes(),
            at::IntArrayRef({params["blocks.1.ffn.fc2.weight"].size(0), 1}));
  EXPECT_EQ(module_bytes(*stored), scaled.bytes);

  const auto out = encode_golden(stored), expected = encode_golden(widened);
  EXPECT_TRUE(at::equal(out, expected)) << "max abs " << (out - expected).abs().max().item<double>();
  // The fp8 rounding did change the weights: the comparison above is not of two float32 files.
  EXPECT_GT((out - golden_tensor("t5", "encoder_out_full")).abs().max().item<double>(), 1e-4);
}

TEST(Umt5WeightStorage, ScaledFp8InABf16EncoderStaysFp8AndNearTheDequantizedEncoder) {
  TempDir dir("wan_t5_fp8_bf16");
  const auto scaled = write_scaled_fp8(dir.path);
  auto widened =
      load_umt5_encoder(scaled.dequantized, "reference", Umt5EncoderOptions().dtype(at::kFloat));
  const auto expected = encode_golden(widened);
  const double range = expected.abs().max().item<double>();
  for (auto matmul : {Umt5Matmul::kReducedInputs, Umt5Matmul::kFloatWeights}) {
    auto stored = load_umt5_encoder(io::load_tensors(scaled.path), scaled.path,
                                    Umt5EncoderOptions().dtype(at::kBFloat16).matmul(matmul));
    auto params = stored->named_parameters();
    EXPECT_EQ(params["blocks.0.attn.q.weight"].scalar_type(), at::kFloat8_e4m3fn);
    EXPECT_EQ(params["token_embedding.weight"].scalar_type(), at::kBFloat16);  // float32 narrowed
    const auto out = encode_golden(stored);
    const double err = (out - expected).abs().max().item<double>();
    std::printf("  [fp8 weights, bf16 compute, %s] max abs error %.3g (output max |x| %.3g)\n",
                matmul == Umt5Matmul::kReducedInputs ? "reduced-inputs" : "float-weights", err,
                range);
    // The bound of the bf16 encoder (Umt5Encoder.Bf16WeightsStayNearFloat32Reference): the
    // embeddings and norms are rounded to bf16 at load, the fp8 weights are exact in bf16.
    EXPECT_LT(err, 0.05 * range);
  }
}

}  // namespace
}  // namespace wan::models
