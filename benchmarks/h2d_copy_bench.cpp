// Host-to-device copy bandwidth, from pageable and from pinned host memory, and back: what an
// offloaded model's move in costs per byte (docs/gpu.md). Without a CUDA device it measures the
// virtual accelerator's move (a CPU clone into a preallocated tensor) and says so; pinned memory
// needs CUDA and is reported as unavailable then.
//
//   h2d_copy_bench [--mib N] [--repeats R] [--json FILE]
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "bench_util.h"
#include "device/cuda_backend.h"

namespace {

using wan::bench::seconds_since;

struct Options {
  int64_t mib = 256;
  int repeats = 10;
  std::string json;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "h2d_copy_bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--mib") o.mib = std::stoll(value());
    else if (arg == "--repeats") o.repeats = std::stoi(value());
    else if (arg == "--json") o.json = value();
    else {
      std::fprintf(stderr, "usage: h2d_copy_bench [--mib N] [--repeats R] [--json FILE]\n");
      std::exit(2);
    }
  }
  if (o.mib < 1 || o.repeats < 1) {
    std::fprintf(stderr, "h2d_copy_bench: --mib and --repeats must be at least 1\n");
    std::exit(2);
  }
  return o;
}

void synchronize(const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// GB/s (10^9 bytes per second) of `repeats` copies of src into dst, after one warm-up copy.
double bandwidth(at::Tensor& dst, const at::Tensor& src, int repeats) {
  const at::Device sync_on = dst.device().is_cuda() ? dst.device() : src.device();
  dst.copy_(src);
  synchronize(sync_on);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) dst.copy_(src);
  synchronize(sync_on);
  const double seconds = seconds_since(start);
  return static_cast<double>(src.nbytes()) * repeats / seconds / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const int64_t elements = o.mib * (int64_t{1} << 20) / 4;
  const bool cuda = wan::device::cuda_backend::available();
  const at::Device device = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  const std::string target = cuda ? "cuda:0" : "cpu (no CUDA device: " +
                                                   wan::device::cuda_backend::unavailable_reason() +
                                                   "; a host copy, as the virtual accelerator moves)";
  at::Tensor pageable = at::rand({elements});
  at::Tensor on_device = at::empty({elements}, at::TensorOptions(device));

  const double h2d_pageable = bandwidth(on_device, pageable, o.repeats);
  const double d2h_pageable = bandwidth(pageable, on_device, o.repeats);
  std::printf("h2d_copy_bench: %lld MiB x %d to %s\n", static_cast<long long>(o.mib), o.repeats,
              target.c_str());
  std::printf("  pageable host -> device %.2f GB/s, device -> host %.2f GB/s\n", h2d_pageable,
              d2h_pageable);
  double h2d_pinned = -1, d2h_pinned = -1;
  if (cuda) {
    at::Tensor pinned = at::empty({elements}, at::TensorOptions().pinned_memory(true));
    pinned.copy_(pageable);
    h2d_pinned = bandwidth(on_device, pinned, o.repeats);
    d2h_pinned = bandwidth(pinned, on_device, o.repeats);
    std::printf("  pinned   host -> device %.2f GB/s, device -> host %.2f GB/s (%.2fx pageable)\n",
                h2d_pinned, d2h_pinned, h2d_pinned / h2d_pageable);
  } else {
    std::printf("  pinned: not available without a CUDA device\n");
  }
  if (!o.json.empty()) {
    std::ofstream out(o.json);
    auto number = [](double v) { return v < 0 ? std::string("null") : std::to_string(v); };
    out << "{\"device\": \"" << (cuda ? "cuda:0" : "cpu") << "\", \"mib\": " << o.mib
        << ", \"repeats\": " << o.repeats << ", \"h2d_pageable_gbps\": " << number(h2d_pageable)
        << ", \"d2h_pageable_gbps\": " << number(d2h_pageable)
        << ", \"h2d_pinned_gbps\": " << number(h2d_pinned)
        << ", \"d2h_pinned_gbps\": " << number(d2h_pinned) << "}\n";
    if (!out) {
      std::fprintf(stderr, "h2d_copy_bench: cannot write %s\n", o.json.c_str());
      return 3;
    }
  }
  return 0;
}
