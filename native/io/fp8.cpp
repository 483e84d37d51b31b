#include "io/fp8.h"

#include <array>
#include <cmath>
#include <limits>

namespace wan::io {

float fp8_to_float(uint8_t byte, Fp8Format format) {
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

at::Tensor decode_fp8(const uint8_t* bytes, at::IntArrayRef shape, Fp8Format format,
                      at::ScalarType as) {
  std::array<float, 256> table{};
  for (int i = 0; i < 256; ++i) table[i] = fp8_to_float(static_cast<uint8_t>(i), format);
  auto out = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
  float* dst = out.data_ptr<float>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) dst[i] = table[bytes[i]];
  return as == at::kFloat ? out : out.to(as);
}

}  // namespace wan::io
