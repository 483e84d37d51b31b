// fp8 checkpoints read as torch's native float8 dtypes: every one of the 256 codes of both formats
// converts to the float the OCP fp8 spec defines, the reader views the mapped bytes (no decode
// copy), and ComfyUI "scaled" weights dequantize to exactly spec value x scale.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "io/key_layout.h"
#include "io/safetensors.h"
#include "io/tensor_index.h"

namespace wan::io {
namespace {

namespace fs = std::filesystem;

enum class Fp8Format { kE4M3Fn, kE5M2 };

// The float value of one fp8 byte, written from the spec (sign, exponent, mantissa fields).
float spec_fp8_to_float(uint8_t byte, Fp8Format format) {
  const bool negative = byte & 0x80;
  const int exp_bits = format == Fp8Format::kE4M3Fn ? 4 : 5;
  const int man_bits = 7 - exp_bits;
  const int bias = format == Fp8Format::kE4M3Fn ? 7 : 15;
  const int exponent = (byte >> man_bits) & ((1 << exp_bits) - 1);
  const int mantissa = byte & ((1 << man_bits) - 1);
  float value;
  if (format == Fp8Format::kE4M3Fn && exponent == 15 && mantissa == 7) {
    value = std::numeric_limits<float>::quiet_NaN();  // e4m3fn: no inf, one NaN pattern
  } else if (format == Fp8Format::kE5M2 && exponent == 31) {
    value = mantissa ? std::numeric_limits<float>::quiet_NaN()
                     : std::numeric_limits<float>::infinity();
  } else if (exponent == 0) {
    value = std::ldexp(static_cast<float>(mantissa), 1 - bias - man_bits);  // subnormal
  } else {
    value = std::ldexp(1.0f + mantissa / static_cast<float>(1 << man_bits), exponent - bias);
  }
  return negative ? -value : value;
}

at::Tensor spec_table(Fp8Format format) {
  auto out = at::empty({256}, at::kFloat);
  for (int i = 0; i < 256; ++i)
    out[i] = spec_fp8_to_float(static_cast<uint8_t>(i), format);
  return out;
}

// Equal bit for bit (so -0 != +0), except that any NaN equals any NaN.
void expect_same_floats(const at::Tensor& got, const at::Tensor& expected) {
  ASSERT_EQ(got.scalar_type(), at::kFloat);
  ASSERT_EQ(got.numel(), expected.numel());
  const float* g = got.contiguous().data_ptr<float>();
  const float* e = expected.contiguous().data_ptr<float>();
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (std::isnan(e[i])) {
      EXPECT_TRUE(std::isnan(g[i])) << "code 0x" << std::hex << i;
    } else {
      EXPECT_EQ(std::memcmp(&g[i], &e[i], sizeof(float)), 0)
          << "code 0x" << std::hex << i << std::dec << ": " << g[i] << " != " << e[i];
    }
  }
}

at::Tensor all_codes() { return at::arange(256, at::kInt).to(at::kByte); }

std::string all_codes_bytes() {
  std::string bytes(256, '\0');
  for (int i = 0; i < 256; ++i) bytes[i] = static_cast<char>(i);
  return bytes;
}

std::string write_raw(const std::string& name, const std::string& header, const std::string& data) {
  const auto dir = fs::temp_directory_path() / ("wan_fp8_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(header.size() >> (8 * i)));
  out << header << data;
  return path;
}

TEST(Fp8, TorchFloat8ConvertsEveryCodeAsTheSpecSays) {
  expect_same_floats(all_codes().view(at::kFloat8_e4m3fn).to(at::kFloat),
                     spec_table(Fp8Format::kE4M3Fn));
  expect_same_floats(all_codes().view(at::kFloat8_e5m2).to(at::kFloat),
                     spec_table(Fp8Format::kE5M2));
  // Landmarks: e4m3fn max 448 and min subnormal 2^-9; e5m2 max 57344 and inf.
  EXPECT_EQ(spec_fp8_to_float(0x7E, Fp8Format::kE4M3Fn), 448.0f);
  EXPECT_EQ(spec_fp8_to_float(0x01, Fp8Format::kE4M3Fn), 0.001953125f);
  EXPECT_EQ(spec_fp8_to_float(0x7B, Fp8Format::kE5M2), 57344.0f);
  EXPECT_TRUE(std::isinf(spec_fp8_to_float(0x7C, Fp8Format::kE5M2)));
}

TEST(Safetensors, ReadsFp8AsNativeFloat8ViewsOfTheMapping) {
  const std::string header =
      R"({"a":{"dtype":"F8_E4M3","shape":[16,16],"data_offsets":[0,256]},)"
      R"("b":{"dtype":"F8_E5M2","shape":[256],"data_offsets":[256,512]}})";
  const auto path = write_raw("fp8.safetensors", header, all_codes_bytes() + all_codes_bytes());
  const auto tensors = load_tensors(path);
  const auto& a = tensors.at("a");
  const auto& b = tensors.at("b");
  EXPECT_EQ(a.scalar_type(), at::kFloat8_e4m3fn);
  EXPECT_EQ(b.scalar_type(), at::kFloat8_e5m2);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{16, 16}));
  // Zero-copy: b's bytes follow a's 256 in the one mapping, and they are the file's bytes.
  EXPECT_EQ(static_cast<char*>(b.data_ptr()) - static_cast<char*>(a.data_ptr()), 256);
  EXPECT_EQ(std::memcmp(a.data_ptr(), all_codes_bytes().data(), 256), 0);
  expect_same_floats(a.to(at::kFloat).flatten(), spec_table(Fp8Format::kE4M3Fn));
  expect_same_floats(b.to(at::kFloat), spec_table(Fp8Format::kE5M2));

  // fp8_as converts on read, to the value the float would round to.
  LoadOptions as_bf16;
  as_bf16.fp8_as = at::kBFloat16;
  const auto converted = load_tensors(path, as_bf16);
  EXPECT_EQ(converted.at("a").scalar_type(), at::kBFloat16);
  expect_same_floats(converted.at("b").to(at::kFloat),
                     spec_table(Fp8Format::kE5M2).to(at::kBFloat16).to(at::kFloat));
}

TEST(Safetensors, WritesFp8UnderItsSafetensorsName) {
  const auto path = (fs::temp_directory_path() /
                     ("wan_fp8_roundtrip_" + std::to_string(::getpid()) + ".safetensors"))
                        .string();
  save_safetensors(path, {{"w", all_codes().view(at::kFloat8_e4m3fn)}});
  EXPECT_EQ(read_tensor_infos(path).at(0).dtype, "F8_E4M3");
  const auto w = load_tensors(path).at("w");
  EXPECT_EQ(w.scalar_type(), at::kFloat8_e4m3fn);
  EXPECT_EQ(std::memcmp(w.data_ptr(), all_codes_bytes().data(), 256), 0);
  fs::remove(path);
}

// ComfyUI's *_fp8_e4m3fn_scaled files: an fp8 weight and a float32 scale (per tensor or per row).
TEST(KeyLayout, ScaledFp8FromAFileIsTheSpecValueTimesTheScale) {
  const std::string header =
      R"({"l.weight":{"dtype":"F8_E4M3","shape":[16,16],"data_offsets":[0,256]},)"
      R"("l.scale_weight":{"dtype":"F32","shape":[],"data_offsets":[256,260]},)"
      R"("r.weight":{"dtype":"F8_E4M3","shape":[2,128],"data_offsets":[260,516]},)"
      R"("r.weight_scale":{"dtype":"F32","shape":[2],"data_offsets":[516,524]},)"
      R"("scaled_fp8":{"dtype":"F8_E4M3","shape":[0],"data_offsets":[524,524]}})";
  const float scale = 0.0123f, rows[2] = {3.5f, -0.25f};
  std::string data = all_codes_bytes();
  data.append(reinterpret_cast<const char*>(&scale), 4);
  data += all_codes_bytes();
  data.append(reinterpret_cast<const char*>(rows), 8);
  auto tensors = load_tensors(write_raw("scaled.safetensors", header, data));
  EXPECT_EQ(dequantize_scaled_fp8(tensors, at::kFloat), 2);
  const auto spec = spec_table(Fp8Format::kE4M3Fn);
  expect_same_floats(tensors.at("l.weight").flatten(), spec * scale);
  const auto per_row = spec.reshape({2, 128}) * at::tensor({rows[0], rows[1]}).reshape({2, 1});
  expect_same_floats(tensors.at("r.weight").flatten(), per_row.flatten());
  EXPECT_EQ(tensors.size(), 2u);  // scales and the marker are gone
}

}  // namespace
}  // namespace wan::io
