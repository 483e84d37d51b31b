// Time of one DiT forward pass (half a CFG sampling step) at a given video size, and the
// inputs/output written for scripts/device_check/reference_dit.py, which runs the same weights
// and inputs through the official WanModel and reports its time and the largest difference.
//
//   dit_step_bench --dit FILE [--weight-dtype fp16|bf16|fp32] [--compute-dtype bf16|fp32|fp16]
//                  [--width 832 --height 480 --frames 81] [--text-tokens N] [--repeats R]
//                  [--device auto|cpu|cuda] [--export FILE.safetensors] [--json FILE]
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "bench_util.h"
#include "device/cuda_backend.h"
#include "io/safetensors.h"
#include "models/dit/wan_dit.h"

namespace {

using wan::bench::seconds_since;

struct Options {
  std::string dit, weight_dtype = "fp16", compute_dtype = "bf16", device = "auto", json, export_to;
  int64_t width = 832, height = 480, frames = 81, text_tokens = 120;
  int repeats = 3;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "dit_step_bench: %s\nusage: dit_step_bench --dit FILE [--weight-dtype D] "
               "[--compute-dtype D] [--width W] [--height H] [--frames F] [--text-tokens N] "
               "[--repeats R] [--device auto|cpu|cuda] [--export FILE] [--json FILE]\n",
               problem.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) usage(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--dit") o.dit = value;
    else if (arg == "--weight-dtype") o.weight_dtype = value;
    else if (arg == "--compute-dtype") o.compute_dtype = value;
    else if (arg == "--width") o.width = std::stoll(value);
    else if (arg == "--height") o.height = std::stoll(value);
    else if (arg == "--frames") o.frames = std::stoll(value);
    else if (arg == "--text-tokens") o.text_tokens = std::stoll(value);
    else if (arg == "--repeats") o.repeats = std::stoi(value);
    else if (arg == "--device") o.device = value;
    else if (arg == "--export") o.export_to = value;
    else if (arg == "--json") o.json = value;
    else usage("unknown option " + arg);
  }
  if (o.dit.empty()) usage("--dit is required");
  if (o.width % 16 || o.height % 16 || (o.frames - 1) % 4 || o.repeats < 1)
    usage("width and height must be multiples of 16, frames 4k+1, repeats >= 1");
  return o;
}

at::ScalarType dtype_of(const std::string& name) {
  if (name == "bf16") return at::kBFloat16;
  if (name == "fp16") return at::kHalf;
  if (name == "fp32") return at::kFloat;
  usage("dtype '" + name + "' is not bf16, fp16 or fp32");
}

void synchronize(const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const bool cuda = o.device == "cuda" || (o.device == "auto" && wan::device::cuda_backend::available());
  const at::Device device = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  at::NoGradGuard no_grad;

  auto start = std::chrono::steady_clock::now();
  auto dit = wan::models::load_wan_dit(o.dit, dtype_of(o.weight_dtype), dtype_of(o.compute_dtype));
  dit->to(device);
  synchronize(device);
  const double load_s = seconds_since(start);
  const auto& config = dit->config();

  // Latent of the video: 16 channels, (F-1)/4+1 frames, H/8 x W/8; tokens per 1x2x2 patch.
  const int64_t latent_frames = (o.frames - 1) / 4 + 1;
  const int64_t lh = o.height / 8, lw = o.width / 8;
  const int64_t seq_len = latent_frames * (lh / config.patch_size[1]) * (lw / config.patch_size[2]);
  at::manual_seed(7);
  const at::Tensor x = at::randn({config.in_dim, latent_frames, lh, lw});
  const at::Tensor t = at::full({1}, 500.0);
  const at::Tensor context = at::randn({o.text_tokens, config.text_dim});
  const std::vector<at::Tensor> xs{x.to(device)}, contexts{context.to(device)};
  const at::Tensor td = t.to(device);

  at::Tensor out = dit->forward(xs, td, contexts, seq_len)[0];  // warm-up (kernels, allocator)
  synchronize(device);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < o.repeats; ++i) out = dit->forward(xs, td, contexts, seq_len)[0];
  synchronize(device);
  const double forward_s = seconds_since(start) / o.repeats;
  const int64_t peak = cuda ? wan::device::cuda_backend::allocated_peak(0) : -1;
  std::printf("dit_step_bench: %lldx%lldx%lld (%lld tokens), %s weights, %s compute on %s: "
              "forward %.3f s (a CFG step is two), load %.1f s\n",
              static_cast<long long>(o.width), static_cast<long long>(o.height),
              static_cast<long long>(o.frames), static_cast<long long>(seq_len),
              o.weight_dtype.c_str(), o.compute_dtype.c_str(), device.str().c_str(), forward_s,
              load_s);

  if (!o.export_to.empty()) {
    wan::io::save_safetensors(o.export_to,
                              {{"x", x}, {"t", t}, {"context", context}, {"output", out.cpu()}},
                              {{"seq_len", std::to_string(seq_len)},
                               {"compute_dtype", o.compute_dtype}});
  }
  if (!o.json.empty()) {
    std::ofstream json(o.json);
    json << "{\"device\": \"" << device.str() << "\", \"width\": " << o.width
         << ", \"height\": " << o.height << ", \"frames\": " << o.frames
         << ", \"tokens\": " << seq_len << ", \"weight_dtype\": \"" << o.weight_dtype
         << "\", \"compute_dtype\": \"" << o.compute_dtype << "\", \"repeats\": " << o.repeats
         << ", \"forward_s\": " << forward_s << ", \"load_s\": " << load_s
         << ", \"device_peak_bytes\": " << peak << "}\n";
    if (!json) {
      std::fprintf(stderr, "dit_step_bench: cannot write %s\n", o.json.c_str());
      return 3;
    }
  }
  return 0;
}
