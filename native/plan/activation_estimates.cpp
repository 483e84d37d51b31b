#include "plan/activation_estimates.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "models/common/attention.h"
#include "models/dit/wan_dit.h"
#include "models/t5/t5_tokenizer.h"
#include "plan/vae_tile_plan.h"

namespace wan::plan {
namespace {

// The attention score budget of models/common/attention.cpp (query_chunk = 0).
constexpr int64_t kAttentionBudget = int64_t{256} << 20;
// Calibration of the VAE decoder (docs/vae.md): a whole-clip decode of [16, 2, 60, 104] into
// 5 frames of 480x832 (float32, 96 channels at full resolution) peaked at 2.01 GiB of
// activations, i.e. this many tensors of 96 x 5 x 480 x 832 float32.
constexpr double kVaeActivationFactor = 2.01 * 1073741824.0 / (96.0 * 5 * 480 * 832 * 4);
// A decode in causal chunks holds more per chunk than the whole-clip calibration scales to:
// measured on the official-shape VAE (random weights) decoding 480x832x17 in 384-pixel tiles on
// the virtual accelerator, its chunked activations and caches were 1.050 x this estimate
// (2,114 MB against 2,013 MB; docs/memory_plan.md); rounded up so that the planner does not
// promise a tile that one measured point already overruns.
constexpr double kVaeChunkedDecodeCalibration = 1.06;

bool sdpa_attention() {
  return models::default_attention_backend() == models::AttentionBackend::kSdpa;
}

}  // namespace

int64_t t5_tokens(const ModelPlan& m, const std::string& text) {
  if (!m.tokenizer.empty()) {
    try {
      std::filesystem::path p = m.tokenizer;
      if (std::filesystem::is_directory(p)) p /= "spiece.model";
      return static_cast<int64_t>(
          models::T5Tokenizer::from_file(p.string(), m.text_len).encode(text).size());
    } catch (const std::exception& e) {
      spdlog::warn("memory plan: tokenizer {}: {}; assuming {} tokens", m.tokenizer, e.what(),
                   m.text_len);
    }
  }
  return m.text_len;
}

int64_t t5_activations(const ModelPlan& m, int64_t l) {
  const int64_t d = m.t5_dim, a = m.t5_dim_attn, f = m.t5_ffn, h = m.t5_heads;
  // Residual stream and the normed input (float32), then the larger of the attention phase
  // (q, k, v, output; the float32 position bias with the copies that make it, scores and
  // softmax [h, L, L]: 18.2 bytes per [h, L, L] element at the peak, measured with UMT5-XXL's
  // shape at 351 tokens on the CPU, where 12 had planned 15 % low; 19) and the gated FFN: the
  // reduced-precision gate and up projections with their float32 copies, the tanh-GELU's
  // composite temporaries and the product, 36 bytes per [L, ffn] element at the peak
  // (measured on the budgeted test model, docs/memory_plan.md).
  const int64_t attn = 4 * 4 * l * a + 19 * h * l * l;
  const int64_t ffn = 36 * l * f;
  return 4 * 2 * l * d + std::max(attn, ffn);
}

int64_t dit_tokens(const models::WanDitConfig& c, const pipeline::VideoShape& s) {
  return s.latent_frames() / c.patch_size[0] * (s.height / 8 / c.patch_size[1]) *
         (s.width / 8 / c.patch_size[2]);
}

int64_t latent_positions(const pipeline::VideoShape& s) {
  return s.latent_frames() * (s.height / 8) * (s.width / 8);
}

int64_t latent_bytes(const pipeline::VideoShape& s) { return 16 * latent_positions(s) * 4; }

int64_t dit_activations(const ModelPlan& m, const pipeline::VideoShape& s, int64_t steps) {
  const auto& c = m.dit;
  const int64_t S = dit_tokens(c, s), D = c.dim, F = c.ffn_dim, cb = m.compute_bytes;
  const int64_t lc = c.text_len + c.image_tokens();
  const int64_t latent = latent_bytes(s);
  // Blocks compute their per-token work kDitTokenChunk tokens at a time (models/dit).
  const int64_t run = std::min(S, models::kDitTokenChunk);
  // The chunked backend holds a [heads, chunk, S] score buffer and its softmax; SDPA's fused
  // kernel works in small tiles and holds no such buffer.
  const int64_t chunk = models::attention_query_chunk(1, c.num_heads, S, S, kAttentionBudget);
  const int64_t scores = sdpa_attention() ? 0 : c.num_heads * chunk * S * 4 * 2;
  // In a block: its float32 residual stream (a copy of the input, updated in place). Filling
  // q, k, v (compute dtype, whole sequence) holds one run's float32 norm, RMSNorm and rotation
  // temporaries and its modulated input; attending adds the output (compute dtype), and with the
  // chunked backend the keys' and values' head-major copies its matmuls make.
  const int64_t fill = S * D * (4 + 3 * cb) + run * D * (16 + 2 * cb);
  const int64_t head_copies = sdpa_attention() ? 0 : 2;
  const int64_t attend = S * D * (4 + (4 + head_copies) * cb) + scores;
  // FFN, one run at a time: norm and modulation (float32), fc1 output and its GELU, fc2 output
  // and its float32 gated copy.
  const int64_t ffn = S * D * 4 + run * (D * (20 + 2 * cb) + 2 * F * cb);
  // Around the blocks: the float32 residual stream, the projected context (float32) and the
  // cross-attention keys/values; the sampler's float32 latents during a DiT call: the state,
  // the first guidance prediction while the second is computed, the DiT's patch-embedding
  // input, and the solver's history of earlier predictions (two once there are two; measured
  // on a 9680-token run, docs/memory_plan.md).
  const int64_t latents = 3 + std::min<int64_t>(2, std::max<int64_t>(0, steps - 1));
  int64_t outside = S * D * 4 + lc * D * 4 + 2 * lc * D * cb + latents * latent;
  // VACE: its blocks compute between the main blocks (models/dit), holding the float32 chain
  // and, through main block 0, the first hint. Parked, the device holds one float32 stream at a
  // time: only the first block's join adds its input, projection (compute dtype) and float32
  // copy beside the residual stream.
  int64_t join = 0;
  if (!c.vace_layers.empty()) {
    if (m.park_vace)
      join = S * D * (4 + cb + 4);
    else
      outside += 2 * S * D * 4;
  }
  // The computing layer's weight cast to the compute dtype, when kept in another.
  return outside + std::max({fill, attend, ffn, join}) + m.upcast_bytes;
}

int64_t vace_parked_bytes(const ModelPlan& m, const pipeline::VideoShape& s) {
  const auto n = static_cast<int64_t>(m.dit.vace_layers.size());
  if (!m.park_vace || n == 0) return 0;
  // Each way, in float32 streams: the residual stream out and back around every VACE block, and
  // the chain back and out between them (the first block parks the first hint instead of taking
  // the chain back; the last drops its chain). A single VACE block parks the stream only.
  const int64_t streams = n == 1 ? 1 : 2 * n;
  return streams * dit_tokens(m.dit, s) * m.dit.dim * 4;
}

int64_t vace_parked_cpu_bytes(const ModelPlan& m, const pipeline::VideoShape& s) {
  const auto n = static_cast<int64_t>(m.dit.vace_layers.size());
  if (!m.park_vace || n == 0) return 0;
  // The chain and the first hint, through main block 0.
  return (n == 1 ? 1 : 2) * dit_tokens(m.dit, s) * m.dit.dim * 4;
}

int64_t solver_step_bytes(const pipeline::VideoShape& s, int64_t steps) {
  // 14 latents: measured 13.3 at the peak of a 3-step UniPC run of 9680 tokens (tiny DiT on the
  // virtual accelerator, tests/plan/stream_placement_test.cpp); a single step makes no update
  // beyond the DiT call's own latents.
  return steps > 1 ? 14 * latent_bytes(s) : 0;
}

int64_t clip_activations(const ModelPlan& m) {
  const int64_t l = models::kClipTokensPerImage, w = m.clip_width, b = m.act_bytes;
  // Residual, normed input, q/k/v and output, scores + softmax (float32), MLP hidden + GELU.
  const int64_t scores = sdpa_attention() ? 0 : m.clip_heads * l * l * 4 * 2;
  return l * w * b * 6 + scores + 2 * l * m.clip_mlp * b + 3 * 224 * 224 * 4;
}

int64_t vae_cache_bytes(const models::WanVaeConfig& c, int64_t h, int64_t w, int64_t b) {
  int64_t total = 0;
  const int64_t stages = static_cast<int64_t>(c.dim_mult.size());
  for (int64_t s = 0; s < stages; ++s) {
    const int64_t scale = int64_t{1} << s;  // stage 0 at full resolution
    const int64_t ch = c.dim * c.dim_mult[static_cast<size_t>(s)];
    total += 2 * (c.num_res_blocks + 1) * 2 * ch * (h / scale) * (w / scale) * b;
  }
  const int64_t top = c.dim * c.dim_mult.back(), lh = h / 8, lw = w / 8;
  total += 2 * 4 * top * lh * lw * b;             // middle resblocks
  total += 2 * c.dim * c.dim_mult[0] * h * w * b;  // head conv
  return total;
}

int64_t vae_decode_activation_bytes(int64_t latent_frames, int64_t height, int64_t width,
                                    int64_t base_channels, int64_t dtype_bytes) {
  const int64_t frames = models::WanVaeConfig::video_frames(latent_frames);
  const bool whole = latent_frames <= models::kVaeWholeClipLatentFrames;
  const int64_t chunk_frames = whole ? frames : 4;
  const double chunk = kVaeActivationFactor * base_channels * chunk_frames * height * width *
                       dtype_bytes;
  if (whole) return static_cast<int64_t>(chunk);
  // Causal caches (official geometry scaled by the base width) and the preallocated float32
  // output of the whole clip.
  models::WanVaeConfig c;
  c.dim = base_channels;
  const double caches = static_cast<double>(vae_cache_bytes(c, height, width, dtype_bytes));
  return static_cast<int64_t>(kVaeChunkedDecodeCalibration * (chunk + caches)) +
         3 * frames * height * width * 4;
}

int64_t vae_encode_activation_bytes(const ModelPlan& vae, const pipeline::VideoShape& s,
                                    int64_t tile_pixels) {
  // The encoder's activations per chunk (calibrated like the decoder), with causal caches when
  // the clip is encoded in chunks.
  const int64_t c0 = vae.vae.dim * vae.vae.dim_mult[0];
  const bool whole = s.latent_frames() <= models::kVaeWholeClipLatentFrames;
  const int64_t chunk_frames = whole ? s.frames : 4;
  // Tiled, the encoder runs on one tile at a time, blending into a float32 latent.
  const auto tile = vae_tile_pixels(s.height, s.width, tile_pixels / models::kVaeStrideSpace);
  int64_t act = static_cast<int64_t>(kVaeActivationFactor * c0 * chunk_frames * tile.height *
                                     tile.width * vae.act_bytes);
  if (!whole) act += vae_cache_bytes(vae.vae, tile.height, tile.width, vae.act_bytes);
  if (tile.tiled)
    act += latent_bytes(s) + (s.height / 8) * (s.width / 8) * 4 +
           vae_tile_call_bytes(c0, vae.act_bytes);
  return act;
}

int64_t eight_bit_copy_bytes(const PlannedValue& images) {
  const int64_t values = images.cpu_bytes / 4;
  const auto& s = images.shape;
  const int64_t frame = s.height * s.width * 3;
  // An IMAGE whose planned shape does not account for its bytes counts as one frame.
  const bool framed = frame > 0 && s.frames > 0 && values == s.frames * frame;
  // Per frame: the float32 product (clamped in place) and its uint8 cast, copied into the result.
  return values + 5 * (framed ? frame : values);
}

}  // namespace wan::plan
