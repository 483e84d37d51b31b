// Architecture of a Wan2.1 diffusion transformer (WanModel / VaceWanModel) and its detection from
// a checkpoint. Mirrors the constructor arguments of the official wan/modules/model.py and
// wan/modules/vace_model.py, with presets from wan/configs/.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/tensor_map.h"

namespace wan::models {

// The official `model_type`: which conditioning the transformer takes.
enum class WanDitVariant { kT2v, kI2v, kFlf2v, kVace };

// "t2v", "i2v", "flf2v", "vace" (the official spelling).
std::string to_string(WanDitVariant variant);

// Number of CLIP tokens per image (16x16 patches + class token of ViT-H/14 at 224 px).
inline constexpr int64_t kClipTokensPerImage = 257;
// Head width of every released Wan2.1 DiT; the only way to infer num_heads from shapes.
inline constexpr int64_t kOfficialHeadDim = 128;
// RoPE tables of the official code hold 1024 positions per axis.
inline constexpr int64_t kRopeMaxPositions = 1024;

struct WanDitConfig {
  WanDitVariant variant = WanDitVariant::kT2v;
  std::array<int64_t, 3> patch_size{1, 2, 2};  // (t, h, w)
  int64_t text_len = 512;  // T5 tokens after zero-padding inside the model
  int64_t in_dim = 16;     // latent channels (+ y channels for i2v/flf2v)
  int64_t dim = 2048;
  int64_t ffn_dim = 8192;
  int64_t freq_dim = 256;  // sinusoidal time embedding width
  int64_t text_dim = 4096;
  int64_t out_dim = 16;
  int64_t num_heads = 16;
  int64_t num_layers = 32;
  bool qk_norm = true;
  bool cross_attn_norm = true;
  double eps = 1e-6;
  // Width of the CLIP features that img_emb projects (i2v / flf2v). The official code fixes 1280.
  int64_t img_dim = 1280;
  // VACE: main blocks after which a hint is added (first must be 0), and vace_context channels.
  std::vector<int64_t> vace_layers;
  int64_t vace_in_dim = 96;

  int64_t head_dim() const { return dim / num_heads; }
  bool has_image_input() const {
    return variant == WanDitVariant::kI2v || variant == WanDitVariant::kFlf2v;
  }
  // Image tokens prepended to the text context: 257 (i2v), 514 (flf2v), else 0.
  int64_t image_tokens() const;

  // Official presets (wan/configs/*.py; VACE layer lists from the released config.json files).
  static WanDitConfig t2v_1_3b();
  static WanDitConfig t2v_14b();
  static WanDitConfig i2v_14b();
  static WanDitConfig flf2v_14b();
  static WanDitConfig vace_1_3b();
  static WanDitConfig vace_14b();
  // By name: "t2v_1_3b", "t2v_14b", "i2v_14b", "flf2v_14b", "vace_1_3b", "vace_14b".
  static WanDitConfig preset(const std::string& name);

  // Detects the variant and sizes from tensor names/shapes. What shapes cannot tell (num_heads,
  // text_len, eps, explicit vace_layers) comes from, in order: the safetensors metadata "config"
  // (JSON text), a config.json beside the weight file, `<stem>_config.json`, official defaults.
  // Keys may carry ComfyUI's "model.diffusion_model." prefix. Throws LoadError naming the keys
  // looked for when the tensors are not a Wan DiT.
  static WanDitConfig from_weights(const std::vector<io::TensorInfo>& infos,
                                   const std::map<std::string, std::string>& metadata);
  // Convenience: reads the header and metadata of `path` and calls from_weights.
  static WanDitConfig from_file(const std::string& path);

  // Throws ValidationError when the sizes cannot form a model (dim % heads, odd head_dim, ...).
  void validate() const;
};

// Every parameter the model holds for `config`, with its checkpoint name and shape (dtype "F32"),
// in a stable order; allocates nothing.
std::vector<io::TensorInfo> wan_dit_expected_tensors(const WanDitConfig& config);
// Sum of the numel of wan_dit_expected_tensors(config).
int64_t wan_dit_parameter_count(const WanDitConfig& config);

// ComfyUI stores the DiT under this prefix; it is stripped before matching keys.
inline constexpr const char* kComfyDitPrefix = "model.diffusion_model.";

}  // namespace wan::models
