// Peak memory of loading a UMT5-XXL stored as ComfyUI's scaled fp8 (the shipped default
// umt5_xxl_fp8_e4m3fn_scaled.safetensors): writes a file of that shape and layout (Hugging Face
// names; every linear weight fp8 with a float32 scale_weight, the embeddings and norms bf16;
// random values), then, in a fresh process, loads it with load_umt5_text_encoder (what LoadT5
// runs, dtype bf16), encodes one prompt and reads every byte of every weight. Reports the file's
// bytes, the loader's peak RSS (VmHWM) and their ratio; goal <= 1.1.
//   t5_fp8_load_bench [folder=/tmp] [layers=24]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "io/tensor_map.h"
#include "models/t5/t5_key_layout.h"
#include "models/t5/umt5_encoder.h"
#include "models/t5/umt5_text_encoder.h"

namespace {

using wan::bench::gib;
namespace io = wan::io;
namespace models = wan::models;

bool is_linear_weight(const std::string& key, const std::vector<int64_t>& shape) {
  return shape.size() == 2 && key.find("embedding") == std::string::npos;
}

// Writes the file tensor by tensor (never the whole model in memory): header first, then each
// tensor's bytes generated in blocks of rows. Returns the file's size.
int64_t write_scaled_fp8_t5(const std::string& path, const models::Umt5Config& config) {
  // Official names and their stored dtypes, renamed to ComfyUI's layout on meta tensors.
  io::TensorMap meta;
  for (const auto& info : models::umt5_expected_tensors(config, at::kBFloat16)) {
    const bool linear = is_linear_weight(info.name, info.shape);
    meta[info.name] = at::empty(info.shape, at::TensorOptions().device(at::kMeta).dtype(
                                                linear ? at::kFloat8_e4m3fn : at::kBFloat16));
    if (linear) {
      const auto layer = info.name.substr(0, info.name.size() - std::string("weight").size());
      meta[layer + "scale_weight"] = at::empty({}, at::TensorOptions().device(at::kMeta));
    }
  }
  meta["scaled_fp8"] = at::empty({0}, at::TensorOptions().device(at::kMeta).dtype(at::kFloat8_e4m3fn));
  meta = models::official_to_hf_t5(std::move(meta));

  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [key, t] : meta) {
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[key] = {{"dtype", io::scalar_type_to_dtype(t.scalar_type())},
                   {"shape", t.sizes().vec()},
                   {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary);
  const uint64_t length = text.size();
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << text;
  // Random values drawn once per dtype and written over and over: the load does not look at
  // them, and drawing 5.7 G values would take minutes.
  const int64_t pool_elements = int64_t{32} << 20;
  const auto fp8_pool = at::randn({pool_elements}).clamp(-4, 4).to(at::kFloat8_e4m3fn);  // no NaN codes
  const auto bf16_pool = at::randn({pool_elements}).mul(0.05).to(at::kBFloat16);
  for (const auto& [key, t] : meta) {
    if (t.numel() == 0) continue;
    if (t.dim() == 0) {  // a scale
      const float scale = 0.02f;
      out.write(reinterpret_cast<const char*>(&scale), 4);
      continue;
    }
    const auto& pool = t.scalar_type() == at::kFloat8_e4m3fn ? fp8_pool : bf16_pool;
    // The norms' weights are ones.
    const auto source = t.dim() == 1 ? at::ones({t.numel()}, at::kBFloat16) : pool;
    for (int64_t done = 0; done < t.numel();) {
      const int64_t n = std::min(t.numel() - done, source.numel());
      out.write(static_cast<const char*>(source.data_ptr()), n * source.element_size());
      done += n;
    }
  }
  out.close();
  if (!out) throw std::runtime_error("writing " + path + " failed (disk full?)");
  return static_cast<int64_t>(8 + length + offset);
}

// Runs `body` in a child process and prints what it writes to the pipe.
template <typename Body>
void in_child(const Body& body) {
  int fds[2];
  if (pipe(fds) != 0) return;
  std::fflush(stdout);  // or the child would print the parent's buffered lines again
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const std::string report = body();
    (void)!write(fds[1], report.data(), report.size());
    _exit(0);
  }
  close(fds[1]);
  std::string report;
  char buf[1024];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) report.append(buf, static_cast<size_t>(n));
  waitpid(pid, nullptr, 0);
  std::fputs(report.c_str(), stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string folder = argc > 1 ? argv[1] : "/tmp";
  auto config = models::Umt5Config::umt5_xxl();
  if (argc > 2) config.num_layers(std::atoll(argv[2]));
  const std::string path = folder + "/wan_bench_umt5_fp8_scaled.safetensors";
  const std::string tokenizer = std::string(WAN_SOURCE_DIR) + "/tests/data/models/tokenizers/wan_tiny";

  in_child([&] {
    const auto start = std::chrono::steady_clock::now();
    const int64_t bytes = write_scaled_fp8_t5(path, config);
    char line[256];
    std::snprintf(line, sizeof(line), "wrote %s: %lld bytes (%.3f GiB) in %.1f s\n", path.c_str(),
                  static_cast<long long>(bytes), gib(bytes), wan::bench::seconds_since(start));
    return std::string(line);
  });

  in_child([&] {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    const int64_t file_bytes = in.tellg();
    const int64_t rss_before = wan::bench::rss_bytes();
    auto start = std::chrono::steady_clock::now();
    auto encoder = models::load_umt5_text_encoder(path, tokenizer, at::kBFloat16, 512);
    const double load_s = wan::bench::seconds_since(start);
    const int64_t peak_load = wan::bench::peak_rss_bytes();
    start = std::chrono::steady_clock::now();
    const auto context = encoder.encode("A small red fox runs across a snowy field at sunrise.");
    const double encode_s = wan::bench::seconds_since(start);
    // Every byte of every weight, so that every page of the file is resident at the peak.
    int64_t checksum = 0, weight_bytes = 0;
    for (const auto& item : encoder.encoder()->named_parameters()) {
      const auto& p = item.value();
      weight_bytes += p.numel() * static_cast<int64_t>(p.element_size());
      // In blocks: a whole-tensor sum(kLong) would first cast it to int64 (8 bytes a byte).
      const auto flat = p.contiguous().view(at::kByte).reshape({-1});
      for (int64_t offset = 0; offset < flat.numel(); offset += int64_t{1} << 24)
        checksum += flat.narrow(0, offset, std::min<int64_t>(int64_t{1} << 24, flat.numel() - offset))
                        .sum(at::kLong)
                        .item<int64_t>();
    }
    const int64_t peak = wan::bench::peak_rss_bytes();
    char line[1024];
    std::snprintf(
        line, sizeof(line),
        "layers %lld | file %lld bytes (%.3f GiB), weights in memory %.3f GiB\n"
        "load %.1f s (peak RSS after load %.3f GiB) | encode %lld tokens %.1f s | read all\n"
        "peak RSS (VmHWM) %.3f GiB = %.3fx the file (%.3fx without the %.3f GiB the process "
        "held before loading) | checksum %lld\n",
        static_cast<long long>(config.num_layers()), static_cast<long long>(file_bytes),
        gib(file_bytes), gib(weight_bytes), load_s, gib(peak_load),
        static_cast<long long>(context.size(0)), encode_s, gib(peak),
        static_cast<double>(peak) / file_bytes, static_cast<double>(peak - rss_before) / file_bytes,
        gib(rss_before), static_cast<long long>(checksum));
    return std::string(line);
  });
  std::remove(path.c_str());
  return 0;
}
