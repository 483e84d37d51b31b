// Memory and time of the chunked attention at Wan2.1 1.3B video sizes (not a unit test).
//
// 1. One self-attention of the 1.3B DiT (dim 1536, 12 heads, head_dim 128) over the tokens of a
//    480x832, 81-frame video (latent 21x60x104 -> 21x30x52 = 32,760 tokens) through
//    wan::models::attention on each requested backend (chunked, sdpa), against the score buffer
//    an unchunked softmax(QK^T) would need (12 x 32760^2 x 4 B = 51.5 GB; never allocated). With
//    both backends it prints the max abs difference of their outputs and the time/memory ratios.
// 2. One forward of a reduced 1.3B DiT (t2v_1_3b with --layers blocks, random weights) at the
//    same size, float32, on the last requested backend.
//
// Usage: dit_attention_bench [--latent F,H,W] [--layers N] [--chunk Q] [--no-dit] [--bf16]
//                            [--attention chunked|sdpa|both] [--threads N]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "models/common/attention.h"
#include "models/dit/wan_dit.h"

namespace {

using Clock = std::chrono::steady_clock;

// Resident set size and its high-water mark, in bytes, from /proc/self/status.
int64_t proc_status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream in(line.substr(field.size() + 1));
      int64_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so the next peak belongs to one phase.
void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

double gib(int64_t bytes) { return static_cast<double>(bytes) / (1ull << 30); }

struct Phase {
  int64_t rss_before;
  Clock::time_point start;
};

Phase begin_phase() {
  reset_peak();
  return {proc_status_bytes("VmRSS"), Clock::now()};
}

struct PhaseResult {
  double seconds;
  int64_t peak_delta;  // VmHWM during the phase minus VmRSS before it
};

PhaseResult end_phase(const std::string& name, const Phase& phase) {
  const double seconds = std::chrono::duration<double>(Clock::now() - phase.start).count();
  const int64_t peak = proc_status_bytes("VmHWM");
  std::printf("%s: %.1f s, peak RSS %.2f GiB (+%.2f GiB over the %.2f GiB before)\n",
              name.c_str(), seconds, gib(peak), gib(peak - phase.rss_before),
              gib(phase.rss_before));
  return {seconds, peak - phase.rss_before};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t frames = 21, height = 60, width = 104, layers = 1, chunk = 0;
  bool run_dit = true, bf16 = false;
  std::vector<wan::models::AttentionBackend> backends = {wan::models::default_attention_backend()};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--latent" && i + 1 < argc) {
      if (std::sscanf(argv[++i], "%ld,%ld,%ld", &frames, &height, &width) != 3) return 2;
    } else if (arg == "--layers" && i + 1 < argc) {
      layers = std::atol(argv[++i]);
    } else if (arg == "--chunk" && i + 1 < argc) {
      chunk = std::atol(argv[++i]);
    } else if (arg == "--no-dit") {
      run_dit = false;
    } else if (arg == "--bf16") {
      bf16 = true;
    } else if (arg == "--threads" && i + 1 < argc) {
      at::set_num_threads(std::atoi(argv[++i]));
    } else if (arg == "--attention" && i + 1 < argc) {
      const std::string name = argv[++i];
      if (name == "both")
        backends = {wan::models::AttentionBackend::kChunked, wan::models::AttentionBackend::kSdpa};
      else
        backends = {wan::models::parse_attention_backend(name)};
    } else {
      std::fprintf(stderr,
                   "usage: %s [--latent F,H,W] [--layers N] [--chunk Q] [--no-dit] [--bf16] "
                   "[--attention chunked|sdpa|both] [--threads N]\n",
                   argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // results appear as phases end, even when piped
  torch::NoGradGuard no_grad;
  const auto dtype = bf16 ? at::kBFloat16 : at::kFloat;
  auto config = wan::models::WanDitConfig::t2v_1_3b();
  const int64_t heads = config.num_heads, head_dim = config.head_dim();
  const int64_t tokens = frames * (height / 2) * (width / 2);
  const int64_t budget = int64_t{256} << 20;
  const int64_t auto_chunk = wan::models::attention_query_chunk(1, heads, tokens, tokens, budget);
  const double full_scores = static_cast<double>(heads) * tokens * tokens * 4;
  std::printf("threads %d, dtype %s, latent %ldx%ldx%ld -> %ld tokens, %ld heads x %ld\n",
              at::get_num_threads(), bf16 ? "bf16" : "fp32", frames, height, width, tokens, heads,
              head_dim);
  std::printf("unchunked score buffer [1, %ld, %ld, %ld] fp32: %.1f GB (not allocated)\n", heads,
              tokens, tokens, full_scores / 1e9);
  const int64_t used_chunk = chunk > 0 ? chunk : auto_chunk;
  std::printf("chunked: query chunk %ld (%ld chunks); score+prob buffers per chunk: %.1f MiB\n",
              used_chunk, (tokens + used_chunk - 1) / used_chunk,
              2.0 * heads * used_chunk * tokens * 4 / (1 << 20));

  {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
    auto q = at::randn({1, tokens, heads, head_dim}, gen).to(dtype);
    auto k = at::randn({1, tokens, heads, head_dim}, gen).to(dtype);
    auto v = at::randn({1, tokens, heads, head_dim}, gen).to(dtype);
    std::vector<at::Tensor> outs;
    std::vector<PhaseResult> results;
    for (const auto backend : backends) {
      wan::models::AttentionOptions options;
      options.query_chunk = chunk;
      options.backend = backend;
      const auto phase = begin_phase();
      auto out = wan::models::attention(q, k, v, options);
      results.push_back(end_phase("self-attention " + wan::models::to_string(backend), phase));
      std::printf("  output %.1f MiB; checksum %.6f\n",
                  out.numel() * out.element_size() / 1048576.0,
                  out.to(at::kFloat).abs().mean().item<double>());
      outs.push_back(std::move(out));
    }
    if (outs.size() == 2) {
      const auto diff = (outs[1].to(at::kFloat) - outs[0].to(at::kFloat)).abs().flatten();
      const auto at_max = diff.argmax().item<int64_t>();
      std::printf("sdpa vs chunked: max abs difference %.3g at flat index %ld; time %.2fx, "
                  "peak %.2fx\n",
                  diff[at_max].item<double>(), at_max, results[1].seconds / results[0].seconds,
                  static_cast<double>(results[1].peak_delta) / results[0].peak_delta);
    }
  }

  if (run_dit) {
    config.num_layers = layers;
    wan::models::WanDit model{wan::models::WanDitOptions(config).compute_dtype(dtype)};
    wan::models::fill_unloaded(*model, 1);
    for (auto& p : model->parameters()) p.set_requires_grad(false);
    if (bf16) model->to(at::kBFloat16);
    model->set_attention_chunk(chunk);
    wan::models::set_default_attention_backend(backends.back());
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
    const auto x = at::randn({config.in_dim, frames, height, width}, gen);
    const auto context = at::randn({64, config.text_dim}, gen);
    const auto t = at::tensor(std::vector<int64_t>{999});
    std::printf("reduced 1.3B DiT: %ld block(s), %.1f M parameters\n", layers,
                wan::models::wan_dit_parameter_count(config) / 1e6);
    const auto phase = begin_phase();
    auto out = model->forward({x}, t, {context}, tokens);
    end_phase("DiT forward (" + wan::models::to_string(backends.back()) + " attention)", phase);
    std::printf("  output [%ld, %ld, %ld, %ld]; checksum %.6f\n", out[0].size(0), out[0].size(1),
                out[0].size(2), out[0].size(3), out[0].abs().mean().item<double>());
  }
  return 0;
}
