#include "plan/memory_plan.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <torch/cuda.h>

#include "core/error.h"
#include "device/placement.h"
#include "graph/validator.h"
#include "graph/workflow_json.h"
#include "io/tensor_index.h"
#include "models/clip/clip_key_layout.h"
#include "models/clip/clip_vision.h"
#include "models/common/attention.h"
#include "models/common/weights.h"
#include "models/dit/wan_dit.h"
#include "models/common/model_config.h"
#include "models/dit/wan_dit_config.h"
#include "models/t5/t5_key_layout.h"
#include "models/t5/t5_tokenizer.h"
#include "models/t5/umt5_encoder.h"
#include "models/vae/wan_vae.h"
#include "plan/vae_tile_plan.h"

namespace wan::plan {
namespace {

using nlohmann::json;

// The attention score budget of models/common/attention.cpp (query_chunk = 0).
constexpr int64_t kAttentionBudget = int64_t{256} << 20;
// Calibration of the VAE decoder (docs/vae.md): a whole-clip decode of [16, 2, 60, 104] into
// 5 frames of 480x832 (float32, 96 channels at full resolution) peaked at 2.01 GiB of
// activations, i.e. this many tensors of 96 x 5 x 480 x 832 float32.
constexpr double kVaeActivationFactor = 2.01 * 1073741824.0 / (96.0 * 5 * 480 * 832 * 4);

int64_t dtype_bytes(const std::string& dtype) {
  if (dtype == "fp32") return 4;
  if (dtype == "bf16" || dtype == "fp16") return 2;
  throw ValidationError("memory plan: unknown dtype '" + dtype + "'");
}

enum class ModelKind { kT5, kVae, kDit, kClip };

struct ModelPlan {
  ModelKind kind;
  std::string name;
  device::Placement placement = device::Placement::kOffload;
  std::vector<std::pair<std::string, int64_t>> tensors;  // in the order the manager moves them
  int64_t bytes = 0;
  // Bytes the weights hold in counted CPU memory once loaded: tensors read from a mapped file in
  // the dtype they are kept in stay views of the page cache (docs/memory.md "Not counted"); only
  // converted ones (fp8 -> bf16, fp32 -> bf16, ...) are allocations.
  int64_t cpu_bytes = 0;
  bool on_device = false;
  // T5
  int64_t t5_dim = 0, t5_dim_attn = 0, t5_ffn = 0, t5_heads = 0, text_len = 512;
  std::string tokenizer;
  // VAE
  models::WanVaeConfig vae;
  int64_t act_bytes = 4;  // activation element size (VAE, CLIP: the weight dtype)
  // DiT
  models::WanDitConfig dit;
  int64_t compute_bytes = 2;
  // `stream`: the bytes of the blocks (which visit the device one at a time, the next brought
  // in ahead) in all, and of the largest one; the rest moves in for the lease like `offload`.
  int64_t block_bytes = 0, largest_block_bytes = 0, blocks = 0;
  // The largest weight a layer casts to the compute dtype for one call (kept in another dtype:
  // fp8 in a bf16 T5, an fp16 DiT computing in bf16), alive while that layer computes.
  int64_t upcast_bytes = 0;
  // CLIP
  int64_t clip_width = 1280, clip_mlp = 5120, clip_heads = 16, clip_layers = 31;
};

struct Shape {
  int64_t width = 0, height = 0, frames = 0;
  int64_t latent_frames() const { return (frames - 1) / 4 + 1; }
};

// What flows on a node's outputs, as far as memory is concerned.
struct Output {
  std::shared_ptr<ModelPlan> model;
  int64_t device_bytes = 0;  // held on the compute device while cached
  int64_t cpu_bytes = 0;
  int64_t tokens = 0, dim = 0;  // WAN_TEXT
  Shape shape;                  // WAN_COND / WAN_LATENT / IMAGE
  std::string cond_kind;        // "i2v", "flf2v", "vace"
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "t2v-1.3B" -> "t2v_1_3b" (WanDitConfig::preset names).
std::string dit_preset_name(const std::string& preset) {
  std::string out = lower(preset);
  for (auto& c : out)
    if (c == '-' || c == '.') c = '_';
  return out;
}

void add_infos(ModelPlan& model, const std::vector<io::TensorInfo>& infos) {
  for (const auto& info : infos) {
    const int64_t b = info.nbytes();
    model.tensors.emplace_back(info.name, b);
    model.bytes += b;
  }
}

// Converted bytes of `model` given the file's stored dtypes (keys may carry `prefix`).
void count_converted(ModelPlan& model, const std::vector<io::TensorInfo>& file,
                     const std::string& prefix = "") {
  std::map<std::string, std::pair<std::string, int64_t>> stored;  // key -> dtype, numel
  for (const auto& info : file) {
    std::string key = info.name;
    if (!prefix.empty() && key.rfind(prefix, 0) == 0) key = key.substr(prefix.size());
    stored[key] = {info.dtype, info.numel()};
  }
  model.cpu_bytes = 0;
  for (const auto& [key, bytes] : model.tensors) {
    auto it = stored.find(key);
    if (it == stored.end() || it->second.second == 0 ||
        bytes != it->second.second * io::dtype_size(it->second.first))
      model.cpu_bytes += bytes;
  }
}

// Header records by key.
std::map<std::string, io::TensorInfo> by_name(const std::vector<io::TensorInfo>& infos,
                                              const std::string& prefix = "") {
  std::map<std::string, io::TensorInfo> out;
  for (auto info : infos) {
    if (!prefix.empty() && info.name.rfind(prefix, 0) == 0) info.name = info.name.substr(prefix.size());
    out[info.name] = info;
  }
  return out;
}

std::vector<io::TensorInfo> values_of(const std::map<std::string, io::TensorInfo>& infos) {
  std::vector<io::TensorInfo> out;
  for (const auto& [key, info] : infos) out.push_back(info);
  return out;
}

// The largest of `kept` that a layer casts whole to `compute` per call (`cast` picks them).
int64_t largest_upcast(const std::vector<io::TensorInfo>& kept, at::ScalarType compute,
                       const std::function<bool(const io::TensorInfo&)>& cast) {
  const std::string compute_name = io::scalar_type_to_dtype(compute);
  int64_t largest = 0;
  for (const auto& info : kept)
    if (info.dtype != compute_name && cast(info))
      largest = std::max(largest, info.numel() * static_cast<int64_t>(c10::elementSize(compute)));
  return largest;
}

// "blocks.3.ffn.0.weight" -> "blocks.3" (also "vace_blocks.N"); empty for the tensors outside the
// blocks, which `stream` moves in with the lease.
std::string block_of(const std::string& key) {
  for (const std::string list : {"blocks.", "vace_blocks."}) {
    if (key.rfind(list, 0) != 0) continue;
    const auto dot = key.find('.', list.size());
    return dot == std::string::npos ? "" : key.substr(0, dot);
  }
  return "";
}

int64_t text_len_beside(const std::filesystem::path& path, int64_t fallback) {
  return models::text_len_beside(path, fallback);
}

struct Planner {
  const json& prompt;
  const graph::NodeRegistry& registry;
  const PlanOptions& options;

  bool accelerator = false;
  std::string device_name = "cpu";
  int64_t capacity = -1;

  int64_t dev_held = 0, cpu_held = 0;
  int64_t dev_peak = 0, cpu_peak = 0;
  std::string peak_part;
  PlannedNode* current = nullptr;
  std::string label;
  std::map<std::string, std::vector<Output>> outputs;  // node id -> outputs
  std::vector<std::shared_ptr<ModelPlan>> models;
  std::set<std::string> model_names;
  std::optional<std::string> oom;

  void note(int64_t dev_extra, int64_t cpu_extra, const std::string& what) {
    if (dev_held + dev_extra > dev_peak) {
      dev_peak = dev_held + dev_extra;
      peak_part = what;
    }
    cpu_peak = std::max(cpu_peak, cpu_held + cpu_extra);
  }

  std::filesystem::path model_file(const std::string& folder, const std::string& name) const {
    return options.models_dir / folder / name;
  }

  // --- loaders ---------------------------------------------------------------------------

  std::string unique_name(const std::string& base) {
    std::string name = base;
    for (int n = 2; model_names.count(name); ++n) name = base + "#" + std::to_string(n);
    model_names.insert(name);
    return name;
  }

  std::shared_ptr<ModelPlan> load_t5(const graph::Values& in) {
    auto m = std::make_shared<ModelPlan>();
    m->kind = ModelKind::kT5;
    const std::string dtype = in.string("dtype");
    const auto st = dtype == "fp32" ? at::kFloat : dtype == "bf16" ? at::kBFloat16 : at::kHalf;
    // UMT5-XXL's sizes unless the file says otherwise.
    models::Umt5Config config = models::Umt5Config::umt5_xxl();
    // As the loader: fp8 stays fp8, the rest is kept in the node's dtype.
    models::LoadWeightsOptions rule;
    rule.dtype = st;
    rule.keep_narrower = true;
    std::vector<io::TensorInfo> kept;
    if (options.preset.empty()) {
      const auto path = model_file("text_encoders", in.string("model_name"));
      const auto infos = io::read_tensor_infos(path.string());
      m->text_len = text_len_beside(path, 512);
      const auto& tok = in.string("tokenizer");
      if (tok != "from_checkpoint") m->tokenizer = model_file("tokenizers", tok).string();
      // Shape-only tensors on the meta device go through the loader's own renaming.
      io::TensorMap meta;
      for (const auto& info : infos)
        meta[info.name] = at::empty(info.shape, at::TensorOptions().device(at::kMeta).dtype(
                                                    io::dtype_to_scalar_type(info.dtype)));
      if (models::is_hf_t5_layout(meta)) meta = models::hf_t5_to_official(std::move(meta));
      std::map<std::string, io::TensorInfo> stored;
      for (const auto& [key, t] : meta)
        stored[key] = io::TensorInfo{key, io::scalar_type_to_dtype(t.scalar_type()), t.sizes().vec(), ""};
      try {
        config = models::Umt5Config::from_tensors(meta, path.string());
        kept = models::kept_tensors(models::umt5_expected_tensors(config, st), stored, rule);
        add_infos(*m, kept);
        count_converted(*m, values_of(stored));
      } catch (const LoadError& e) {
        // Another key layout: its bytes in the loader's dtype, without the tokenizer tensor.
        spdlog::warn("memory plan: {}; counting {}'s header bytes", e.what(), path.string());
        for (const auto& info : infos) {
          if (info.name == "spiece_model") continue;
          m->tensors.emplace_back(info.name, info.numel() * dtype_bytes(dtype));
          m->bytes += m->tensors.back().second;
        }
        m->cpu_bytes = m->bytes;
      }
    } else {
      // The file the workflow names, as published: ComfyUI's umt5_xxl_fp8_e4m3fn_scaled
      // (linear weights fp8, each with a float32 scale, embeddings and norms bf16: 6.7 GB, kept
      // as stored), or the official models_t5_umt5-xxl-enc-bf16.pth of Wan's generate.py
      // (everything bf16: 11.4 GB).
      const bool fp8_file = lower(in.string("model_name")).find("fp8") != std::string::npos;
      std::map<std::string, io::TensorInfo> stored;
      for (auto info : models::umt5_expected_tensors(config, st)) {
        const bool linear = fp8_file && info.shape.size() == 2 &&
                            info.name.find("embedding") == std::string::npos;
        info.dtype = linear ? "F8_E4M3" : "BF16";
        if (linear) {
          const auto layer = info.name.substr(0, info.name.size() - std::string("weight").size());
          stored[layer + "scale_weight"] = io::TensorInfo{layer + "scale_weight", "F32", {}, ""};
        }
        stored[info.name] = info;
      }
      kept = models::kept_tensors(models::umt5_expected_tensors(config, st), stored, rule);
      add_infos(*m, kept);
      count_converted(*m, values_of(stored));
    }
    // The linear layers cast whole weights; the embeddings are looked up row by row.
    m->upcast_bytes = largest_upcast(kept, st, [](const io::TensorInfo& info) {
      return info.shape.size() == 2 && info.name.find("embedding") == std::string::npos;
    });
    m->t5_dim = config.dim();
    m->t5_dim_attn = config.dim_attn();
    m->t5_ffn = config.dim_ffn();
    m->t5_heads = config.num_heads();
    m->act_bytes = 4;
    m->name = unique_name("t5");
    return m;
  }

  std::shared_ptr<ModelPlan> load_vae(const graph::Values& in) {
    auto m = std::make_shared<ModelPlan>();
    m->kind = ModelKind::kVae;
    const std::string dtype = in.string("dtype");
    if (options.preset.empty()) {
      const auto path = model_file("vae", in.string("model_name")).string();
      m->vae = models::WanVaeConfig::from_weights(io::read_tensor_infos(path), path);
    } else {
      m->vae = models::WanVaeConfig::official();
    }
    const int64_t b = dtype_bytes(dtype);
    for (const auto& spec : models::wan_vae_expected_tensors(m->vae)) {
      m->tensors.emplace_back(spec.name, spec.numel() * b);
      m->bytes += spec.numel() * b;
    }
    // The latent normalisation buffers `mean` and `inv_std`: z_dim float32 each, moved last.
    for (const char* buffer : {"mean", "inv_std"}) {
      m->tensors.emplace_back(buffer, m->vae.z_dim * 4);
      m->bytes += m->vae.z_dim * 4;
    }
    // ComfyUI's wan_2.1_vae.safetensors is float32.
    if (options.preset.empty())
      count_converted(*m, io::read_tensor_infos(model_file("vae", in.string("model_name")).string()));
    else
      m->cpu_bytes = b == 4 ? 2 * m->vae.z_dim * 4 : m->bytes;
    m->act_bytes = b;
    m->name = unique_name("vae");
    return m;
  }

  std::shared_ptr<ModelPlan> load_dit(const graph::Values& in) {
    auto m = std::make_shared<ModelPlan>();
    m->kind = ModelKind::kDit;
    const std::string weight = in.string("weight_dtype");
    std::map<std::string, io::TensorInfo> stored;
    if (!options.preset.empty()) {
      m->dit = models::WanDitConfig::preset(dit_preset_name(options.preset));
      // The checkpoints users load with these workflows: ComfyUI's repackaged fp16 files.
      for (auto info : models::wan_dit_expected_tensors(m->dit)) {
        info.dtype = "F16";
        stored[info.name] = info;
      }
    } else {
      const auto path = model_file("diffusion_models", in.string("model_name")).string();
      m->dit = models::WanDitConfig::from_file(path);
      stored = by_name(io::read_tensor_infos(path), models::kComfyDitPrefix);
    }
    // As LoadDiT: as_stored keeps each tensor as the file stores it (fp8 with its scale).
    const std::optional<at::ScalarType> weight_dtype =
        weight == "as_stored" ? std::nullopt
                              : std::optional<at::ScalarType>(weight == "fp32"   ? at::kFloat
                                                              : weight == "bf16" ? at::kBFloat16
                                                                                 : at::kHalf);
    models::LoadWeightsOptions rule;
    rule.dtype_of = [&](const std::string& key, at::ScalarType type) {
      return models::dit_kept_dtype(key, type, weight_dtype);
    };
    const auto kept = models::kept_tensors(models::wan_dit_expected_tensors(m->dit), stored, rule);
    add_infos(*m, kept);
    std::map<std::string, int64_t> per_block;
    for (const auto& info : kept)
      if (const auto block = block_of(info.name); !block.empty()) per_block[block] += info.nbytes();
    for (const auto& [block, bytes] : per_block) {
      m->block_bytes += bytes;
      m->largest_block_bytes = std::max(m->largest_block_bytes, bytes);
    }
    m->blocks = static_cast<int64_t>(per_block.size());
    count_converted(*m, values_of(stored));
    const std::string compute = in.string("compute_dtype");
    // Every matrix and convolution kernel outside the float32 parts is cast per call.
    m->upcast_bytes = largest_upcast(
        kept, compute == "fp32" ? at::kFloat : compute == "bf16" ? at::kBFloat16 : at::kHalf,
        [](const io::TensorInfo& info) {
          return info.shape.size() >= 2 && !models::dit_keeps_float32(info.name);
        });
    m->compute_bytes = dtype_bytes(in.string("compute_dtype"));
    m->name = unique_name("dit");
    return m;
  }

  std::shared_ptr<ModelPlan> load_clip(const graph::Values& in) {
    auto m = std::make_shared<ModelPlan>();
    m->kind = ModelKind::kClip;
    const std::string dtype = in.string("dtype");
    const auto st = dtype == "fp32" ? at::kFloat : dtype == "bf16" ? at::kBFloat16 : at::kHalf;
    auto config = models::ClipVisionConfig::vit_huge_14();
    if (options.preset.empty()) {
      const auto path = model_file("clip_vision", in.string("model_name"));
      // Shape-only tensors on the meta device let the loader's own detection run on the header.
      io::TensorMap meta;
      for (const auto& info : io::read_tensor_infos(path.string()))
        meta[info.name] = at::empty(info.shape, at::TensorOptions().device(at::kMeta));
      const auto cfg = path.parent_path() / (path.stem().string() + "_config.json");
      std::string config_json;
      if (auto sidecar = models::ModelConfig::read(cfg)) config_json = sidecar->json().dump();
      config = models::ClipVisionConfig::from_weights(
          models::to_official_clip_layout(meta, path.string()), path.string(), config_json);
    }
    add_infos(*m, models::clip_vision_expected_tensors(config, false, st));
    m->clip_width = config.width();
    m->clip_mlp = config.mlp_width();
    m->clip_heads = config.heads();
    m->clip_layers = config.layers() - config.skip_last_layers();
    m->cpu_bytes = m->bytes;  // renamed from the Hugging Face layout: counted conservatively
    m->act_bytes = dtype_bytes(dtype);
    m->name = unique_name("clip_vision");
    return m;
  }

  // Registers a loaded model: its weights are read into CPU memory; `gpu` moves them in now.
  void adopt(const std::shared_ptr<ModelPlan>& m, const std::string& placement) {
    m->placement = device::parse_placement(placement);
    models.push_back(m);
    // Loading reads each tensor (a transient copy of the whole model at most).
    note(0, m->bytes, "");
    cpu_held += m->cpu_bytes;
    if (m->placement == device::Placement::kGpu && accelerator) {
      move_in(*m);
      if (oom) return;
      cpu_held -= m->cpu_bytes;  // the CPU tensors are dropped once moved
    }
  }

  // --- moves and leases --------------------------------------------------------------------

  std::string oom_message_move(const ModelPlan& m, const std::string& key, int64_t asked) const {
    const std::string hint =
        m.placement == device::Placement::kGpu
            ? "try placement=offload for " + m.name + ", or a larger --vram"
            : "try placement=cpu for " + m.name + ", a smaller weight dtype, or a larger --vram";
    return label + ": " + device_name + " out of memory moving " + m.name + " tensor '" + key +
           "' (" + format_bytes(asked) + " asked, " + format_bytes(capacity - dev_held) +
           " free of " + format_bytes(capacity) + "); the move was undone and " + m.name +
           " stays in CPU memory; " + hint;
  }

  bool streams(const ModelPlan& m) const { return m.placement == device::Placement::kStream; }

  void move_in(ModelPlan& m) {
    int64_t moved = 0;
    for (const auto& [key, bytes] : m.tensors) {
      if (streams(m) && !block_of(key).empty()) continue;  // visits the device with its block
      if (capacity >= 0 && dev_held + bytes > capacity) {
        oom = oom_message_move(m, key, bytes);
        note(0, 0, "");
        dev_held -= moved;  // rolled back
        return;
      }
      dev_held += bytes;
      moved += bytes;
      note(0, 0, m.name + " weights");
    }
    m.on_device = true;
    current->bytes_in += moved;
  }

  bool computes_on_device(const ModelPlan& m) const {
    return accelerator && m.placement != device::Placement::kCpu;
  }

  // Weights in (offload), `act` bytes of activations while it computes, weights out.
  // `passes`: forward calls during the lease (a streamed model's blocks visit once per call).
  // Returns false on an out-of-memory.
  bool lease(ModelPlan& m, int64_t act, const std::string& what, int64_t inputs_on_device = 0,
             int64_t passes = 1) {
    if (computes_on_device(m) && !m.on_device) {
      move_in(m);
      if (oom) return false;
    }
    const bool on_dev = computes_on_device(m);
    if (on_dev && streams(m)) {
      // The visited block and the one brought in ahead of it (taken as the largest).
      act += std::min<int64_t>(2, m.blocks) * m.largest_block_bytes;
      current->bytes_in += passes * m.block_bytes;
      current->bytes_out += passes * m.block_bytes;
    }
    if (on_dev) {
      if (capacity >= 0 && dev_held + inputs_on_device + act > capacity) {
        oom = label + ": " + device_name + " out of memory: tried to allocate " +
              format_bytes(dev_held + inputs_on_device + act - capacity) + " more than free for " +
              what + " (estimated " + format_bytes(inputs_on_device + act) + " of activations; " +
              format_bytes(std::max<int64_t>(0, capacity - dev_held)) + " free of " +
              format_bytes(capacity) + "); try placement=cpu for " + m.name +
              ", a smaller size, or a larger --vram";
        note(inputs_on_device + act, 0, m.name + " weights + " + what);
        return false;
      }
      note(inputs_on_device + act, 0, m.name + " weights + " + what);
    } else {
      note(inputs_on_device, act, "");
    }
    if ((m.placement == device::Placement::kOffload || streams(m)) && m.on_device) {
      const int64_t resident = streams(m) ? m.bytes - m.block_bytes : m.bytes;
      dev_held -= resident;
      current->bytes_out += resident;
      m.on_device = false;
    }
    return true;
  }

  // --- activation estimates (docs/memory_plan.md) ----------------------------------------

  int64_t t5_tokens(const ModelPlan& m, const std::string& text) const {
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
    // No tokenizer at hand: the most the encoder reads.
    return m.text_len;
  }

  static bool sdpa_attention() {
    return models::default_attention_backend() == models::AttentionBackend::kSdpa;
  }

  static int64_t t5_activations(const ModelPlan& m, int64_t l) {
    const int64_t d = m.t5_dim, a = m.t5_dim_attn, f = m.t5_ffn, h = m.t5_heads;
    // Residual stream and the normed input (float32), then the larger of the attention phase
    // (q, k, v, output; position bias, scores and softmax [h, L, L]) and the gated FFN: the
    // reduced-precision gate and up projections with their float32 copies, the tanh-GELU's
    // composite temporaries and the product, 36 bytes per [L, ffn] element at the peak
    // (measured on the budgeted test model, docs/memory_plan.md).
    const int64_t attn = 4 * (4 * l * a + 3 * h * l * l);
    const int64_t ffn = 36 * l * f;
    return 4 * 2 * l * d + std::max(attn, ffn);
  }

  static int64_t dit_tokens(const models::WanDitConfig& c, const Shape& s) {
    return s.latent_frames() / c.patch_size[0] * (s.height / 8 / c.patch_size[1]) *
           (s.width / 8 / c.patch_size[2]);
  }

  static int64_t dit_activations(const ModelPlan& m, const Shape& s) {
    const auto& c = m.dit;
    const int64_t S = dit_tokens(c, s), D = c.dim, F = c.ffn_dim, cb = m.compute_bytes;
    const int64_t lc = c.text_len + c.image_tokens();
    const int64_t latent = 16 * s.latent_frames() * (s.height / 8) * (s.width / 8) * 4;
    // The chunked backend holds a [heads, chunk, S] score buffer and its softmax; SDPA's fused
    // kernel works in small tiles and holds no such buffer.
    const int64_t chunk = models::attention_query_chunk(1, c.num_heads, S, S, kAttentionBudget);
    const int64_t scores = sdpa_attention() ? 0 : c.num_heads * chunk * S * 4 * 2;
    // Self-attention: normed + modulated input (float32), q and k after RMSNorm (float32) with
    // one norm temporary, v and the rotated q, k, the attention output and o in compute dtype.
    const int64_t attn = S * D * (4 * 4 + 6 * cb) + scores;
    // FFN: normed/modulated input, fc1 output and its GELU, fc2 output.
    const int64_t ffn = S * D * (2 * 4 + 2 * cb) + 2 * S * F * cb;
    // Around the blocks: the float32 residual stream, the projected context (float32) and the
    // cross-attention keys/values; the sampler's latents (state, noise, both predictions,
    // solver history: 6 latents).
    int64_t outside = S * D * 4 + lc * D * 4 + 2 * lc * D * cb + 6 * latent;
    // VACE: every hint is held from the VACE blocks to the main block that adds it.
    outside += static_cast<int64_t>(c.vace_layers.size()) * S * D * 4;
    // The computing layer's weight cast to the compute dtype, when kept in another.
    return outside + std::max(attn, ffn) + m.upcast_bytes;
  }

  static int64_t clip_activations(const ModelPlan& m) {
    const int64_t l = models::kClipTokensPerImage, w = m.clip_width, b = m.act_bytes;
    // Residual, normed input, q/k/v and output, scores + softmax (float32), MLP hidden + GELU.
    const int64_t scores = sdpa_attention() ? 0 : m.clip_heads * l * l * 4 * 2;
    return l * w * b * 6 + scores + 2 * l * m.clip_mlp * b + 3 * 224 * 224 * 4;
  }

  // Bytes the causal caches hold in chunked mode: 2 frames per causal conv input.
  static int64_t vae_cache_bytes(const models::WanVaeConfig& c, int64_t h, int64_t w, int64_t b) {
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

  // --- nodes -------------------------------------------------------------------------------

  std::vector<Output> run_node(const std::string& id, const std::string& class_type,
                               const graph::Values& in, const json& inputs) {
    auto link = [&](const std::string& input) -> const Output* {
      auto it = inputs.find(input);
      std::string up;
      int64_t index;
      if (it == inputs.end() || !graph::parse_link(*it, &up, &index)) return nullptr;
      return &outputs.at(up).at(static_cast<size_t>(index));
    };
    auto shape_of = [&](const graph::Values& v) {
      return Shape{v.integer("width"), v.integer("height"), v.integer("frames")};
    };
    Output out;

    if (class_type == "LoadT5" || class_type == "LoadVAE" || class_type == "LoadDiT" ||
        class_type == "LoadCLIPVision") {
      out.model = class_type == "LoadT5"    ? load_t5(in)
                  : class_type == "LoadVAE" ? load_vae(in)
                  : class_type == "LoadDiT" ? load_dit(in)
                                            : load_clip(in);
      adopt(out.model, in.string("placement"));
      return {out};
    }
    if (class_type == "EncodePrompt") {
      auto& t5 = *link("t5")->model;
      const int64_t l = options.preset.empty() ? t5_tokens(t5, in.string("text")) : t5.text_len;
      const int64_t emb = l * t5.t5_dim * 4;
      if (!lease(t5, t5_activations(t5, l) + t5.upcast_bytes,
                 "T5 activations at " + std::to_string(l) + " tokens"))
        return {};
      // The embeddings stay on the compute device (a CPU T5's output moves over).
      out.device_bytes = accelerator ? emb : 0;
      out.cpu_bytes = accelerator ? 0 : emb;
      dev_held += out.device_bytes;
      cpu_held += out.cpu_bytes;
      note(0, 0, "");
      out.tokens = l, out.dim = t5.t5_dim;
      return {out};
    }
    if (class_type == "ImageToVideo" || class_type == "FirstLastFrameToVideo" ||
        class_type == "VaceToVideo") {
      const Shape s = shape_of(in);
      const bool vace = class_type == "VaceToVideo";
      // FLF2V encodes its two frames with CLIP as one batch.
      const int64_t images = class_type == "FirstLastFrameToVideo" ? 2 : 1;
      int64_t clip_width = 0;
      if (!vace) {
        auto& clip = *link("clip_vision")->model;
        clip_width = clip.clip_width;
        if (!lease(clip, images * clip_activations(clip),
                   "CLIP activations at " + std::to_string(images) + " x 257 tokens"))
          return {};
      }
      auto& vae = *link("vae")->model;
      // Encoding: the video moved in, then the encoder's activations per chunk (calibrated like
      // the decoder), with causal caches when the clip is encoded in chunks.
      const int64_t video = 3 * s.frames * s.height * s.width * 4;
      const int64_t c0 = vae.vae.dim * vae.vae.dim_mult[0];
      const bool whole = s.latent_frames() <= models::kVaeWholeClipLatentFrames;
      const int64_t chunk_frames = whole ? s.frames : 4;
      // With tile_size (pixels; unknown when linked: planned untiled) the encoder runs on one
      // tile at a time, blending into a float32 latent (vae_tile_plan.h).
      const auto tile = vae_tile_pixels(
          s.height, s.width, in.has("tile_size") ? in.integer("tile_size") / 8 : 0);
      int64_t act = static_cast<int64_t>(kVaeActivationFactor * c0 * chunk_frames * tile.height *
                                         tile.width * vae.act_bytes);
      if (!whole) act += vae_cache_bytes(vae.vae, tile.height, tile.width, vae.act_bytes);
      const int64_t latent = 16 * s.latent_frames() * (s.height / 8) * (s.width / 8) * 4;
      if (tile.tiled)
        act += latent + (s.height / 8) * (s.width / 8) * 4 + vae_tile_call_bytes(c0, vae.act_bytes);
      // VACE encodes the inactive and the reactive part of the control video, one after the
      // other; the first result is held meanwhile.
      if (!lease(vae, act + (vace ? latent : 0), "VAE encode activations", video)) return {};
      out.shape = s;
      out.cond_kind = vace ? "vace" : class_type == "ImageToVideo" ? "i2v" : "flf2v";
      // On the CPU, float32: y (4 mask + 16 latent channels) and the CLIP features
      // [images, 257, width]; or the VACE context: 96 channels
      // (inactive and reactive latents, 64 mask channels) over the latent frames plus one frame
      // per reference image.
      int64_t references = 0;
      for (const char* name : {"reference_image", "reference_image_2", "reference_image_3"})
        references += link(name) ? 1 : 0;
      const int64_t latent_frame = latent / s.latent_frames();
      out.cpu_bytes = vace ? 96 * (latent + references * latent_frame) / 16
                           : 20 * latent / 16 + images * models::kClipTokensPerImage * clip_width * 4;
      cpu_held += out.cpu_bytes;
      note(0, 0, "");
      return {out};
    }
    if (class_type == "Sample") {
      auto& dit = *link("dit")->model;
      const Output* cond = link("cond");
      const Shape s = cond ? cond->shape : shape_of(in);
      const int64_t cond_on_device = cond && computes_on_device(dit) ? cond->cpu_bytes : 0;
      const int64_t latent = 16 * s.latent_frames() * (s.height / 8) * (s.width / 8) * 4;
      // One DiT call per step, two with classifier-free guidance (cfg 1 skips the negative).
      const int64_t passes = in.integer("steps") * (in.number("cfg") == 1.0 ? 1 : 2);
      if (!lease(dit, dit_activations(dit, s),
                 "DiT activations at " + std::to_string(dit_tokens(dit.dit, s)) + " tokens",
                 cond_on_device, passes))
        return {};
      out.shape = s;
      out.cpu_bytes = latent;
      cpu_held += latent;
      note(0, 0, "");
      return {out};
    }
    if (class_type == "Decode") {
      auto& vae = *link("vae")->model;
      const Output* latent = link("latent");
      const Shape s = latent->shape;
      // Decode's tile_size is in pixels (nodes/vae_tiling_inputs.h); 0 = untiled. A tile_size
      // fed by a link is unknown here: planned untiled, the upper bound.
      const int64_t tile = in.has("tile_size") ? in.integer("tile_size") / models::kVaeStrideSpace : 0;
      const int64_t act = vae_tiled_decode_activation_bytes(
          s.latent_frames(), s.height, s.width, tile, vae.vae.dim * vae.vae.dim_mult[0],
          vae.act_bytes);
      if (!lease(vae, act, "VAE decode activations", latent->cpu_bytes)) return {};
      out.shape = s;
      const int64_t image = s.frames * s.height * s.width * 3 * 4;  // IMAGE [F, H, W, 3] float32
      // The IMAGE is made in CPU memory after the lease ends: [3, F, H, W] copied out, then permuted.
      out.cpu_bytes = image;
      note(0, 2 * image, "");
      cpu_held += image;
      return {out};
    }
    // Everything else (image loading, saving) is CPU-side and small next to the models.
    std::vector<Output> outs(registry.schema(class_type).outputs().size());
    (void)id;
    return outs;
  }

  // The executor's order: each output's ancestors, depth first, inputs in schema order.
  std::vector<std::string> execution_order(const std::vector<std::string>& outs) const {
    std::vector<std::string> order;
    std::set<std::string> done;
    std::function<void(const std::string&)> visit = [&](const std::string& id) {
      if (!done.insert(id).second) return;
      const auto& schema = registry.schema(prompt[id]["class_type"].get<std::string>());
      const json& inputs = prompt[id].value("inputs", json::object());
      for (const graph::Input* input : schema.ordered_inputs()) {
        std::string up;
        int64_t index;
        auto it = inputs.find(input->id());
        if (it != inputs.end() && graph::parse_link(*it, &up, &index)) visit(up);
      }
      order.push_back(id);
    };
    for (const auto& o : outs) visit(o);
    return order;
  }
};

std::string pad(std::string s, size_t n) {
  if (s.size() < n) s.append(n - s.size(), ' ');
  return s;
}

// With a preset the weights need not be present: a prompt whose only problems are model files
// missing from the models folder is planned from the official shapes.
bool only_missing_model_files(const graph::ValidationResult& validation) {
  if (!validation.node_errors.is_object() || validation.node_errors.empty()) return false;
  for (const auto& [id, node] : validation.node_errors.items()) {
    for (const auto& error : node.value("errors", json::array())) {
      const std::string input =
          error.contains("extra_info") ? error["extra_info"].value("input_name", "") : "";
      // Not listed in the combo, or refused by the model-file rule (the folder does not exist).
      // With a preset nothing is read, so missing model and input files are no obstacle.
      const std::string type = error.value("type", "");
      const bool path_rule = type == "custom_validation_failed" &&
                             error.value("message", "") == "Value names a path the node cannot use";
      if (path_rule) continue;
      if (type != "value_not_in_list" || (input != "model_name" && input != "tokenizer"))
        return false;
    }
  }
  return true;
}

}  // namespace

int64_t vae_decode_activation_bytes(int64_t latent_frames, int64_t height, int64_t width,
                                    int64_t base_channels, int64_t dtype_bytes) {
  const int64_t frames = (latent_frames - 1) * 4 + 1;
  const bool whole = latent_frames <= models::kVaeWholeClipLatentFrames;
  const int64_t chunk_frames = whole ? frames : 4;
  int64_t act = static_cast<int64_t>(kVaeActivationFactor * base_channels * chunk_frames *
                                     height * width * dtype_bytes);
  if (!whole) {
    // Causal caches (official geometry scaled by the base width) and the preallocated float32
    // output of the whole clip.
    models::WanVaeConfig c;
    c.dim = base_channels;
    act += Planner::vae_cache_bytes(c, height, width, dtype_bytes) + 3 * frames * height * width * 4;
  }
  return act;
}

PlanResult plan_prompt(const nlohmann::json& api_prompt, const graph::NodeRegistry& registry,
                       const PlanOptions& options) {
  auto validation = graph::validate_prompt(api_prompt, registry, {options.models_dir});
  if (!validation.ok && !(options.preset.empty() ? false : only_missing_model_files(validation)))
    throw graph::InvalidPrompt(validation.to_json());
  if (validation.outputs.empty()) {
    for (const auto& id : graph::sorted_node_ids(api_prompt)) {
      const auto* schema = registry.find(api_prompt[id].value("class_type", ""));
      if (schema && schema->is_output_node()) validation.outputs.push_back(id);
    }
  }

  Planner p{api_prompt, registry, options};
  // The ComputeDevice rules (docs/memory.md) without creating one: a budget on a CPU-only
  // machine is the virtual accelerator; CUDA without --vram uses the driver's total.
  const std::string dev = lower(options.device.device);
  const bool cuda = dev != "cpu" && torch::cuda::is_available();
  if (dev != "auto" && dev != "cpu" && dev.rfind("cuda", 0) != 0)
    throw ValidationError("memory plan: unknown device '" + options.device.device + "'");
  if (cuda) {
    device::ComputeDevice probe(options.device);
    p.accelerator = true;
    p.device_name = probe.name();
    p.capacity = probe.bytes_capacity();
  } else if (options.device.vram) {
    p.accelerator = true;
    p.device_name = "vgpu";
    p.capacity = *options.device.vram - options.device.reserve;
    if (p.capacity <= 0)
      throw ValidationError("--vram " + format_bytes(*options.device.vram) +
                            " leaves nothing usable after --reserve " +
                            format_bytes(options.device.reserve) +
                            "; raise --vram or lower --reserve");
  }

  PlanResult result;
  result.device_name = p.device_name;
  result.capacity = p.capacity;
  json nodes = json::array();
  for (const auto& id : p.execution_order(validation.outputs)) {
    const json& node = api_prompt[id];
    const std::string class_type = node["class_type"].get<std::string>();
    const json& inputs = node.value("inputs", json::object());
    const graph::Values in = graph::literal_values(inputs, registry.schema(class_type));
    result.nodes.push_back(PlannedNode{id, class_type});
    PlannedNode& planned = result.nodes.back();
    p.current = &planned;
    p.label = class_type + " (node " + id + ")";
    p.dev_peak = p.dev_held, p.cpu_peak = p.cpu_held, p.peak_part.clear();
    auto outs = p.run_node(id, class_type, in, inputs);
    planned.device_after = p.dev_held, planned.cpu_after = p.cpu_held;
    planned.device_peak = p.dev_peak, planned.cpu_peak = p.cpu_peak;
    planned.peak_part = p.peak_part;
    if (p.dev_peak > result.device_peak) {
      result.device_peak = p.dev_peak;
      result.device_peak_node = p.label;
    }
    result.cpu_peak = std::max(result.cpu_peak, p.cpu_peak);
    result.transfer_bytes += planned.bytes_in;

    json models = json::object(), computed = json::object();
    for (const auto& m : p.models)
      models[m->name] = m->on_device ? p.device_name : std::string("cpu");
    json entry = {{"node", id},
                  {"class_type", class_type},
                  {"bytes_after", {{p.device_name, planned.device_after}, {"cpu", planned.cpu_after}}},
                  {"bytes_peak", {{p.device_name, planned.device_peak}, {"cpu", planned.cpu_peak}}},
                  {"models", models},
                  {"transfers", {{"bytes_in", planned.bytes_in}, {"bytes_out", planned.bytes_out}}},
                  {"peak", planned.peak_part}};
    if (p.oom) {
      planned.ok = false;
      planned.error = *p.oom;
      entry["outcome"] = "error";
      entry["error"] = *p.oom;
      nodes.push_back(entry);
      result.fits = false;
      result.first_oom_message = *p.oom;
      break;
    }
    entry["outcome"] = "ok";
    nodes.push_back(entry);
    p.outputs[id] = std::move(outs);
  }
  json models = json::object();
  for (const auto& m : p.models) {
    models[m->name] = {{"placement", device::placement_name(m->placement)}, {"bytes", m->bytes}};
    result.model_bytes.emplace_back(m->name, m->bytes);
  }
  result.json = {{"device", p.device_name},
                 {"capacity", p.capacity},
                 {"preset", options.preset},
                 {"models", models},
                 {"nodes", nodes},
                 {"peak", {{p.device_name, result.device_peak}, {"cpu", result.cpu_peak}}},
                 {"peak_node", result.device_peak_node},
                 {"transfer_bytes", result.transfer_bytes},
                 {"fits", result.fits}};
  if (!result.fits) result.json["first_oom"] = result.first_oom_message;

  std::ostringstream text;
  text << "memory plan on " << p.device_name;
  if (p.capacity >= 0) text << " (" << format_bytes(p.capacity) << " usable)";
  if (!options.preset.empty()) text << ", preset " << options.preset;
  text << "\nmodels:";
  for (const auto& m : p.models)
    text << " " << m->name << " " << format_bytes(m->bytes) << " ("
         << device::placement_name(m->placement) << ")";
  text << "\n"
       << pad("node", 30) << pad(p.device_name + " after", 14) << pad(p.device_name + " peak", 14)
       << pad("cpu after", 14) << pad("moved in", 12) << "peak made of\n";
  for (const auto& n : result.nodes) {
    text << pad(n.class_type + " (" + n.node_id + ")", 30) << pad(format_bytes(n.device_after), 14)
         << pad(format_bytes(n.device_peak), 14) << pad(format_bytes(n.cpu_after), 14)
         << pad(format_bytes(n.bytes_in), 12) << n.peak_part << (n.ok ? "" : "  OUT OF MEMORY")
         << "\n";
  }
  if (result.fits) {
    text << "fits: peak " << format_bytes(result.device_peak) << " on " << p.device_name << " in "
         << result.device_peak_node << "; " << format_bytes(result.transfer_bytes)
         << " moved onto the device\n";
  } else {
    text << "does not fit: " << result.first_oom_message << "\n";
  }
  result.text = text.str();
  return result;
}

}  // namespace wan::plan
