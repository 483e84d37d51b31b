// Writes a models folder of random weights with the official tensor names and shapes (from the
// same expected-tensor lists the loaders check), so the device check can run the real pipeline
// at full size without carrying gigabytes: t2v-1.3B DiT (fp16, as ComfyUI's repackaged file),
// UMT5-XXL (bf16), the Wan2.1 VAE (fp32), plus a tokenizer copied from the test data.
//
//   random_models --out DIR [--size official|tiny] [--tokenizer DIR] [--seed N]
//
// `tiny` writes small models of the same structure (the tests' sizes) for the dry run. Weights:
// norms 1, biases 0, everything else N(0, 1/fan_in), which keeps activations finite through
// every layer. Generated on the CUDA device when there is one (seconds for 14 GB).
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "bench_util.h"
#include "device/cuda_backend.h"
#include "io/safetensors.h"
#include "models/dit/wan_dit_config.h"
#include "models/t5/umt5_encoder.h"
#include "models/vae/wan_vae.h"

namespace {

namespace fs = std::filesystem;
using wan::bench::seconds_since;

struct Options {
  fs::path out;
  std::string size = "official";
  fs::path tokenizer;
  uint64_t seed = 20251201;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "random_models: %s\nusage: random_models --out DIR [--size official|tiny] "
               "[--tokenizer DIR] [--seed N]\n",
               problem.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) usage(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--out") o.out = value;
    else if (arg == "--size") o.size = value;
    else if (arg == "--tokenizer") o.tokenizer = value;
    else if (arg == "--seed") o.seed = std::stoull(value);
    else usage("unknown option " + arg);
  }
  if (o.out.empty()) usage("--out is required");
  if (o.size != "official" && o.size != "tiny") usage("--size is official or tiny");
  return o;
}

// One tensor of the rule in the header, made on `device` in `dtype`, returned in CPU memory.
at::Tensor random_weight(const std::string& name, const std::vector<int64_t>& shape,
                         at::ScalarType dtype, const at::Device& device) {
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor t;
  const bool is_norm = name.find("norm") != std::string::npos ||
                       name.find("gamma") != std::string::npos;
  if (is_norm) {
    t = at::ones(shape, options);
  } else if (shape.size() <= 1) {
    t = at::zeros(shape, options);
  } else {
    int64_t fan_in = 1;
    for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
    t = at::randn(shape, options) / std::sqrt(static_cast<double>(fan_in));
  }
  return t.to(dtype).cpu();
}

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
};

void write_model(const fs::path& file, const std::vector<Spec>& specs, at::ScalarType dtype,
                 const at::Device& device) {
  const auto start = std::chrono::steady_clock::now();
  wan::io::TensorMap tensors;
  int64_t bytes = 0;
  for (const auto& spec : specs) {
    tensors[spec.name] = random_weight(spec.name, spec.shape, dtype, device);
    bytes += static_cast<int64_t>(tensors[spec.name].nbytes());
  }
  wan::io::save_safetensors(file.string(), tensors);
  std::printf("random_models: %s: %zu tensors, %.3f GiB, %.1f s\n", file.string().c_str(),
              specs.size(), wan::bench::gib(bytes), seconds_since(start));
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file);
  out << text;
  if (!out) usage("cannot write " + file.string());
}

std::string dit_config_json(const wan::models::WanDitConfig& c) {
  char buffer[640];
  std::snprintf(buffer, sizeof(buffer),
                "{\"_class_name\": \"WanModel\", \"model_type\": \"t2v\", \"patch_size\": [%lld, "
                "%lld, %lld], \"text_len\": %lld, \"in_dim\": %lld, \"dim\": %lld, \"ffn_dim\": "
                "%lld, \"freq_dim\": %lld, \"text_dim\": %lld, \"out_dim\": %lld, \"num_heads\": "
                "%lld, \"num_layers\": %lld, \"window_size\": [-1, -1], \"qk_norm\": %s, "
                "\"cross_attn_norm\": %s, \"eps\": %g}\n",
                static_cast<long long>(c.patch_size[0]), static_cast<long long>(c.patch_size[1]),
                static_cast<long long>(c.patch_size[2]), static_cast<long long>(c.text_len),
                static_cast<long long>(c.in_dim), static_cast<long long>(c.dim),
                static_cast<long long>(c.ffn_dim), static_cast<long long>(c.freq_dim),
                static_cast<long long>(c.text_dim), static_cast<long long>(c.out_dim),
                static_cast<long long>(c.num_heads), static_cast<long long>(c.num_layers),
                c.qk_norm ? "true" : "false", c.cross_attn_norm ? "true" : "false", c.eps);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const bool official = o.size == "official";
  const at::Device device = wan::device::cuda_backend::available() ? at::Device(at::kCUDA, 0)
                                                                    : at::Device(at::kCPU);
  at::manual_seed(o.seed);
  at::NoGradGuard no_grad;
  for (const char* folder : {"diffusion_models", "text_encoders", "vae", "tokenizers"})
    fs::create_directories(o.out / folder);

  // The DiT: the t2v-1.3B preset, or the tests' tiny t2v shape (dim 64, 2 layers, 4 heads).
  wan::models::WanDitConfig dit = wan::models::WanDitConfig::preset("t2v_1_3b");
  if (!official) {
    dit.dim = 64;
    dit.ffn_dim = 128;
    dit.text_dim = 64;
    dit.num_heads = 4;
    dit.num_layers = 2;
    dit.text_len = 32;
  }
  std::vector<Spec> dit_specs;
  for (const auto& info : wan::models::wan_dit_expected_tensors(dit))
    dit_specs.push_back({info.name, info.shape});
  const fs::path dit_file = o.out / "diffusion_models" / "random_t2v_dit.safetensors";
  write_model(dit_file, dit_specs, official ? at::kHalf : at::kFloat, device);
  write_text(o.out / "diffusion_models" / "random_t2v_dit_config.json", dit_config_json(dit));

  // UMT5-XXL, or the planner tests' small UMT5 (the tiny DiT reads 64-wide text).
  const wan::models::Umt5Config t5 =
      official ? wan::models::Umt5Config::umt5_xxl()
               : wan::models::Umt5Config(/*vocab=*/512, /*dim=*/64, /*dim_attn=*/64,
                                         /*dim_ffn=*/4096, /*num_heads=*/4, /*num_layers=*/12);
  std::vector<Spec> t5_specs;
  for (const auto& info : wan::models::umt5_expected_tensors(t5, at::kBFloat16))
    t5_specs.push_back({info.name, info.shape});
  write_model(o.out / "text_encoders" / "random_umt5.safetensors", t5_specs, at::kBFloat16, device);
  write_text(o.out / "text_encoders" / "random_umt5_config.json",
             official ? "{\"text_len\": 512}\n" : "{\"text_len\": 32}\n");

  // The Wan2.1 VAE, or one of the same structure and 16 latent channels but 16 wide.
  wan::models::WanVaeConfig vae = wan::models::WanVaeConfig::official();
  if (!official) vae.dim = 16;
  std::vector<Spec> vae_specs;
  for (const auto& spec : wan::models::wan_vae_expected_tensors(vae))
    vae_specs.push_back({spec.name, spec.shape});
  write_model(o.out / "vae" / "random_vae.safetensors", vae_specs, at::kFloat, device);

  if (!o.tokenizer.empty()) {
    const fs::path target = o.out / "tokenizers" / o.tokenizer.filename();
    fs::remove_all(target);
    fs::copy(o.tokenizer, target, fs::copy_options::recursive);
  }
  std::printf("random_models: %s models in %s (generated on %s)\n", o.size.c_str(),
              o.out.string().c_str(), device.str().c_str());
  return 0;
}
