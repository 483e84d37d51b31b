// Decode benchmark of the full-size Wan2.1 VAE (official preset, random float32 weights): a
// [16, 2, 60, 104] latent -> 5 frames of 832x480. Reports time and the activation peak
// (VmHWM minus VmRSS after the weights are in memory).
//
//   vae_decode_bench [--threads N] [--chunk N] [--latent-frames N] [--tile N --overlap N]
//                    [--save FILE] [--reference FILE]
//
// Run one process per setting: VmHWM is a per-process high-water mark. --tile/--overlap decode
// in spatial tiles (latent pixels). --save writes the frames as raw float32; --reference reads
// such a file after the measurement and prints the max and mean abs difference to it (e.g. an
// untiled run's frames against a tiled run's).
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "models/vae/wan_vae.h"

namespace {

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM").
int64_t proc_status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
  }
  return -1;
}

double gib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  int64_t chunk = 0;
  int64_t latent_frames = 2;
  int64_t tile = 0, overlap = 0;
  std::string save_path, reference_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--chunk") chunk = std::atoll(argv[i + 1]);
    else if (flag == "--latent-frames") latent_frames = std::atoll(argv[i + 1]);
    else if (flag == "--tile") tile = std::atoll(argv[i + 1]);
    else if (flag == "--overlap") overlap = std::atoll(argv[i + 1]);
    else if (flag == "--save") save_path = argv[i + 1];
    else if (flag == "--reference") reference_path = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  at::set_num_threads(threads);

  wan::models::WanVae vae(wan::models::WanVaeConfig::official());
  {
    // Random weights with unit-variance activations (1/sqrt(fan_in)), so values stay finite.
    torch::NoGradGuard no_grad;
    torch::manual_seed(0);
    for (auto& p : vae->named_parameters()) {
      auto& t = p.value();
      if (p.key().find("gamma") != std::string::npos) {
        t.uniform_(0.5, 1.5);
      } else if (t.dim() > 1) {
        t.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(t.numel() / t.size(0))));
      } else {
        t.normal_(0.0, 0.02);
      }
    }
  }
  torch::manual_seed(1);
  const auto latent = torch::randn({16, latent_frames, 60, 104});
  const int64_t rss_loaded = proc_status_bytes("VmRSS");

  const auto start = std::chrono::steady_clock::now();
  const auto video = vae->decode(latent, wan::models::VaeRunOptions()
                                             .latent_frames_per_chunk(chunk)
                                             .tile_size(tile)
                                             .tile_overlap(overlap));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t hwm = proc_status_bytes("VmHWM");

  std::printf(
      "vae_decode_bench threads=%d chunk=%lld tile=%lld overlap=%lld latent=[16,%lld,60,104] -> "
      "[3,%lld,480,832]\n"
      "  time %.1f s  rss_after_load %.2f GiB  peak %.2f GiB  activation_peak %.2f GiB\n"
      "  output sum %.6f  abs-mean %.6f\n",
      threads, static_cast<long long>(chunk), static_cast<long long>(tile),
      static_cast<long long>(overlap), static_cast<long long>(latent_frames),
      static_cast<long long>(video.size(1)), seconds, gib(rss_loaded), gib(hwm),
      gib(hwm - rss_loaded), video.sum().item<double>(), video.abs().mean().item<double>());
  const auto frames = video.contiguous();
  const auto bytes = static_cast<std::streamsize>(frames.numel() * sizeof(float));
  if (!save_path.empty()) {
    std::ofstream out(save_path, std::ios::binary);
    out.write(static_cast<const char*>(frames.data_ptr()), bytes);
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", save_path.c_str());
      return 1;
    }
  }
  if (!reference_path.empty()) {
    auto reference = torch::empty_like(frames);
    std::ifstream in(reference_path, std::ios::binary);
    in.read(static_cast<char*>(reference.data_ptr()), bytes);
    if (!in || in.gcount() != bytes) {
      std::fprintf(stderr, "%s does not hold %lld float32 frames values\n",
                   reference_path.c_str(), static_cast<long long>(frames.numel()));
      return 1;
    }
    const auto diff = (frames - reference).abs();
    std::printf("  vs %s: max abs difference %.4g, mean %.4g\n", reference_path.c_str(),
                diff.max().item<double>(), diff.mean().item<double>());
  }
  return 0;
}
