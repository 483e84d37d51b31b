// Overhead of memory accounting: a small MLP forward loop (many small allocations, where a
// per-allocation cost shows most) with the CPU allocator untracked, tracked in the host pool,
// and tracked under a capped virtual accelerator. Prints times and ratios; target < 3%.
//
//   accounting_bench [iterations=3000] [rounds=7]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "device/compute_device.h"
#include "device/tracking_allocator.h"

namespace {

using wan::device::MemoryPool;
using wan::device::MemoryPoolScope;
using wan::device::TrackingAllocator;

// Eight 64-wide layers at batch 8: ~30 small tensors per forward, so allocation dominates
// more than in any real model and the ratio is an upper bound.
struct SmallMlpImpl : torch::nn::Module {
  SmallMlpImpl() {
    for (int i = 0; i < 8; ++i) layers->push_back(torch::nn::Linear(64, 64));
    register_module("layers", layers);
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& layer : *layers) x = torch::gelu(layer->as<torch::nn::Linear>()->forward(x)) + x;
    return x;
  }
  torch::nn::ModuleList layers;
};
TORCH_MODULE(SmallMlp);

double run_loop(SmallMlp& model, const torch::Tensor& x, int iterations) {
  const auto start = std::chrono::steady_clock::now();
  double sink = 0;
  for (int i = 0; i < iterations; ++i) sink += model->forward(x).data_ptr<float>()[0];
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (sink == 12345.678) std::puts("");  // keeps the loop from being optimized away
  return seconds;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 3000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  at::set_num_threads(1);  // a single thread keeps the comparison about allocation, not scheduling
  torch::NoGradGuard no_grad;

  wan::device::ComputeDeviceOptions options;
  options.device = "cpu";
  options.vram = 4 * wan::device::kGiB;
  wan::device::ComputeDevice device(options);  // installs the tracking allocator

  SmallMlp model;
  const torch::Tensor x = torch::randn({8, 64});
  run_loop(model, x, iterations / 4);  // warm up caches and the allocator

  std::vector<double> untracked, host, budgeted;
  for (int r = 0; r < rounds; ++r) {
    // Interleaved rounds so drift in machine load hits every mode alike.
    TrackingAllocator::uninstall();
    untracked.push_back(run_loop(model, x, iterations));
    TrackingAllocator::install();
    host.push_back(run_loop(model, x, iterations));
    {
      MemoryPoolScope scope(MemoryPool::kVirtual);
      budgeted.push_back(run_loop(model, x, iterations));
    }
  }
  const double base = median(untracked);
  const double per_forward_us = 1e6 * base / iterations;
  std::printf("small MLP forward, %d iterations x %d rounds, 1 thread (median)\n", iterations,
              rounds);
  std::printf("  untracked            %8.3f s  (%.1f us/forward)\n", base, per_forward_us);
  std::printf("  tracked, host pool   %8.3f s  ratio %.4f\n", median(host), median(host) / base);
  std::printf("  tracked, vgpu capped %8.3f s  ratio %.4f\n", median(budgeted),
              median(budgeted) / base);
  const double worst = std::max(median(host), median(budgeted)) / base;
  std::printf("overhead %.2f%% (target < 3%%): %s\n", 100.0 * (worst - 1.0),
              worst < 1.03 ? "ok" : "over target");
  return 0;
}
