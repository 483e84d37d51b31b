// Building blocks of the Wan2.1 causal 3-D VAE (official wan/modules/vae.py), registered under
// the checkpoint key names of Wan2.1_VAE.pth.
//
// Layout: every block works on "frames", [T, C, H, W] (time first, no batch). The official code
// uses [B, C, T, H, W]; putting time first makes each frame a contiguous [1, C, H, W] slice, so
// a causal 3-D convolution runs as 2-D convolutions of single frames (one per temporal tap) and
// never needs a padded or concatenated copy of the whole chunk.
//
// Blocks that mutate or consume their input take it by value: callers std::move the activation
// in, so it can be updated in place and freed as soon as it is dead.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <memory>
#include <vector>

namespace wan::models::vae {

// Frames kept by the official code between chunks (CACHE_T): a 3-tap causal convolution needs
// the two frames before the chunk.
constexpr int64_t kCacheFrames = 2;

// What one causal layer remembers between chunks (one entry of the official feat_cache list).
struct CausalSlot {
  // The layer has seen its first chunk (official: the entry is no longer None).
  bool started = false;
  // Last input frames [<= kCacheFrames, C, H, W]; undefined means none (zeros in the padding).
  at::Tensor frames;
};

// The per-call state of an encode or decode: one slot per causal layer, handed out in call order
// (the same order the official feat_idx counter walks).
class FeatureCache {
 public:
  // Starts a chunk. On the last chunk nothing has to be remembered, so slots are emptied as
  // soon as their layer has run instead of receiving new frames.
  void begin_chunk(bool keep_history) {
    cursor_ = 0;
    keep_history_ = keep_history;
  }
  CausalSlot& next();
  bool keep_history() const { return keep_history_; }

 private:
  std::vector<CausalSlot> slots_;
  size_t cursor_ = 0;
  bool keep_history_ = true;
};

// {time, height, width}.
using Triple = std::array<int64_t, 3>;

// Where a convolution writes its frames.
enum class ConvTarget {
  kNew,         // a new tensor
  kInPlace,     // over its own input (needs Cin == Cout and one output per input frame)
  kAccumulate,  // added onto `into` (the residual sum)
};

struct CausalConv3dOptions {
  CausalConv3dOptions(int64_t in_channels, int64_t out_channels, Triple kernel)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_(kernel) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(Triple, kernel);
  // Official nn.Conv3d padding {t, h, w}; time padding 2 * t is applied on the left only.
  TORCH_ARG(Triple, padding) = {0, 0, 0};
  TORCH_ARG(int64_t, time_stride) = 1;
};

// Mirrors CausalConv3d: weight [out, in, kt, kh, kw], bias [out].
class CausalConv3dImpl : public torch::nn::Module {
 public:
  explicit CausalConv3dImpl(const CausalConv3dOptions& options);

  // The official call `conv(x, cache)`: frames x [T, Cin, H, W] preceded by the slot's frames
  // and by zeros up to 2 * padding_t frames -> [T, Cout, H, W]. The slot then holds the last
  // kCacheFrames frames of (slot frames, x), captured before an in-place write.
  at::Tensor forward(at::Tensor x, CausalSlot& slot, bool keep_history,
                     ConvTarget target = ConvTarget::kNew, at::Tensor into = {});
  // Frames without temporal context (kernel_t == 1, as the official shortcut / conv1 / conv2).
  at::Tensor forward(const at::Tensor& x);

  // The convolution over the sequence (zero_frames zeros, history, x), `time_stride` apart:
  // out[j] = bias + sum_k W[:, :, k] * seq[j * stride + k]; zero frames contribute nothing and
  // are skipped. Output frames are computed one at a time so only one frame is in flight.
  at::Tensor apply(const at::Tensor& x, const at::Tensor& history, int64_t zero_frames,
                   ConvTarget target, at::Tensor into = {});

  const CausalConv3dOptions& options() const { return options_; }
  at::Tensor weight, bias;

 private:
  CausalConv3dOptions options_;
};
TORCH_MODULE(CausalConv3d);

struct VaeRmsNormOptions {
  explicit VaeRmsNormOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  // Official `images`: gamma is [dim, 1, 1] for 2-D use and [dim, 1, 1, 1] for 3-D use.
  TORCH_ARG(bool, images) = false;
  // Official `bias`; the VAE never enables it (the official then adds the constant 0.).
  TORCH_ARG(bool, bias) = false;
};

// Mirrors RMS_norm: F.normalize over channels (x / max(||x||_2, 1e-12)) * sqrt(dim) * gamma
// (+ bias).
class VaeRmsNormImpl : public torch::nn::Module {
 public:
  explicit VaeRmsNormImpl(const VaeRmsNormOptions& options);
  // x: [N, C, H, W] -> new tensor of the same shape.
  at::Tensor forward(const at::Tensor& x);
  // Same result written over x.
  void forward_(at::Tensor& x);

  at::Tensor gamma, bias;

 private:
  at::Tensor denominator(const at::Tensor& x) const;
  void scale_(at::Tensor& y) const;
  VaeRmsNormOptions options_;
};
TORCH_MODULE(VaeRmsNorm);

// A layer of the encoder/decoder stacks that carries causal state between chunks.
class CausalLayer : public torch::nn::Module {
 public:
  // x: [T, C, H, W] (consumed) -> [T', C', H', W'].
  virtual at::Tensor forward(at::Tensor x, FeatureCache& cache) = 0;
};

// Mirrors ResidualBlock: (RMS_norm, SiLU, CausalConv3d, RMS_norm, SiLU, Dropout, CausalConv3d)
// plus a 1x1x1 shortcut when the width changes.
class ResidualBlockImpl : public CausalLayer {
 public:
  ResidualBlockImpl(int64_t in_dim, int64_t out_dim);
  at::Tensor forward(at::Tensor x, FeatureCache& cache) override;

 private:
  int64_t in_dim_, out_dim_;
  VaeRmsNorm norm1_{nullptr}, norm2_{nullptr};
  CausalConv3d conv1_{nullptr}, conv2_{nullptr}, shortcut_{nullptr};
};
TORCH_MODULE(ResidualBlock);

enum class ResampleMode { kUpsample2d, kUpsample3d, kDownsample2d, kDownsample3d };

// Mirrors Resample: a per-frame 2x spatial resize plus, for the 3-D modes, a temporal
// convolution that doubles (upsample3d) or halves (downsample3d) the frame rate.
class ResampleImpl : public CausalLayer {
 public:
  ResampleImpl(int64_t dim, ResampleMode mode);
  at::Tensor forward(at::Tensor x, FeatureCache& cache) override;

 private:
  at::Tensor spatial(const at::Tensor& x);  // [T, C, H, W] -> [T, C', H', W'] frame by frame
  at::Tensor upsample_time(at::Tensor x, CausalSlot& slot, bool keep_history);
  at::Tensor downsample_time(at::Tensor x, CausalSlot& slot, bool keep_history);

  int64_t dim_;
  ResampleMode mode_;
  torch::nn::Conv2d conv_{nullptr};
  CausalConv3d time_conv_{nullptr};
};
TORCH_MODULE(Resample);

// Mirrors AttentionBlock: single-head self-attention over the pixels of each frame.
class AttentionBlockImpl : public torch::nn::Module {
 public:
  explicit AttentionBlockImpl(int64_t dim);
  // x: [T, C, H, W] (consumed, updated in place) -> x + attention(x).
  at::Tensor forward(at::Tensor x);

 private:
  int64_t dim_;
  VaeRmsNorm norm_{nullptr};
  torch::nn::Conv2d to_qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(AttentionBlock);

// Mirrors the `middle` Sequential of Encoder3d/Decoder3d: ResidualBlock, AttentionBlock,
// ResidualBlock under keys 0, 1, 2.
class MiddleBlockImpl : public torch::nn::Module {
 public:
  explicit MiddleBlockImpl(int64_t dim);
  at::Tensor forward(at::Tensor x, FeatureCache& cache);

 private:
  ResidualBlock res0_{nullptr}, res2_{nullptr};
  AttentionBlock attn1_{nullptr};
};
TORCH_MODULE(MiddleBlock);

// Mirrors the `head` Sequential: RMS_norm (key 0), SiLU, CausalConv3d (key 2).
class OutputHeadImpl : public torch::nn::Module {
 public:
  OutputHeadImpl(int64_t in_dim, int64_t out_dim);
  at::Tensor forward(at::Tensor x, FeatureCache& cache);

 private:
  VaeRmsNorm norm_{nullptr};
  CausalConv3d conv_{nullptr};
};
TORCH_MODULE(OutputHead);

// A numbered stack of causal layers (the official `downsamples` / `upsamples` Sequential).
class CausalStackImpl : public torch::nn::Module {
 public:
  void push_back(std::shared_ptr<CausalLayer> layer);
  at::Tensor forward(at::Tensor x, FeatureCache& cache);
  size_t size() const { return layers_.size(); }

 private:
  std::vector<std::shared_ptr<CausalLayer>> layers_;
};
TORCH_MODULE(CausalStack);

}  // namespace wan::models::vae
