// The Wan2.1 causal 3-D VAE: video [3, F, H, W] in [-1, 1] <-> latent [16, (F-1)/4+1, H/8, W/8].
// Mirrors WanVAE_ (Encoder3d, Decoder3d, conv1, conv2) and the WanVAE wrapper (latent
// normalisation) of the official wan/modules/vae.py.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <string>
#include <vector>

#include "io/tensor_map.h"
#include "models/vae/vae_blocks.h"

namespace wan::models {

// The VAE compresses time by 4 (after the first frame) and space by 8.
constexpr int64_t kVaeStrideTime = 4;
constexpr int64_t kVaeStrideSpace = 8;

struct WanVaeConfig {
  int64_t dim = 96;
  int64_t z_dim = 16;
  std::vector<int64_t> dim_mult = {1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  // Official `temperal_downsample`: which encoder stages also halve time (the decoder mirrors
  // it reversed).
  std::vector<bool> temporal_downsample = {false, true, true};

  // The configuration of Wan2.1_VAE.pth (official _video_vae).
  static WanVaeConfig official() { return {}; }
  // Reads dim, z_dim, dim_mult, num_res_blocks and temporal_downsample from the key names and
  // shapes of a checkpoint; throws LoadError naming the keys it looked for.
  static WanVaeConfig from_weights(const std::vector<io::TensorInfo>& tensors,
                                   const std::string& origin);
  static WanVaeConfig from_weights(const io::TensorMap& tensors, const std::string& origin);

  // Frame counts and spatial sizes of a latent for a video, and the reverse.
  static int64_t latent_frames(int64_t video_frames) {
    return (video_frames - 1) / kVaeStrideTime + 1;
  }
  static int64_t video_frames(int64_t latent_frames) {
    return (latent_frames - 1) * kVaeStrideTime + 1;
  }
};

// One parameter of the module: checkpoint key and shape.
struct VaeTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel() const;
};

// Every parameter of the module for `config`, in registration order, computed without
// allocating anything.
std::vector<VaeTensorSpec> wan_vae_expected_tensors(const WanVaeConfig& config);

// Per-call settings of encode/decode.
struct VaeRunOptions {
  // Latent frames per causal chunk; 0 = automatic: the whole clip in one pass when it has at
  // most kVaeWholeClipLatentFrames latent frames (nothing has to be cached then, which needs
  // less memory than caching), else one latent frame per chunk as the official code.
  // The result does not depend on this setting.
  TORCH_ARG(int64_t, latent_frames_per_chunk) = 0;
  // Called after each chunk with (latent frames done, latent frames in total); when tiled,
  // with (tiles done x latent frames + frames done in the tile, tiles x latent frames).
  TORCH_ARG(std::function<void(int, int)>, progress);
  // Spatial tiling (vae_tiling.h), in latent pixels for both directions (an encode's pixel tiles
  // are 8x): 0 = untiled. A tile at least as large as the latent runs the untiled pass, so the
  // result is then bit-identical to untiled. Tiled results differ from untiled near the seams
  // (the decoder's receptive field and its per-frame attention span the whole frame);
  // docs/vae.md states the measured error.
  TORCH_ARG(int64_t, tile_size) = 0;
  // Latent pixels shared by neighbouring tiles and blended linearly; < tile_size.
  TORCH_ARG(int64_t, tile_overlap) = 0;
};
constexpr int64_t kVaeWholeClipLatentFrames = 3;

namespace vae {

// Mirrors Encoder3d: frames [T, 3, H, W] -> [T', 2 * z_dim, H/8, W/8] for one causal chunk.
class Encoder3dImpl : public torch::nn::Module {
 public:
  explicit Encoder3dImpl(const WanVaeConfig& config);
  at::Tensor forward(const at::Tensor& x, FeatureCache& cache);

 private:
  CausalConv3d conv1_{nullptr};
  CausalStack downsamples_{nullptr};
  MiddleBlock middle_{nullptr};
  OutputHead head_{nullptr};
};
TORCH_MODULE(Encoder3d);

// Mirrors Decoder3d: frames [T, z_dim, h, w] -> [T', 3, 8h, 8w] for one causal chunk.
class Decoder3dImpl : public torch::nn::Module {
 public:
  explicit Decoder3dImpl(const WanVaeConfig& config);
  at::Tensor forward(const at::Tensor& x, FeatureCache& cache);

 private:
  CausalConv3d conv1_{nullptr};
  MiddleBlock middle_{nullptr};
  CausalStack upsamples_{nullptr};
  OutputHead head_{nullptr};
};
TORCH_MODULE(Decoder3d);

}  // namespace vae

// WanVAE_ plus the WanVAE latent normalisation. Parameters carry the checkpoint key names
// (encoder.*, conv1.*, conv2.*, decoder.*); the normalisation constants are buffers `mean` and
// `inv_std` (float32, not in the checkpoint) so that moving the module moves them too.
class WanVaeImpl : public torch::nn::Module {
 public:
  explicit WanVaeImpl(const WanVaeConfig& config = WanVaeConfig::official());

  // video [3, F, H, W] in [-1, 1], F = 4k + 1, H and W multiples of 8 -> normalised latent
  // [z_dim, (F-1)/4+1, H/8, W/8] float32: (mu - mean) * inv_std.
  at::Tensor encode(const at::Tensor& video, const VaeRunOptions& options = {});
  // Same without normalisation: the raw mu (official WanVAE_.encode with scale [0, 1]).
  at::Tensor encode_unscaled(const at::Tensor& video, const VaeRunOptions& options = {});
  // latent [z_dim, T, h, w] (normalised) -> video [3, 4(T-1)+1, 8h, 8w] float32 in [-1, 1].
  at::Tensor decode(const at::Tensor& latent, const VaeRunOptions& options = {});

  const WanVaeConfig& config() const { return config_; }
  // Dtype of the weights (activations run in it; normalisation stays float32).
  at::ScalarType dtype() const;

  at::Tensor mean, inv_std;

 private:
  // Raw mu of a checked video, untiled or through the tiles of options.tile_size().
  at::Tensor encode_mu(const at::Tensor& video, const VaeRunOptions& options);
  // One untiled pass each: raw mu, and the decoded frames before clamping.
  at::Tensor encode_pass(const at::Tensor& video, const VaeRunOptions& options);
  at::Tensor decode_pass(const at::Tensor& latent, const VaeRunOptions& options);

  WanVaeConfig config_;
  vae::Encoder3d encoder_{nullptr};
  vae::CausalConv3d conv1_{nullptr}, conv2_{nullptr};
  vae::Decoder3d decoder_{nullptr};
};
TORCH_MODULE(WanVae);

// Loads Wan2.1_VAE.pth (or a safetensors file with the same keys, e.g. ComfyUI's
// wan_2.1_vae.safetensors); the configuration is read from the weights. Weights end in `dtype`.
WanVae load_wan_vae(const std::string& path, at::ScalarType dtype = at::kFloat);

}  // namespace wan::models
