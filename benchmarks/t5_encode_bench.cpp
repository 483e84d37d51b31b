// Encode benchmark of the full-size umt5-xxl encoder (official preset, random bf16 weights,
// 5.7e9 parameters / 10.6 GiB): one prompt of --tokens real tokens (default 20), encoded
// unpadded as Umt5TextEncoder does. Times every matmul strategy with 1 and 2 intra-op threads
// and reports how far each strategy lands from the float32-compute reference
// (kFloatWeights: bf16 weights, float32 arithmetic).
//
//   t5_encode_bench [--tokens N] [--repeats N] [--threads-max N] [--strategies 012]
//
// Strategies: 0 = bf16 GEMM (the default path), 1 = float32 GEMM on 128-row upcast blocks,
// 2 = float32 GEMM on a whole-matrix upcast. Timings need an otherwise idle machine: with other
// processes on the two cores, two OpenMP threads wait on each other at every barrier.
//
// The weights are allocated in bf16 and filled from a small random pool, tensor by tensor, so the
// process never holds a float32 copy of the model (peak ~11 GiB).
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_util.h"
#include "models/t5/umt5_encoder.h"

namespace {

using wan::models::Umt5Config;
using wan::models::Umt5Encoder;
using wan::models::Umt5EncoderOptions;
using wan::models::Umt5Matmul;

// Standard deviation the official init_weights gives a parameter. Random weights of the wrong
// scale make the attention softmax nearly one-hot, and then any rounding flips which key wins:
// the accuracy line would measure that chaos instead of the matmul strategy.
double init_std(const std::string& key, const Umt5Config& c) {
  const auto has = [&](const char* part) { return key.find(part) != std::string::npos; };
  if (has("token_embedding")) return 1.0;
  if (has("pos_embedding")) return 1.0 / std::sqrt(2.0 * c.num_buckets() * c.num_heads());
  if (has("attn.q")) return 1.0 / std::sqrt(static_cast<double>(c.dim() * c.dim_attn()));
  if (has("attn.k") || has("attn.v") || has("ffn.gate") || has("ffn.fc1"))
    return 1.0 / std::sqrt(static_cast<double>(c.dim()));
  if (has("attn.o")) return 1.0 / std::sqrt(static_cast<double>(c.num_heads() * c.dim_attn()));
  if (has("ffn.fc2")) return 1.0 / std::sqrt(static_cast<double>(c.dim_ffn()));
  return 0.0;  // norms stay at one
}

// Fills every parameter from a shared standard-normal pool (cyclic copies, scaled per tensor as
// the official init): realistic magnitudes without generating 5.7e9 random numbers.
void fill_random(Umt5Encoder& encoder) {
  at::manual_seed(0);
  const int64_t pool_size = int64_t{1} << 26;  // 64 Mi values, 128 MiB in bf16
  const auto pool = at::randn({pool_size}).to(at::kBFloat16);
  int64_t offset = 0;
  for (auto& item : encoder->named_parameters()) {
    const double scale = init_std(item.key(), encoder->config());
    if (scale == 0.0) continue;
    auto flat = item.value().view(-1);
    for (int64_t done = 0; done < flat.numel();) {
      const int64_t count = std::min(flat.numel() - done, pool_size - offset);
      flat.narrow(0, done, count).copy_(pool.narrow(0, offset, count)).mul_(scale);
      done += count;
      offset = (offset + count) % pool_size;
    }
  }
}

struct Strategy {
  const char* name;
  Umt5Matmul matmul;
  int64_t upcast_rows;
};

}  // namespace

int main(int argc, char** argv) {
  int64_t tokens = 20;
  int repeats = 3;
  int threads_max = 2;
  std::string strategy_set = "012";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--tokens") tokens = std::atoll(argv[i + 1]);
    else if (flag == "--repeats") repeats = std::atoi(argv[i + 1]);
    else if (flag == "--threads-max") threads_max = std::atoi(argv[i + 1]);
    else if (flag == "--strategies") strategy_set = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  c10::InferenceMode inference;
  const auto config = Umt5Config::umt5_xxl();

  auto start = std::chrono::steady_clock::now();
  Umt5Encoder encoder(config, Umt5EncoderOptions().dtype(at::kBFloat16));
  fill_random(encoder);
  std::printf("umt5-xxl: %lld parameters (bf16), built in %.1f s, RSS %.2f GiB\n",
              static_cast<long long>(config.parameter_count()), wan::bench::seconds_since(start),
              wan::bench::gib(wan::bench::rss_bytes()));

  auto ids = at::randint(3, config.vocab(), {1, tokens}, at::kLong);
  ids[0][tokens - 1] = 1;  // EOS

  const std::vector<Strategy> strategies = {
      {"bf16 GEMM, activations rounded to bf16", Umt5Matmul::kReducedInputs, 0},
      {"fp32 GEMM, weight upcast in 128-row blocks", Umt5Matmul::kFloatWeights, 128},
      {"fp32 GEMM, whole weight upcast per matmul", Umt5Matmul::kFloatWeights, int64_t{1} << 40},
  };
  at::Tensor reference;
  std::vector<at::Tensor> outputs(strategies.size());
  for (int threads = 1; threads <= threads_max; ++threads) {
    at::set_num_threads(threads);
    for (size_t s = 0; s < strategies.size(); ++s) {
      if (strategy_set.find(static_cast<char>('0' + s)) == std::string::npos) continue;
      encoder->set_matmul(strategies[s].matmul, strategies[s].upcast_rows);
      encoder->forward(ids);  // warm-up: page-in, oneDNN kernel creation
      double best = 1e30, total = 0;
      for (int r = 0; r < repeats; ++r) {
        start = std::chrono::steady_clock::now();
        outputs[s] = encoder->forward(ids);
        const double t = wan::bench::seconds_since(start);
        best = std::min(best, t);
        total += t;
      }
      std::printf("threads=%d  %-46s  best %.3f s  mean %.3f s\n", threads, strategies[s].name,
                  best, total / repeats);
    }
  }
  // Accuracy relative to float32 arithmetic on the same bf16 weights (strategy 1).
  if (!outputs[1].defined()) {
    encoder->set_matmul(Umt5Matmul::kFloatWeights, 128);
    outputs[1] = encoder->forward(ids);
  }
  reference = outputs[1];
  const double scale = reference.abs().max().item<double>();
  for (size_t s = 0; s < strategies.size(); ++s) {
    if (!outputs[s].defined()) continue;
    const double err = (outputs[s] - reference).abs().max().item<double>();
    std::printf("%-46s  max abs diff vs fp32 arithmetic %.3g (output max |x| %.3g)\n",
                strategies[s].name, err, scale);
  }
  std::printf("peak RSS %.2f GiB\n", wan::bench::gib(wan::bench::peak_rss_bytes()));
  return 0;
}
