// Bytes of activations each model holds while it computes, estimated from shapes (the basis of
// each formula is in docs/memory_plan.md, with its measured error). The nodes' plan() methods
// combine these with what they hold themselves.
#pragma once
#include <cstdint>
#include <string>

#include "models/vae/wan_vae.h"
#include "plan/plan_context.h"

namespace wan::plan {

// Tokens EncodePrompt computes for `text`: the tokenizer's count when the model names one,
// else text_len (the most the encoder reads).
int64_t t5_tokens(const ModelPlan& t5, const std::string& text);
int64_t t5_activations(const ModelPlan& t5, int64_t tokens);

int64_t dit_tokens(const models::WanDitConfig& config, const pipeline::VideoShape& shape);
// One DiT call's activations around and inside the largest block, the sampler's latents and the
// computing layer's weight cast included, in a run of `steps` sampling steps.
int64_t dit_activations(const ModelPlan& dit, const pipeline::VideoShape& shape, int64_t steps);

// VACE with park_vace (LoadDiT's vace_activations cpu): the bytes one DiT call moves off the
// device and as many back, and the most of them in CPU memory at once; 0 otherwise.
int64_t vace_parked_bytes(const ModelPlan& dit, const pipeline::VideoShape& shape);
int64_t vace_parked_cpu_bytes(const ModelPlan& dit, const pipeline::VideoShape& shape);

// A multistep solver's update between DiT calls: its history of earlier predictions and the
// update's temporaries, all float32 latents (none with one step).
int64_t solver_step_bytes(const pipeline::VideoShape& shape, int64_t steps);

// One image through the CLIP vision tower.
int64_t clip_activations(const ModelPlan& clip);

// Bytes the VAE's causal caches hold in chunked mode: 2 frames per causal conv input.
int64_t vae_cache_bytes(const models::WanVaeConfig& config, int64_t height, int64_t width,
                        int64_t dtype_bytes);

// Bytes of a VAE decode's activations for `latent_frames` latent frames of height x width video
// pixels with decoder width `base_channels` and `dtype_bytes`-byte activations.
int64_t vae_decode_activation_bytes(int64_t latent_frames, int64_t height, int64_t width,
                                    int64_t base_channels, int64_t dtype_bytes);

// Bytes of a VAE encode of `shape` (the video itself not included), in spatial tiles of
// `tile_pixels` video pixels (0: untiled).
int64_t vae_encode_activation_bytes(const ModelPlan& vae, const pipeline::VideoShape& shape,
                                    int64_t tile_pixels);

// The float32 latent [16, T, H/8, W/8] of `shape`, and its T x H/8 x W/8 positions.
int64_t latent_bytes(const pipeline::VideoShape& shape);
int64_t latent_positions(const pipeline::VideoShape& shape);

// Writing a float32 IMAGE as 8-bit pixels (media::image_to_uint8, in every saving and preview
// node): the uint8 copy of all frames and one frame's float32 product, in CPU memory at once.
int64_t eight_bit_copy_bytes(const PlannedValue& images);

}  // namespace wan::plan
