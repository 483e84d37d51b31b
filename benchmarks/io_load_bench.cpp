// Writes a synthetic checkpoint of about 1 GB in each format (safetensors, torch.save zip) and
// loads it in a fresh process, reporting load time and peak RSS against the tensor bytes.
//   io_load_bench [GiB=1.0] [folder=/tmp]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <cstdio>
#include <fstream>

#include "bench_util.h"
#include "io/safetensors.h"
#include "io/tensor_index.h"

namespace {

using wan::bench::gib;

// Tensors shaped like a transformer's: 2-D weights of a few MiB each, bf16 and fp32 mixed.
wan::io::TensorMap synthetic(double total_gib) {
  wan::io::TensorMap tensors;
  int64_t bytes = 0;
  const int64_t target = static_cast<int64_t>(total_gib * (1ll << 30));
  for (int i = 0; bytes < target; ++i) {
    auto t = at::randn({1536, 1536});
    if (i % 2) t = t.to(at::kBFloat16);
    bytes += t.numel() * t.element_size();
    tensors["blocks." + std::to_string(i) + ".weight"] = t;
  }
  return tensors;
}

// The .pth is written by the real torch.save (Debian's python3-torch), reading the safetensors
// file by hand so no extra Python package is needed.
void write_pth(const std::string& path, const std::string& safetensors_path) {
  const std::string script =
      "import json,struct,torch,sys\n"
      "f=open(sys.argv[1],'rb');n=struct.unpack('<Q',f.read(8))[0];h=json.loads(f.read(n));base=8+n\n"
      "dt={'F32':torch.float32,'BF16':torch.bfloat16}\n"
      "sd={}\n"
      "for k,v in h.items():\n"
      "  if k=='__metadata__': continue\n"
      "  f.seek(base+v['data_offsets'][0]);b=bytearray(f.read(v['data_offsets'][1]-v['data_offsets'][0]))\n"
      "  sd[k]=torch.frombuffer(b,dtype=dt[v['dtype']]).reshape(v['shape'])\n"
      "torch.save(sd,sys.argv[2])\n";
  const std::string script_path = path + ".py";
  std::ofstream(script_path) << script;
  const std::string cmd = "/usr/bin/python3 " + script_path + " " + safetensors_path + " " + path;
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "writing %s with torch.save failed\n", path.c_str());
  std::remove(script_path.c_str());
}

// Loads in a child so its peak RSS is its own; touches every byte so mapped pages count.
void measure(const std::string& label, const std::string& path) {
  int fds[2];
  if (pipe(fds) != 0) return;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const int64_t rss_before = wan::bench::rss_bytes();
    const auto start = std::chrono::steady_clock::now();
    auto tensors = wan::io::load_tensors(path);
    const double load_s = wan::bench::seconds_since(start);
    int64_t tensor_bytes = 0;
    double checksum = 0;
    for (const auto& [k, v] : tensors) {
      tensor_bytes += v.numel() * v.element_size();
      checksum += v.to(at::kFloat).sum().item<double>();  // reads every byte
    }
    const double touch_s = wan::bench::seconds_since(start);
    char line[512];
    std::snprintf(line, sizeof(line),
                  "%-12s tensors %.3f GiB | load %.3f s (mapped) | load+read all %.3f s | peak RSS "
                  "%.3f GiB = %.3fx tensor bytes (checksum %.1f)\n",
                  label.c_str(), gib(tensor_bytes), load_s, touch_s,
                  gib(wan::bench::peak_rss_bytes() - rss_before),
                  static_cast<double>(wan::bench::peak_rss_bytes() - rss_before) / tensor_bytes,
                  checksum);
    (void)!write(fds[1], line, std::strlen(line));
    _exit(0);
  }
  close(fds[1]);
  char buf[512] = {};
  (void)!read(fds[0], buf, sizeof(buf) - 1);
  waitpid(pid, nullptr, 0);
  std::fputs(buf, stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const double total = argc > 1 ? std::atof(argv[1]) : 1.0;
  const std::string folder = argc > 2 ? argv[2] : "/tmp";
  const std::string st = folder + "/wan_bench_ckpt.safetensors";
  const std::string pth = folder + "/wan_bench_ckpt.pth";
  {
    auto tensors = synthetic(total);
    wan::io::save_safetensors(st, tensors);
  }
  write_pth(pth, st);
  // Drop the written files from the page cache is not possible unprivileged-portably; the numbers
  // below are warm-cache loads, and peak RSS is measured in a fresh child process.
  measure("safetensors", st);
  measure("torch zip", pth);
  std::remove(st.c_str());
  std::remove(pth.c_str());
  return 0;
}
