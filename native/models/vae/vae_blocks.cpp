#include "models/vae/vae_blocks.h"

#include <torch/nn.h>

#include <cmath>

#include "models/common/attention.h"
#include "models/common/linear_layer.h"

namespace wan::models::vae {
namespace {

// F.normalize's default eps.
constexpr double kNormalizeEps = 1e-12;

// A Module that only groups children under numbered keys, so "residual.2.weight" and
// "resample.1.weight" resolve as in the official nn.Sequential containers.
std::shared_ptr<torch::nn::Module> key_group() {
  return std::make_shared<torch::nn::Module>("Sequential");
}

// The last `count` frames of (history, x), copied so later in-place writes cannot reach them.
at::Tensor last_frames(const at::Tensor& history, const at::Tensor& x, int64_t count) {
  const int64_t t = x.size(0);
  if (t >= count || !history.defined()) return x.narrow(0, t - std::min(t, count), std::min(t, count)).clone();
  const int64_t from_history = std::min(count - t, history.size(0));
  return at::cat({history.narrow(0, history.size(0) - from_history, from_history), x}, 0);
}

}  // namespace

CausalSlot& FeatureCache::next() {
  if (cursor_ == slots_.size()) slots_.emplace_back();
  return slots_[cursor_++];
}

// ---------------------------------------------------------------------------------------------
// CausalConv3d

CausalConv3dImpl::CausalConv3dImpl(const CausalConv3dOptions& options) : options_(options) {
  const auto& k = options_.kernel();
  // No storage until load_weights sets the checkpoint's kernel (unloaded_tensor).
  weight = register_parameter(
      "weight", unloaded_tensor({options_.out_channels(), options_.in_channels(), k[0], k[1], k[2]}));
  bias = register_parameter("bias", at::zeros({options_.out_channels()}));
}

at::Tensor CausalConv3dImpl::apply(const at::Tensor& x, const at::Tensor& history,
                                   int64_t zero_frames, ConvTarget target, at::Tensor into) {
  const int64_t kt = options_.kernel()[0];
  const int64_t stride = options_.time_stride();
  const int64_t hist = history.defined() ? history.size(0) : 0;
  const int64_t prefix = zero_frames + hist;
  const int64_t length = prefix + x.size(0);
  const int64_t frames = length >= kt ? (length - kt) / stride + 1 : 0;
  TORCH_CHECK((length - kt) % stride == 0 || frames == 0,
              "CausalConv3d: sequence of ", length, " frames does not tile with stride ", stride);
  const std::vector<int64_t> padding = {options_.padding()[1], options_.padding()[2]};

  // Frame i of the virtual sequence (zeros, history, x); undefined for a zero frame.
  auto frame = [&](int64_t i) -> at::Tensor {
    if (i < zero_frames) return {};
    if (i < prefix) return history.narrow(0, i - zero_frames, 1);
    return x.narrow(0, i - prefix, 1);
  };
  std::vector<at::Tensor> taps(kt);
  for (int64_t k = 0; k < kt; ++k) taps[k] = weight.select(2, k).contiguous();

  at::Tensor out;
  if (target == ConvTarget::kInPlace) {
    TORCH_CHECK(stride == 1 && prefix == kt - 1 && x.size(1) == options_.out_channels(),
                "CausalConv3d: in-place needs one output per input frame and Cin == Cout");
    out = x;
  } else if (target == ConvTarget::kAccumulate) {
    TORCH_CHECK(into.defined() && into.size(0) == frames, "CausalConv3d: bad accumulate target");
    out = into;
  } else {
    out = at::empty({frames, options_.out_channels(), x.size(2), x.size(3)}, x.options());
  }

  // In place, output j may only overwrite input frame j once no later output reads it: walk
  // backwards (output j reads inputs j - kt + 1 .. j).
  for (int64_t n = 0; n < frames; ++n) {
    const int64_t j = target == ConvTarget::kInPlace ? frames - 1 - n : n;
    const int64_t first = j * stride;
    // The newest frame of the window is always real; older taps may fall on zero padding.
    auto acc = at::conv2d(frame(first + kt - 1), taps[kt - 1], bias, /*stride=*/1, padding);
    for (int64_t k = kt - 2; k >= 0; --k) {
      const auto input = frame(first + k);
      if (input.defined()) acc.add_(at::conv2d(input, taps[k], {}, /*stride=*/1, padding));
    }
    if (target == ConvTarget::kAccumulate) {
      out.narrow(0, j, 1).add_(acc);
    } else {
      out.narrow(0, j, 1).copy_(acc);
    }
  }
  return out;
}

at::Tensor CausalConv3dImpl::forward(at::Tensor x, CausalSlot& slot, bool keep_history,
                                     ConvTarget target, at::Tensor into) {
  const int64_t pad_t = 2 * options_.padding()[0];
  // As the official: the cache only matters where the kernel has temporal padding.
  at::Tensor history = pad_t > 0 ? slot.frames : at::Tensor();
  const int64_t zero_frames = pad_t - (history.defined() ? history.size(0) : 0);
  slot.started = true;
  slot.frames = keep_history ? last_frames(history, x, kCacheFrames) : at::Tensor();
  return apply(x, history, zero_frames, target, std::move(into));
}

at::Tensor CausalConv3dImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(options_.kernel()[0] == 1, "CausalConv3d: temporal kernel needs a cache slot");
  return apply(x, {}, 0, ConvTarget::kNew);
}

// ---------------------------------------------------------------------------------------------
// VaeRmsNorm

VaeRmsNormImpl::VaeRmsNormImpl(const VaeRmsNormOptions& options) : options_(options) {
  std::vector<int64_t> shape = {options_.dim(), 1, 1};
  if (!options_.images()) shape.push_back(1);
  gamma = register_parameter("gamma", at::ones(shape));
  if (options_.bias()) bias = register_parameter("bias", at::zeros(shape));
}

at::Tensor VaeRmsNormImpl::denominator(const at::Tensor& x) const {
  // F.normalize: input / norm(input, dim=1).clamp_min(eps).
  return at::norm(x, 2, {1}, /*keepdim=*/true).clamp_min_(kNormalizeEps);
}

void VaeRmsNormImpl::scale_(at::Tensor& y) const {
  const int64_t c = options_.dim();
  y.mul_(std::sqrt(static_cast<double>(c))).mul_(gamma.view({c, 1, 1}));
  if (bias.defined()) y.add_(bias.view({c, 1, 1}));
}

at::Tensor VaeRmsNormImpl::forward(const at::Tensor& x) {
  auto y = at::div(x, denominator(x));
  scale_(y);
  return y;
}

void VaeRmsNormImpl::forward_(at::Tensor& x) {
  x.div_(denominator(x));
  scale_(x);
}

// ---------------------------------------------------------------------------------------------
// ResidualBlock

ResidualBlockImpl::ResidualBlockImpl(int64_t in_dim, int64_t out_dim)
    : in_dim_(in_dim), out_dim_(out_dim) {
  // Keys follow the official nn.Sequential positions; 1 and 4 (SiLU), 5 (Dropout) hold no
  // weights.
  auto residual = register_module("residual", key_group());
  norm1_ = residual->register_module("0", VaeRmsNorm(VaeRmsNormOptions(in_dim)));
  conv1_ = residual->register_module(
      "2", CausalConv3d(CausalConv3dOptions(in_dim, out_dim, {3, 3, 3}).padding({1, 1, 1})));
  norm2_ = residual->register_module("3", VaeRmsNorm(VaeRmsNormOptions(out_dim)));
  conv2_ = residual->register_module(
      "6", CausalConv3d(CausalConv3dOptions(out_dim, out_dim, {3, 3, 3}).padding({1, 1, 1})));
  if (in_dim != out_dim)
    shortcut_ =
        register_module("shortcut", CausalConv3d(CausalConv3dOptions(in_dim, out_dim, {1, 1, 1})));
}

at::Tensor ResidualBlockImpl::forward(at::Tensor x, FeatureCache& cache) {
  // x: [T, in_dim, H, W] -> [T, out_dim, H, W]. The sum h accumulates the residual path, so
  // at most x (or h), one path activation and one frame in flight are alive.
  at::Tensor h = shortcut_ ? shortcut_->forward(x) : x;
  auto y = norm1_->forward(x);
  at::silu_(y);
  x.reset();  // h holds everything the block still needs from x
  const bool keep = cache.keep_history();
  y = conv1_->forward(std::move(y), cache.next(), keep,
                      in_dim_ == out_dim_ ? ConvTarget::kInPlace : ConvTarget::kNew);
  norm2_->forward_(y);
  at::silu_(y);
  // Dropout(p=0) is the identity at inference. The official x + h adds the same two values.
  conv2_->forward(std::move(y), cache.next(), keep, ConvTarget::kAccumulate, h);
  return h;
}

// ---------------------------------------------------------------------------------------------
// Resample

ResampleImpl::ResampleImpl(int64_t dim, ResampleMode mode) : dim_(dim), mode_(mode) {
  // Key "resample.1": position 0 of the official Sequential is the Upsample / ZeroPad2d.
  auto resample = register_module("resample", key_group());
  const bool up = mode == ResampleMode::kUpsample2d || mode == ResampleMode::kUpsample3d;
  if (up) {
    conv_ = resample->register_module(
        "1", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim / 2, 3).padding(1)));
  } else {
    conv_ = resample->register_module(
        "1", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 3).stride(2)));
  }
  if (mode == ResampleMode::kUpsample3d) {
    time_conv_ = register_module(
        "time_conv",
        CausalConv3d(CausalConv3dOptions(dim, dim * 2, {3, 1, 1}).padding({1, 0, 0})));
  } else if (mode == ResampleMode::kDownsample3d) {
    time_conv_ = register_module(
        "time_conv", CausalConv3d(CausalConv3dOptions(dim, dim, {3, 1, 1}).time_stride(2)));
  }
}

at::Tensor ResampleImpl::spatial(const at::Tensor& x) {
  const int64_t frames = x.size(0), h = x.size(2), w = x.size(3);
  const bool up = mode_ == ResampleMode::kUpsample2d || mode_ == ResampleMode::kUpsample3d;
  const int64_t out_h = up ? h * 2 : (h - 2) / 2 + 1;  // down: ZeroPad2d(0,1,0,1), 3x3 stride 2
  const int64_t out_w = up ? w * 2 : (w - 2) / 2 + 1;
  auto out = at::empty({frames, conv_->options.out_channels(), out_h, out_w}, x.options());
  for (int64_t t = 0; t < frames; ++t) {
    auto f = x.narrow(0, t, 1);
    // nearest-exact with scale 2 picks source index floor((i + 0.5) / 2) = floor(i / 2), the
    // same pixel as plain nearest.
    f = up ? at::upsample_nearest2d(f, {out_h, out_w}, 2.0, 2.0)
           : at::constant_pad_nd(f, {0, 1, 0, 1}, 0);
    out.narrow(0, t, 1).copy_(conv_->forward(f));
  }
  return out;
}

at::Tensor ResampleImpl::upsample_time(at::Tensor x, CausalSlot& slot, bool keep_history) {
  // x: [T, C, H, W] -> [T' , C, H, W]. The official marks the slot 'Rep' on the first chunk and
  // skips the temporal conv for it: the clip's first frame stays a single frame and is not part
  // of the conv's history, which starts as zeros at the second frame.
  at::Tensor first;
  if (!slot.started) {
    first = x.narrow(0, 0, 1);
    x = x.narrow(0, 1, x.size(0) - 1);
    slot.started = true;
    slot.frames = at::Tensor();
  }
  at::Tensor doubled;
  if (x.size(0) > 0) {
    // [T, 2C, H, W]: output channels (s * C + c) are frame 2t + s, so a view interleaves them.
    auto y = time_conv_->forward(std::move(x), slot, keep_history);
    doubled = y.view({y.size(0) * 2, dim_, y.size(2), y.size(3)});
  }
  if (!first.defined()) return doubled;
  if (!doubled.defined()) return first;
  return at::cat({first, doubled}, 0);
}

at::Tensor ResampleImpl::downsample_time(at::Tensor x, CausalSlot& slot, bool keep_history) {
  // x: [T, C, H, W] (already halved spatially). The first frame of the clip passes unchanged;
  // from then on frames (2j, 2j+1, 2j+2) of the clip merge into one (kernel 3, stride 2, no
  // padding), the previous chunk's last frame opening the window.
  const int64_t frames = x.size(0);
  at::Tensor history = slot.frames;
  at::Tensor first;
  if (!slot.started) first = x.narrow(0, 0, 1);
  slot.started = true;
  slot.frames = keep_history ? x.narrow(0, frames - 1, 1).clone() : at::Tensor();
  auto merged = time_conv_->apply(x, history, 0, ConvTarget::kNew);
  if (!first.defined()) return merged;
  return merged.size(0) == 0 ? first.clone() : at::cat({first, merged}, 0);
}

at::Tensor ResampleImpl::forward(at::Tensor x, FeatureCache& cache) {
  switch (mode_) {
    case ResampleMode::kUpsample2d:
    case ResampleMode::kDownsample2d:
      return spatial(x);
    case ResampleMode::kUpsample3d: {
      auto& slot = cache.next();
      return spatial(upsample_time(std::move(x), slot, cache.keep_history()));
    }
    case ResampleMode::kDownsample3d: {
      auto& slot = cache.next();
      x = spatial(x);
      return downsample_time(std::move(x), slot, cache.keep_history());
    }
  }
  TORCH_CHECK(false, "Resample: unknown mode");
}

// ---------------------------------------------------------------------------------------------
// AttentionBlock

AttentionBlockImpl::AttentionBlockImpl(int64_t dim) : dim_(dim) {
  norm_ = register_module("norm", VaeRmsNorm(VaeRmsNormOptions(dim).images(true)));
  to_qkv_ = register_module("to_qkv", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim * 3, 1)));
  proj_ = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 1)));
}

at::Tensor AttentionBlockImpl::forward(at::Tensor x) {
  const int64_t c = dim_, h = x.size(2), w = x.size(3);
  for (int64_t t = 0; t < x.size(0); ++t) {
    auto frame = x.narrow(0, t, 1);                                   // [1, C, H, W]
    auto qkv = to_qkv_->forward(norm_->forward(frame));               // [1, 3C, H, W]
    qkv = qkv.view({1, 3 * c, h * w}).permute({0, 2, 1});             // [1, HW, 3C]
    auto q = qkv.narrow(2, 0, c).unsqueeze(2);                        // [1, HW, 1, C]
    auto k = qkv.narrow(2, c, c).unsqueeze(2);
    auto v = qkv.narrow(2, 2 * c, c).unsqueeze(2);
    auto o = attention(q, k, v);                                      // [1, HW, 1, C]
    o = o.view({1, h * w, c}).permute({0, 2, 1}).reshape({1, c, h, w});
    frame.add_(proj_->forward(o));
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Middle, head and stacks

MiddleBlockImpl::MiddleBlockImpl(int64_t dim) {
  res0_ = register_module("0", ResidualBlock(dim, dim));
  attn1_ = register_module("1", AttentionBlock(dim));
  res2_ = register_module("2", ResidualBlock(dim, dim));
}

at::Tensor MiddleBlockImpl::forward(at::Tensor x, FeatureCache& cache) {
  x = res0_->forward(std::move(x), cache);
  x = attn1_->forward(std::move(x));
  return res2_->forward(std::move(x), cache);
}

OutputHeadImpl::OutputHeadImpl(int64_t in_dim, int64_t out_dim) {
  norm_ = register_module("0", VaeRmsNorm(VaeRmsNormOptions(in_dim)));
  conv_ = register_module(
      "2", CausalConv3d(CausalConv3dOptions(in_dim, out_dim, {3, 3, 3}).padding({1, 1, 1})));
}

at::Tensor OutputHeadImpl::forward(at::Tensor x, FeatureCache& cache) {
  // x: [T, C, H, W] -> [T, out_dim, H, W]; x is dead after the norm, so it is normalised in place.
  norm_->forward_(x);
  at::silu_(x);
  return conv_->forward(std::move(x), cache.next(), cache.keep_history());
}

void CausalStackImpl::push_back(std::shared_ptr<CausalLayer> layer) {
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

at::Tensor CausalStackImpl::forward(at::Tensor x, FeatureCache& cache) {
  for (auto& layer : layers_) x = layer->forward(std::move(x), cache);
  return x;
}

}  // namespace wan::models::vae
