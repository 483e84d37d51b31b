// fp8 decoding: LibTorch 1.13 has no float8 types, so fp8 checkpoints are dequantized on read.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace wan::io {

enum class Fp8Format { kE4M3Fn, kE5M2 };

// Decodes `count` fp8 bytes into a new tensor of `shape` and dtype `as`.
at::Tensor decode_fp8(const uint8_t* bytes, at::IntArrayRef shape, Fp8Format format,
                      at::ScalarType as);

// The float value of one fp8 byte (exposed for tests).
float fp8_to_float(uint8_t byte, Fp8Format format);

}  // namespace wan::io
