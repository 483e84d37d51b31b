// Command-line options of `wan-serve`: its own flags, and wan-run's engine flags passed through
// to the engine (server/engine.h), so both front ends read --models, --vram, ... alike.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"

namespace wan::server {

class ServerUsageError : public Error {
 public:
  using Error::Error;
};

struct ServerOptions {
  std::string listen = "127.0.0.1";  // --listen [ADDR]; bare --listen: 0.0.0.0
  uint16_t port = 8188;              // ComfyUI's port; 0 picks a free one
  std::filesystem::path front_end_root;  // --front-end-root; empty: search (find_front_end_root)
  std::filesystem::path user_dir = "user";  // settings and saved workflows: <dir>/default/
  std::string token;                 // --token: required of every request when set
  size_t max_upload_bytes = size_t(100) << 20;  // --max-upload-size MB (ComfyUI's flag)
  size_t max_queue = 1000;           // pending prompts; more get 503
  size_t max_history = 10000;        // ComfyUI's MAXIMUM_HISTORY_SIZE
  int io_threads = 4;
  // --ws-keepalive SECONDS: while prompts are queued or running, every socket gets a status
  // message at least this often (0: never). Clients such as @saintno/comfyui-sdk drop a socket
  // silent for 10 s and fail their prompt, which a long node (a VAE decode) or another client's
  // prompt ahead in the queue would otherwise cause.
  double ws_keepalive_s = 5;
  // --preview-method none|auto|latent2rgb|taesd (ComfyUI's flag and default): latent previews
  // after each sampling step. auto and taesd give latent2rgb (there is no TAESD decoder for Wan).
  std::string preview_method = "none";
  bool help = false;
  std::vector<std::string> engine_args;  // wan-run flags for the engine

  // Throws ServerUsageError naming the argument.
  static ServerOptions parse(const std::vector<std::string>& args);
};

std::string server_usage();

// The frontend's folder: --front-end-root, else $WAN_FRONT_END_ROOT, else the
// comfyui-frontend-package found in the build's Python environment at configure time, else
// .venv/lib/python3*/site-packages/comfyui_frontend_package/static beside or above the binary.
// Empty when none holds an index.html; `searched` lists the places tried.
std::filesystem::path find_front_end_root(const ServerOptions& options,
                                          const std::filesystem::path& executable,
                                          std::vector<std::string>* searched);

}  // namespace wan::server
