#include "models/dit/wan_dit_config.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "core/bounded_json.h"
#include "core/error.h"
#include "io/tensor_index.h"
#include "models/common/model_config.h"

namespace wan::models {
namespace {

namespace fs = std::filesystem;
using Shape = std::vector<int64_t>;

std::string strip_comfy_prefix(const std::string& key) {
  const std::string prefix = kComfyDitPrefix;
  return key.rfind(prefix, 0) == 0 ? key.substr(prefix.size()) : key;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

WanDitConfig base_1_3b() {
  WanDitConfig c;
  c.dim = 1536;
  c.ffn_dim = 8960;
  c.num_heads = 12;
  c.num_layers = 30;
  return c;
}

WanDitConfig base_14b() {
  WanDitConfig c;
  c.dim = 5120;
  c.ffn_dim = 13824;
  c.num_heads = 40;
  c.num_layers = 40;
  return c;
}

// The released VACE checkpoints place one hint every num_layers / n_vace blocks, starting at 0
// (1.3B: 15 hints every 2 of 30 blocks; 14B: 8 hints every 5 of 40 blocks).
std::vector<int64_t> evenly_spaced_layers(int64_t num_layers, int64_t count) {
  std::vector<int64_t> layers;
  const int64_t step = count > 0 ? num_layers / count : 0;
  for (int64_t i = 0; i < count; ++i) layers.push_back(i * step);
  return layers;
}

// What the checkpoint tensors say, keyed by their (prefix-stripped) names.
struct ShapeFacts {
  std::map<std::string, Shape> shapes;
  std::string origin;

  const Shape* find(const std::string& key) const {
    auto it = shapes.find(key);
    return it == shapes.end() ? nullptr : &it->second;
  }
  bool has(const std::string& key) const { return shapes.count(key) > 0; }
  const Shape& need(const std::string& key, size_t rank) const {
    const Shape* shape = find(key);
    if (!shape)
      throw LoadError(origin + ": not a Wan DiT checkpoint: tensor '" + key + "' is missing");
    if (shape->size() != rank)
      throw LoadError(origin + ": tensor '" + key + "' has shape " + shape_str(*shape) +
                      ", expected rank " + std::to_string(rank));
    return *shape;
  }
  // Number of consecutive `<prefix>N.` indices starting at 0.
  int64_t count_indexed(const std::string& prefix) const {
    std::set<int64_t> indices;
    for (const auto& [key, shape] : shapes) {
      if (key.rfind(prefix, 0) != 0) continue;
      const auto rest = key.substr(prefix.size());
      const auto dot = rest.find('.');
      if (dot == std::string::npos || dot == 0) continue;
      try {
        indices.insert(std::stoll(rest.substr(0, dot)));
      } catch (const std::exception&) {
      }
    }
    int64_t n = 0;
    while (indices.count(n)) ++n;
    return n;
  }
};

// Candidate configuration sources in the documented order.
std::vector<ModelConfig> config_sources(const std::vector<io::TensorInfo>& infos,
                                        const std::map<std::string, std::string>& metadata) {
  std::vector<ModelConfig> sources;
  auto meta = metadata.find("config");
  if (meta != metadata.end())
    sources.push_back(ModelConfig::parse(meta->second, "safetensors metadata 'config'"));
  if (!infos.empty() && !infos.front().file.empty()) {
    const fs::path file = infos.front().file;
    if (auto json = ModelConfig::read(file.parent_path() / "config.json"))
      sources.push_back(std::move(*json));
    // Sharded checkpoints name their files "<stem>-0000N-of-0000M"; the index carries the stem.
    if (auto json = ModelConfig::read(ModelConfig::beside(file))) sources.push_back(std::move(*json));
  }
  return sources;
}

// A JSON source describing another model than the weights would silently break the run; such a
// source is skipped (with a warning) and the next one is consulted. A value of the wrong type is
// not a contradiction but a broken file: ModelConfig throws for it.
std::string contradiction(const ModelConfig& source, const WanDitConfig& shapes) {
  std::ostringstream why;
  auto check = [&](const char* key, int64_t actual) {
    if (auto value = source.integer(key, 0, kMaxConfigDim * 16); value && *value != actual)
      why << " " << key << "=" << *value << " (weights: " << actual << ")";
  };
  check("dim", shapes.dim);
  check("ffn_dim", shapes.ffn_dim);
  check("num_layers", shapes.num_layers);
  check("in_dim", shapes.in_dim);
  check("out_dim", shapes.out_dim);
  check("text_dim", shapes.text_dim);
  check("freq_dim", shapes.freq_dim);
  if (auto type = source.string("model_type"); type && *type != to_string(shapes.variant))
    why << " model_type=" << printable(*type, 40) << " (weights: " << to_string(shapes.variant) << ")";
  return why.str();
}

}  // namespace

std::string to_string(WanDitVariant variant) {
  switch (variant) {
    case WanDitVariant::kT2v:
      return "t2v";
    case WanDitVariant::kI2v:
      return "i2v";
    case WanDitVariant::kFlf2v:
      return "flf2v";
    case WanDitVariant::kVace:
      return "vace";
  }
  return "unknown";
}

int64_t WanDitConfig::image_tokens() const {
  switch (variant) {
    case WanDitVariant::kI2v:
      return kClipTokensPerImage;
    case WanDitVariant::kFlf2v:
      return 2 * kClipTokensPerImage;
    default:
      return 0;
  }
}

WanDitConfig WanDitConfig::t2v_1_3b() { return base_1_3b(); }

WanDitConfig WanDitConfig::t2v_14b() { return base_14b(); }

WanDitConfig WanDitConfig::i2v_14b() {
  auto c = base_14b();
  c.variant = WanDitVariant::kI2v;
  c.in_dim = 36;  // 16 noise + 4 mask + 16 encoded-image channels
  return c;
}

WanDitConfig WanDitConfig::flf2v_14b() {
  auto c = i2v_14b();
  c.variant = WanDitVariant::kFlf2v;
  return c;
}

WanDitConfig WanDitConfig::vace_1_3b() {
  auto c = base_1_3b();
  c.variant = WanDitVariant::kVace;
  c.vace_layers = evenly_spaced_layers(30, 15);
  return c;
}

WanDitConfig WanDitConfig::vace_14b() {
  auto c = base_14b();
  c.variant = WanDitVariant::kVace;
  c.vace_layers = evenly_spaced_layers(40, 8);
  return c;
}

WanDitConfig WanDitConfig::preset(const std::string& name) {
  static const std::map<std::string, WanDitConfig (*)()> kPresets = {
      {"t2v_1_3b", &WanDitConfig::t2v_1_3b},   {"t2v_14b", &WanDitConfig::t2v_14b},
      {"i2v_14b", &WanDitConfig::i2v_14b},     {"flf2v_14b", &WanDitConfig::flf2v_14b},
      {"vace_1_3b", &WanDitConfig::vace_1_3b}, {"vace_14b", &WanDitConfig::vace_14b}};
  auto it = kPresets.find(name);
  if (it == kPresets.end()) {
    std::string names;
    for (const auto& [key, fn] : kPresets) names += (names.empty() ? "" : ", ") + key;
    throw ValidationError("WanDitConfig: unknown preset '" + name + "'; use one of " + names);
  }
  return it->second();
}

void WanDitConfig::validate() const {
  auto fail = [](const std::string& what) { throw ValidationError("WanDitConfig: " + what); };
  if (dim <= 0 || num_heads <= 0 || num_layers <= 0 || ffn_dim <= 0)
    fail("dim, num_heads, num_layers and ffn_dim must be positive");
  // Sizes past these are no Wan model; refusing them here keeps a hostile header or
  // configuration from sizing an allocation (text_len 20,000,000 would take the machine).
  auto bounded = [&](const char* name, int64_t value, int64_t max) {
    if (value > max)
      fail(std::string(name) + " " + std::to_string(value) + " is larger than the supported " +
           std::to_string(max));
  };
  bounded("dim", dim, kMaxConfigDim);
  bounded("ffn_dim", ffn_dim, 16 * kMaxConfigDim);
  bounded("num_heads", num_heads, kMaxConfigHeads);
  bounded("num_layers", num_layers, kMaxConfigLayers);
  bounded("text_len", text_len, kMaxConfigTextLen);
  bounded("freq_dim", freq_dim, kMaxConfigDim);
  bounded("in_dim", in_dim, kMaxConfigDim);
  bounded("out_dim", out_dim, kMaxConfigDim);
  bounded("text_dim", text_dim, kMaxConfigDim);
  bounded("img_dim", img_dim, kMaxConfigDim);
  bounded("vace_in_dim", vace_in_dim, kMaxConfigDim);
  for (auto p : patch_size) bounded("patch_size entry", p, 64);
  if (text_len <= 0 || in_dim <= 0 || out_dim <= 0 || text_dim <= 0 || freq_dim <= 0)
    fail("text_len, in_dim, out_dim, text_dim and freq_dim must be positive");
  if (!(eps > 0.0 && eps < 1.0)) fail("eps must lie in (0, 1)");
  if (dim % num_heads != 0)
    fail("dim " + std::to_string(dim) + " is not divisible by num_heads " +
         std::to_string(num_heads));
  if (head_dim() % 2 != 0) fail("head_dim " + std::to_string(head_dim()) + " must be even (RoPE)");
  if (freq_dim % 2 != 0) fail("freq_dim " + std::to_string(freq_dim) + " must be even");
  for (auto p : patch_size)
    if (p <= 0) fail("patch_size entries must be positive");
  if (variant == WanDitVariant::kVace) {
    if (vace_layers.empty() || vace_layers.front() != 0)
      fail("vace_layers must start with 0 (the first VACE block holds before_proj)");
    // Increasing, as every official config lists them: VACE block k computes after main block
    // vace_layers[k] and feeds VACE block k + 1 (models/dit/wan_dit.cpp).
    int64_t previous = -1;
    for (auto layer : vace_layers) {
      if (layer <= previous || layer >= num_layers)
        fail("vace_layers entry " + std::to_string(layer) + " is out of range or out of order for " +
             std::to_string(num_layers) + " layers (the list must increase)");
      previous = layer;
    }
  }
}

WanDitConfig WanDitConfig::from_weights(const std::vector<io::TensorInfo>& infos,
                                        const std::map<std::string, std::string>& metadata) {
  ShapeFacts facts;
  facts.origin = infos.empty() || infos.front().file.empty() ? "WanDit weights" : infos.front().file;
  for (const auto& info : infos) facts.shapes[strip_comfy_prefix(info.name)] = info.shape;

  const char* kRequired[] = {"patch_embedding.weight", "time_embedding.0.weight",
                             "text_embedding.0.weight", "head.head.weight",
                             "blocks.0.ffn.0.weight"};
  for (const char* key : kRequired) {
    if (!facts.has(key)) {
      throw LoadError(facts.origin +
                      ": not a Wan2.1 DiT checkpoint: looked for patch_embedding.weight, "
                      "time_embedding.0.weight, text_embedding.0.weight, head.head.weight, "
                      "blocks.0.ffn.0.weight (optionally prefixed by '" +
                      std::string(kComfyDitPrefix) + "'); missing '" + key + "'");
    }
  }

  WanDitConfig c;
  // Variant: keys decide; a JSON model_type only has to agree.
  if (facts.has("vace_patch_embedding.weight"))
    c.variant = WanDitVariant::kVace;
  else if (facts.has("img_emb.emb_pos"))
    c.variant = WanDitVariant::kFlf2v;
  else if (facts.has("img_emb.proj.0.bias"))
    c.variant = WanDitVariant::kI2v;
  else
    c.variant = WanDitVariant::kT2v;

  const Shape& patch = facts.need("patch_embedding.weight", 5);  // [dim, in_dim, pt, ph, pw]
  c.dim = patch[0];
  c.in_dim = patch[1];
  c.patch_size = {patch[2], patch[3], patch[4]};
  c.freq_dim = facts.need("time_embedding.0.weight", 2)[1];
  c.text_dim = facts.need("text_embedding.0.weight", 2)[1];
  c.ffn_dim = facts.need("blocks.0.ffn.0.weight", 2)[0];
  c.num_layers = facts.count_indexed("blocks.");
  const int64_t patch_volume = c.patch_size[0] * c.patch_size[1] * c.patch_size[2];
  const int64_t head_out = facts.need("head.head.weight", 2)[0];
  if (head_out % patch_volume != 0)
    throw LoadError(facts.origin + ": head.head.weight rows " + std::to_string(head_out) +
                    " are not a multiple of the patch volume " + std::to_string(patch_volume));
  c.out_dim = head_out / patch_volume;
  c.qk_norm = facts.has("blocks.0.self_attn.norm_q.weight");
  c.cross_attn_norm = facts.has("blocks.0.norm3.weight");
  if (c.has_image_input()) c.img_dim = facts.need("img_emb.proj.0.weight", 1)[0];
  int64_t vace_blocks = 0;
  if (c.variant == WanDitVariant::kVace) {
    c.vace_in_dim = facts.need("vace_patch_embedding.weight", 5)[1];
    vace_blocks = facts.count_indexed("vace_blocks.");
    c.vace_layers = evenly_spaced_layers(c.num_layers, vace_blocks);
  }

  // Shape-less fields: the first consistent JSON source, else official defaults.
  std::optional<ModelConfig> chosen;
  for (auto& source : config_sources(infos, metadata)) {
    const auto why = contradiction(source, c);
    if (!why.empty()) {
      spdlog::warn("LoadDiT: ignoring configuration {} that contradicts the weights:{}",
                   source.origin(), why);
      continue;
    }
    chosen = std::move(source);
    break;
  }
  c.num_heads = c.dim % kOfficialHeadDim == 0 ? c.dim / kOfficialHeadDim : 0;
  if (chosen) {
    const ModelConfig& json = *chosen;
    if (auto v = json.integer("num_heads", 1, std::min(c.dim, kMaxConfigHeads))) c.num_heads = *v;
    if (auto v = json.integer("text_len", 1, kMaxConfigTextLen)) c.text_len = *v;
    if (auto v = json.number("eps", 0.0, 1.0)) c.eps = *v;
    if (auto v = json.integers("window_size", -1, kMaxConfigTextLen * 1024, 2);
        v && !(v->size() == 2 && (*v)[0] == -1 && (*v)[1] == -1))
      throw LoadError(chosen->origin() +
                      ": window_size other than [-1, -1] (local attention) is not supported");
    if (c.variant == WanDitVariant::kVace) {
      if (auto v = json.integers("vace_layers", 0, c.num_layers - 1, size_t(c.num_layers))) {
        if (static_cast<int64_t>(v->size()) != vace_blocks)
          throw LoadError(chosen->origin() + ": vace_layers lists " + std::to_string(v->size()) +
                          " layers but the weights hold " + std::to_string(vace_blocks) +
                          " vace_blocks");
        c.vace_layers = *v;
      }
    }
    spdlog::debug("LoadDiT: configuration from {}", chosen->origin());
  } else if (c.variant == WanDitVariant::kVace && c.num_layers % std::max<int64_t>(vace_blocks, 1)) {
    throw LoadError(facts.origin + ": " + std::to_string(vace_blocks) + " vace_blocks do not evenly "
                    "divide " + std::to_string(c.num_layers) +
                    " blocks and no configuration lists vace_layers; add a config.json with "
                    "\"vace_layers\"");
  }
  if (c.num_heads <= 0)
    throw LoadError(facts.origin + ": num_heads is not in any configuration and dim " +
                    std::to_string(c.dim) + " is not a multiple of the official head_dim 128; "
                    "add a config.json with \"num_heads\"");
  try {
    c.validate();
  } catch (const ValidationError& e) {
    throw LoadError(facts.origin + ": " + e.what());
  }
  return c;
}

WanDitConfig WanDitConfig::from_file(const std::string& path) {
  return from_weights(io::read_tensor_infos(path), io::read_metadata(path));
}

std::vector<io::TensorInfo> wan_dit_expected_tensors(const WanDitConfig& c) {
  std::vector<io::TensorInfo> out;
  auto add = [&](const std::string& name, Shape shape) {
    io::TensorInfo info;
    info.name = name;
    info.dtype = "F32";
    info.shape = std::move(shape);
    out.push_back(std::move(info));
  };
  auto linear = [&](const std::string& name, int64_t in, int64_t outf) {
    add(name + ".weight", {outf, in});
    add(name + ".bias", {outf});
  };
  const int64_t d = c.dim;
  const auto& p = c.patch_size;
  auto block = [&](const std::string& prefix, bool image_cross, bool vace_first, bool vace) {
    if (vace_first) linear(prefix + "before_proj", d, d);
    auto attention = [&](const std::string& a, bool image) {
      linear(a + "q", d, d);
      linear(a + "k", d, d);
      linear(a + "v", d, d);
      linear(a + "o", d, d);
      if (c.qk_norm) {
        add(a + "norm_q.weight", {d});
        add(a + "norm_k.weight", {d});
      }
      if (image) {
        linear(a + "k_img", d, d);
        linear(a + "v_img", d, d);
        if (c.qk_norm) add(a + "norm_k_img.weight", {d});
      }
    };
    attention(prefix + "self_attn.", false);
    if (c.cross_attn_norm) {
      add(prefix + "norm3.weight", {d});
      add(prefix + "norm3.bias", {d});
    }
    attention(prefix + "cross_attn.", image_cross);
    linear(prefix + "ffn.0", d, c.ffn_dim);
    linear(prefix + "ffn.2", c.ffn_dim, d);
    add(prefix + "modulation", {1, 6, d});
    if (vace) linear(prefix + "after_proj", d, d);
  };

  add("patch_embedding.weight", {d, c.in_dim, p[0], p[1], p[2]});
  add("patch_embedding.bias", {d});
  linear("text_embedding.0", c.text_dim, d);
  linear("text_embedding.2", d, d);
  linear("time_embedding.0", c.freq_dim, d);
  linear("time_embedding.2", d, d);
  linear("time_projection.1", d, 6 * d);
  for (int64_t i = 0; i < c.num_layers; ++i)
    block("blocks." + std::to_string(i) + ".", c.has_image_input(), false, false);
  linear("head.head", d, c.out_dim * p[0] * p[1] * p[2]);
  add("head.modulation", {1, 2, d});
  if (c.has_image_input()) {
    add("img_emb.proj.0.weight", {c.img_dim});
    add("img_emb.proj.0.bias", {c.img_dim});
    linear("img_emb.proj.1", c.img_dim, c.img_dim);
    linear("img_emb.proj.3", c.img_dim, d);
    add("img_emb.proj.4.weight", {d});
    add("img_emb.proj.4.bias", {d});
    if (c.variant == WanDitVariant::kFlf2v)
      add("img_emb.emb_pos", {1, 2 * kClipTokensPerImage, c.img_dim});
  }
  if (c.variant == WanDitVariant::kVace) {
    for (size_t i = 0; i < c.vace_layers.size(); ++i)
      block("vace_blocks." + std::to_string(i) + ".", false, c.vace_layers[i] == 0, true);
    add("vace_patch_embedding.weight", {d, c.vace_in_dim, p[0], p[1], p[2]});
    add("vace_patch_embedding.bias", {d});
  }
  return out;
}

int64_t wan_dit_parameter_count(const WanDitConfig& config) {
  int64_t total = 0;
  for (const auto& info : wan_dit_expected_tensors(config)) total += info.numel();
  return total;
}

}  // namespace wan::models
