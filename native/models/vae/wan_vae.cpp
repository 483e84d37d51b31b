#include "models/vae/wan_vae.h"

#include <c10/core/InferenceMode.h>
#include <spdlog/spdlog.h>
#include <torch/nn.h>

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "io/tensor_index.h"
#include "models/common/weights.h"
#include "models/vae/vae_tiling.h"

namespace wan::models {
namespace {

// Per-channel latent statistics of the official WanVAE (z_dim 16).
constexpr float kLatentMean[] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                                 -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                                 -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
constexpr float kLatentStd[] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f,
                                2.6052f, 2.0743f, 3.2687f, 2.1526f, 2.8652f, 1.5579f,
                                1.6382f, 1.1253f, 2.8251f, 1.9160f};
constexpr int64_t kLatentStatChannels = 16;

using ShapeMap = std::map<std::string, std::vector<int64_t>>;

// Channel widths of the encoder and decoder stages, as the official constructors compute them.
std::vector<int64_t> encoder_dims(const WanVaeConfig& c) {
  std::vector<int64_t> dims = {c.dim};
  for (auto m : c.dim_mult) dims.push_back(c.dim * m);
  return dims;
}
std::vector<int64_t> decoder_dims(const WanVaeConfig& c) {
  std::vector<int64_t> dims = {c.dim * c.dim_mult.back()};
  for (auto it = c.dim_mult.rbegin(); it != c.dim_mult.rend(); ++it) dims.push_back(c.dim * *it);
  return dims;
}
// Official Decoder3d halves the input width of stages 1..3: each upsample conv halves channels.
int64_t decoder_stage_in(const std::vector<int64_t>& dims, size_t i) {
  return (i >= 1 && i <= 3) ? dims[i] / 2 : dims[i];
}

// The parameter list, written once and shared by wan_vae_expected_tensors and the tests.
class SpecWriter {
 public:
  void conv3d(const std::string& p, int64_t in, int64_t out, int64_t kt, int64_t k) {
    add(p + "weight", {out, in, kt, k, k});
    add(p + "bias", {out});
  }
  void conv2d(const std::string& p, int64_t in, int64_t out, int64_t k) {
    add(p + "weight", {out, in, k, k});
    add(p + "bias", {out});
  }
  void residual(const std::string& p, int64_t in, int64_t out) {
    add(p + "residual.0.gamma", {in, 1, 1, 1});
    conv3d(p + "residual.2.", in, out, 3, 3);
    add(p + "residual.3.gamma", {out, 1, 1, 1});
    conv3d(p + "residual.6.", out, out, 3, 3);
    if (in != out) conv3d(p + "shortcut.", in, out, 1, 1);
  }
  void middle(const std::string& p, int64_t dim) {
    residual(p + "0.", dim, dim);
    add(p + "1.norm.gamma", {dim, 1, 1});
    conv2d(p + "1.to_qkv.", dim, dim * 3, 1);
    conv2d(p + "1.proj.", dim, dim, 1);
    residual(p + "2.", dim, dim);
  }
  void head(const std::string& p, int64_t in, int64_t out) {
    add(p + "0.gamma", {in, 1, 1, 1});
    conv3d(p + "2.", in, out, 3, 3);
  }
  void add(std::string name, std::vector<int64_t> shape) {
    specs.push_back({std::move(name), std::move(shape)});
  }
  std::vector<VaeTensorSpec> specs;
};

ShapeMap shapes_of(const std::vector<io::TensorInfo>& infos) {
  ShapeMap shapes;
  for (const auto& info : infos) shapes[info.name] = info.shape;
  return shapes;
}

WanVaeConfig config_from_shapes(const ShapeMap& shapes, const std::string& origin) {
  auto shape = [&](const std::string& key) -> const std::vector<int64_t>& {
    auto it = shapes.find(key);
    if (it == shapes.end())
      throw LoadError(origin + ": not a Wan VAE checkpoint: key '" + key +
                      "' is missing (looked for encoder.conv1.weight, conv2.weight, "
                      "encoder.downsamples.<i>.residual.2.weight / resample.1.weight)");
    return it->second;
  };
  auto has = [&](const std::string& key) { return shapes.count(key) > 0; };

  WanVaeConfig config;
  config.dim = shape("encoder.conv1.weight")[0];
  config.z_dim = shape("conv2.weight")[0];
  config.dim_mult.clear();
  config.temporal_downsample.clear();

  // Walk encoder.downsamples: residual blocks of a stage, then its resample (none after the
  // last stage).
  int64_t blocks_in_stage = 0;
  std::optional<int64_t> res_blocks;
  int64_t stage_out = 0;
  auto close_stage = [&]() {
    if (blocks_in_stage == 0 || (res_blocks && *res_blocks != blocks_in_stage))
      throw LoadError(origin + ": encoder.downsamples has stages with " +
                      std::to_string(blocks_in_stage) +
                      " residual blocks; a Wan VAE has the same count in every stage");
    res_blocks = blocks_in_stage;
    if (stage_out % config.dim != 0)
      throw LoadError(origin + ": encoder stage width " + std::to_string(stage_out) +
                      " is not a multiple of dim " + std::to_string(config.dim));
    config.dim_mult.push_back(stage_out / config.dim);
    blocks_in_stage = 0;
  };
  for (int64_t i = 0;; ++i) {
    const std::string p = "encoder.downsamples." + std::to_string(i) + ".";
    if (has(p + "residual.2.weight")) {
      stage_out = shape(p + "residual.2.weight")[0];
      ++blocks_in_stage;
    } else if (has(p + "resample.1.weight")) {
      close_stage();
      config.temporal_downsample.push_back(has(p + "time_conv.weight"));
    } else if (has(p + "to_qkv.weight")) {
      throw LoadError(origin + ": " + p + "to_qkv.weight: attention inside the encoder stages " +
                      "(attn_scales) is not supported; Wan2.1 uses none");
    } else {
      break;
    }
  }
  close_stage();
  config.num_res_blocks = *res_blocks;
  if (config.dim_mult.size() != 4)
    throw LoadError(origin + ": encoder has " + std::to_string(config.dim_mult.size()) +
                    " stages; the Wan VAE decoder layout needs 4");
  return config;
}

}  // namespace

int64_t VaeTensorSpec::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

WanVaeConfig WanVaeConfig::from_weights(const std::vector<io::TensorInfo>& tensors,
                                        const std::string& origin) {
  return config_from_shapes(shapes_of(tensors), origin);
}

WanVaeConfig WanVaeConfig::from_weights(const io::TensorMap& tensors, const std::string& origin) {
  ShapeMap shapes;
  for (const auto& [name, tensor] : tensors) shapes[name] = tensor.sizes().vec();
  return config_from_shapes(shapes, origin);
}

std::vector<VaeTensorSpec> wan_vae_expected_tensors(const WanVaeConfig& c) {
  SpecWriter w;
  const size_t stages = c.dim_mult.size();
  // encoder
  const auto enc = encoder_dims(c);
  w.conv3d("encoder.conv1.", 3, enc[0], 3, 3);
  int64_t index = 0;
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = enc[i];
    for (int64_t r = 0; r < c.num_res_blocks; ++r, ++index) {
      w.residual("encoder.downsamples." + std::to_string(index) + ".", in, enc[i + 1]);
      in = enc[i + 1];
    }
    if (i + 1 != stages) {
      const std::string p = "encoder.downsamples." + std::to_string(index++) + ".";
      w.conv2d(p + "resample.1.", in, in, 3);
      if (c.temporal_downsample[i]) w.conv3d(p + "time_conv.", in, in, 3, 1);
    }
  }
  w.middle("encoder.middle.", enc.back());
  w.head("encoder.head.", enc.back(), c.z_dim * 2);
  // latent projections
  w.conv3d("conv1.", c.z_dim * 2, c.z_dim * 2, 1, 1);
  w.conv3d("conv2.", c.z_dim, c.z_dim, 1, 1);
  // decoder
  const auto dec = decoder_dims(c);
  w.conv3d("decoder.conv1.", c.z_dim, dec[0], 3, 3);
  w.middle("decoder.middle.", dec[0]);
  index = 0;
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = decoder_stage_in(dec, i);
    for (int64_t r = 0; r < c.num_res_blocks + 1; ++r, ++index) {
      w.residual("decoder.upsamples." + std::to_string(index) + ".", in, dec[i + 1]);
      in = dec[i + 1];
    }
    if (i + 1 != stages) {
      const std::string p = "decoder.upsamples." + std::to_string(index++) + ".";
      w.conv2d(p + "resample.1.", in, in / 2, 3);
      if (c.temporal_downsample[stages - 2 - i]) w.conv3d(p + "time_conv.", in, in * 2, 3, 1);
    }
  }
  w.head("decoder.head.", dec.back(), 3);
  return w.specs;
}

namespace vae {

Encoder3dImpl::Encoder3dImpl(const WanVaeConfig& c) {
  const auto dims = encoder_dims(c);
  const size_t stages = c.dim_mult.size();
  conv1_ = register_module(
      "conv1", CausalConv3d(CausalConv3dOptions(3, dims[0], {3, 3, 3}).padding({1, 1, 1})));
  downsamples_ = register_module("downsamples", CausalStack());
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = dims[i];
    for (int64_t r = 0; r < c.num_res_blocks; ++r) {
      downsamples_->push_back(ResidualBlock(in, dims[i + 1]).ptr());
      in = dims[i + 1];
    }
    if (i + 1 != stages)
      downsamples_->push_back(
          Resample(in, c.temporal_downsample[i] ? ResampleMode::kDownsample3d
                                                : ResampleMode::kDownsample2d)
              .ptr());
  }
  middle_ = register_module("middle", MiddleBlock(dims.back()));
  head_ = register_module("head", OutputHead(dims.back(), c.z_dim * 2));
}

at::Tensor Encoder3dImpl::forward(const at::Tensor& x, FeatureCache& cache) {
  // x: [T, 3, H, W] -> [T', 2 z_dim, H/8, W/8]
  auto h = conv1_->forward(x, cache.next(), cache.keep_history());
  h = downsamples_->forward(std::move(h), cache);
  h = middle_->forward(std::move(h), cache);
  return head_->forward(std::move(h), cache);
}

Decoder3dImpl::Decoder3dImpl(const WanVaeConfig& c) {
  const auto dims = decoder_dims(c);
  const size_t stages = c.dim_mult.size();
  conv1_ = register_module(
      "conv1", CausalConv3d(CausalConv3dOptions(c.z_dim, dims[0], {3, 3, 3}).padding({1, 1, 1})));
  middle_ = register_module("middle", MiddleBlock(dims[0]));
  upsamples_ = register_module("upsamples", CausalStack());
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = decoder_stage_in(dims, i);
    for (int64_t r = 0; r < c.num_res_blocks + 1; ++r) {
      upsamples_->push_back(ResidualBlock(in, dims[i + 1]).ptr());
      in = dims[i + 1];
    }
    // The decoder's temporal upsampling is the encoder's downsampling reversed.
    if (i + 1 != stages)
      upsamples_->push_back(Resample(in, c.temporal_downsample[stages - 2 - i]
                                             ? ResampleMode::kUpsample3d
                                             : ResampleMode::kUpsample2d)
                                .ptr());
  }
  head_ = register_module("head", OutputHead(dims.back(), 3));
}

at::Tensor Decoder3dImpl::forward(const at::Tensor& x, FeatureCache& cache) {
  // x: [T, z_dim, h, w] -> [T', 3, 8h, 8w]
  auto h = conv1_->forward(x, cache.next(), cache.keep_history());
  h = middle_->forward(std::move(h), cache);
  h = upsamples_->forward(std::move(h), cache);
  return head_->forward(std::move(h), cache);
}

}  // namespace vae

WanVaeImpl::WanVaeImpl(const WanVaeConfig& config) : config_(config) {
  using vae::CausalConv3d;
  using vae::CausalConv3dOptions;
  if (config.z_dim != kLatentStatChannels)
    throw ValidationError("WanVae: z_dim " + std::to_string(config.z_dim) +
                          " has no latent statistics; the Wan2.1 VAE has z_dim 16");
  if (config.dim_mult.size() != 4 || config.temporal_downsample.size() != 3)
    throw ValidationError("WanVae: dim_mult needs 4 entries and temporal_downsample 3");
  encoder_ = register_module("encoder", vae::Encoder3d(config));
  conv1_ = register_module("conv1", CausalConv3d(CausalConv3dOptions(config.z_dim * 2,
                                                                     config.z_dim * 2, {1, 1, 1})));
  conv2_ = register_module(
      "conv2", CausalConv3d(CausalConv3dOptions(config.z_dim, config.z_dim, {1, 1, 1})));
  decoder_ = register_module("decoder", vae::Decoder3d(config));
  mean = register_buffer("mean", at::tensor(at::ArrayRef<float>(kLatentMean)));
  // inv_std = 1 / std in float32, as the official scale[1].
  inv_std = register_buffer("inv_std", at::tensor(at::ArrayRef<float>(kLatentStd)).reciprocal());
  for (auto& p : parameters()) p.set_requires_grad(false);
}

at::ScalarType WanVaeImpl::dtype() const { return conv2_->weight.scalar_type(); }

namespace {

// Latent frames per chunk for a clip of `latent_frames`.
int64_t chunk_size(const VaeRunOptions& options, int64_t latent_frames) {
  if (options.latent_frames_per_chunk() > 0) return options.latent_frames_per_chunk();
  return latent_frames <= kVaeWholeClipLatentFrames ? latent_frames : 1;
}

// First video frame of latent frame j: latent 0 is video frame 0, latent j >= 1 covers video
// frames 4j-3 .. 4j.
int64_t video_start(int64_t latent_frame) {
  return latent_frame == 0 ? 0 : kVaeStrideTime * latent_frame - (kVaeStrideTime - 1);
}

// The options of tile `tile` of `tiles`: untiled, with progress counted over all tiles.
VaeRunOptions tile_options(const VaeRunOptions& options, size_t tile, size_t tiles) {
  VaeRunOptions one = options;
  one.tile_size(0).tile_overlap(0);
  if (options.progress()) {
    const auto outer = options.progress();
    const int done_tiles = static_cast<int>(tile), all_tiles = static_cast<int>(tiles);
    one.progress([outer, done_tiles, all_tiles](int done, int total) {
      outer(done_tiles * total + done, all_tiles * total);
    });
  }
  return one;
}

}  // namespace

at::Tensor WanVaeImpl::encode_mu(const at::Tensor& video, const VaeRunOptions& options) {
  if (video.dim() != 4 || video.size(0) != 3)
    throw ValidationError("WanVae.encode: video must be [3, F, H, W], got " +
                          c10::str(video.sizes()));
  const int64_t frames = video.size(1), height = video.size(2), width = video.size(3);
  if (frames < 1 || (frames - 1) % kVaeStrideTime != 0)
    throw ValidationError("WanVae.encode: " + std::to_string(frames) +
                          " frames is not 4k+1; use " +
                          std::to_string((frames - 1) / kVaeStrideTime * kVaeStrideTime + 1) +
                          " or " + std::to_string(((frames - 1) / kVaeStrideTime + 1) * 4 + 1));
  if (height % kVaeStrideSpace != 0 || width % kVaeStrideSpace != 0 || height == 0 || width == 0)
    throw ValidationError("WanVae.encode: size " + std::to_string(width) + "x" +
                          std::to_string(height) + " is not a multiple of 8");
  const auto grid = vae::plan_tiles(height / kVaeStrideSpace, width / kVaeStrideSpace,
                                    options.tile_size(), options.tile_overlap(), "WanVae.encode");
  if (grid.single()) return encode_pass(video, options);
  spdlog::debug("WanVae.encode: {} x {} tiles of {} latent pixels, overlap {}", grid.rows.size(),
                grid.columns.size(), options.tile_size(), options.tile_overlap());
  c10::InferenceMode guard;
  return vae::blend_tiles(video, grid, /*input_scale=*/kVaeStrideSpace, /*output_scale=*/1,
                          [&](const at::Tensor& tile, size_t index) {
                            return encode_pass(tile, tile_options(options, index, grid.count()));
                          });
}

at::Tensor WanVaeImpl::encode_pass(const at::Tensor& video, const VaeRunOptions& options) {
  c10::InferenceMode guard;
  const int64_t frames = video.size(1), height = video.size(2), width = video.size(3);
  const int64_t latent_frames = WanVaeConfig::latent_frames(frames);
  const int64_t chunk = chunk_size(options, latent_frames);
  const auto dtype = this->dtype();
  auto mu = at::empty({config_.z_dim, latent_frames, height / kVaeStrideSpace,
                       width / kVaeStrideSpace},
                      video.options().dtype(at::kFloat));
  vae::FeatureCache cache;
  for (int64_t done = 0; done < latent_frames;) {
    const int64_t n = std::min(chunk, latent_frames - done);
    const int64_t start = video_start(done), end = WanVaeConfig::video_frames(done + n);
    // [3, f, H, W] -> frames [f, 3, H, W]; the encoder never writes into its input.
    auto x = video.narrow(1, start, end - start).permute({1, 0, 2, 3}).to(dtype).contiguous();
    cache.begin_chunk(/*keep_history=*/done + n < latent_frames);
    auto h = encoder_->forward(x, cache);            // [n, 2 z_dim, h, w]
    x.reset();
    h = conv1_->forward(h).narrow(1, 0, config_.z_dim);  // mu half of (mu, log_var)
    mu.narrow(1, done, n).copy_(h.permute({1, 0, 2, 3}));
    done += n;
    if (options.progress()) options.progress()(static_cast<int>(done), static_cast<int>(latent_frames));
  }
  return mu;
}

at::Tensor WanVaeImpl::encode_unscaled(const at::Tensor& video, const VaeRunOptions& options) {
  return encode_mu(video, options);
}

at::Tensor WanVaeImpl::encode(const at::Tensor& video, const VaeRunOptions& options) {
  auto mu = encode_mu(video, options);
  c10::InferenceMode guard;
  const auto stat = [&](const at::Tensor& t) {
    return t.to(mu.device(), at::kFloat).view({config_.z_dim, 1, 1, 1});
  };
  return mu.sub_(stat(mean)).mul_(stat(inv_std));
}

at::Tensor WanVaeImpl::decode(const at::Tensor& latent, const VaeRunOptions& options) {
  if (latent.dim() != 4 || latent.size(0) != config_.z_dim || latent.size(1) < 1)
    throw ValidationError("WanVae.decode: latent must be [" + std::to_string(config_.z_dim) +
                          ", T, h, w], got " + c10::str(latent.sizes()));
  const auto grid = vae::plan_tiles(latent.size(2), latent.size(3), options.tile_size(),
                                    options.tile_overlap(), "WanVae.decode");
  c10::InferenceMode guard;
  if (grid.single()) return decode_pass(latent, options).clamp_(-1, 1);
  spdlog::debug("WanVae.decode: {} x {} tiles of {} latent pixels, overlap {}", grid.rows.size(),
                grid.columns.size(), options.tile_size(), options.tile_overlap());
  // Blended before clamping, as one pass would clamp its frames.
  return vae::blend_tiles(latent, grid, /*input_scale=*/1, /*output_scale=*/kVaeStrideSpace,
                          [&](const at::Tensor& tile, size_t index) {
                            return decode_pass(tile, tile_options(options, index, grid.count()));
                          })
      .clamp_(-1, 1);
}

at::Tensor WanVaeImpl::decode_pass(const at::Tensor& latent, const VaeRunOptions& options) {
  c10::InferenceMode guard;
  const int64_t latent_frames = latent.size(1);
  const int64_t h = latent.size(2), w = latent.size(3);
  const int64_t chunk = chunk_size(options, latent_frames);
  const auto dtype = this->dtype();
  const auto stat = [&](const at::Tensor& t) {
    return t.to(latent.device(), at::kFloat).view({config_.z_dim, 1, 1, 1});
  };
  // z / inv_std + mean in float32, then frames [T, z_dim, h, w] through the 1x1x1 conv2.
  auto z = latent.to(at::kFloat).div(stat(inv_std)).add_(stat(mean));
  auto x = conv2_->forward(z.permute({1, 0, 2, 3}).to(dtype).contiguous());
  z.reset();

  auto video = at::empty({3, WanVaeConfig::video_frames(latent_frames), h * kVaeStrideSpace,
                          w * kVaeStrideSpace},
                         latent.options().dtype(at::kFloat));
  vae::FeatureCache cache;
  for (int64_t done = 0; done < latent_frames;) {
    const int64_t n = std::min(chunk, latent_frames - done);
    cache.begin_chunk(/*keep_history=*/done + n < latent_frames);
    auto frames = decoder_->forward(x.narrow(0, done, n), cache);  // [f, 3, H, W]
    video.narrow(1, video_start(done), frames.size(0)).copy_(frames.permute({1, 0, 2, 3}));
    done += n;
    if (options.progress()) options.progress()(static_cast<int>(done), static_cast<int>(latent_frames));
  }
  return video;
}

WanVae load_wan_vae(const std::string& path, at::ScalarType dtype) {
  auto tensors = io::load_tensors(path);
  const auto config = WanVaeConfig::from_weights(tensors, path);
  WanVae vae(config);
  LoadWeightsOptions options;
  options.optional_keys = {"mean", "inv_std"};
  options.dtype = dtype;
  load_weights(*vae, tensors, path, options);
  vae->eval();
  spdlog::debug("load_wan_vae: {} (dim {}, z_dim {}) {}", path, config.dim, config.z_dim,
               c10::toString(dtype));
  return vae;
}

}  // namespace wan::models
