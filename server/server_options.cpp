#include "server/server_options.h"

#include <cstdlib>
#include <sstream>

#ifndef WAN_FRONT_END_ROOT
#define WAN_FRONT_END_ROOT ""
#endif

namespace wan::server {

namespace fs = std::filesystem;

namespace {

size_t parse_count(const std::string& flag, const std::string& text, size_t min, size_t max) {
  size_t used = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || text[0] == '-' || value < min || value > max)
    throw ServerUsageError(flag + " '" + text + "': expected a whole number from " +
                           std::to_string(min) + " to " + std::to_string(max));
  return static_cast<size_t>(value);
}

double parse_seconds(const std::string& flag, const std::string& text, double max) {
  size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || !(value >= 0 && value <= max))
    throw ServerUsageError(flag + " '" + text + "': expected seconds from 0 to " +
                           std::to_string(static_cast<int>(max)));
  return value;
}

}  // namespace

ServerOptions ServerOptions::parse(const std::vector<std::string>& args) {
  ServerOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i], value;
    bool has_value = false;
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto take = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= args.size()) throw ServerUsageError(arg + " needs a value");
      return args[++i];
    };
    if (arg == "--help" || arg == "-h") {
      options.help = true;
    } else if (arg == "--listen") {
      // Bare --listen: every IPv4 address, as ComfyUI's bare --listen.
      if (has_value) options.listen = value;
      else if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) options.listen = args[++i];
      else options.listen = "0.0.0.0";
    } else if (arg == "--port") {
      options.port = static_cast<uint16_t>(parse_count(arg, take(), 0, 65535));
    } else if (arg == "--front-end-root") {
      options.front_end_root = take();
    } else if (arg == "--user-directory") {
      options.user_dir = take();
    } else if (arg == "--token") {
      options.token = take();
      if (options.token.size() < 16)
        throw ServerUsageError("--token: use at least 16 characters");
    } else if (arg == "--max-upload-size") {
      options.max_upload_bytes = parse_count(arg, take(), 1, 4096) << 20;
    } else if (arg == "--max-queue") {
      options.max_queue = parse_count(arg, take(), 1, 1000000);
    } else if (arg == "--preview-method") {
      options.preview_method = take();
      if (options.preview_method != "none" && options.preview_method != "auto" &&
          options.preview_method != "latent2rgb" && options.preview_method != "taesd")
        throw ServerUsageError("--preview-method '" + options.preview_method +
                               "': expected none, auto, latent2rgb or taesd");
    } else if (arg == "--ws-keepalive") {
      options.ws_keepalive_s = parse_seconds(arg, take(), 3600);
    } else if (arg == "--io-threads") {
      options.io_threads = static_cast<int>(parse_count(arg, take(), 1, 64));
    } else {
      // wan-run's engine flags, checked by its own table; keep their values with them.
      options.engine_args.push_back(args[i]);
    }
  }
  return options;
}

std::string server_usage() {
  std::ostringstream out;
  out << "usage: wan-serve --models DIR [--listen [ADDR]] [--port N] [--token TOKEN]\n"
         "                 [--front-end-root DIR] [--user-directory DIR] [--output DIR]\n"
         "                 [--input DIR] [--temp DIR] [--device D] [--vram SIZE] [--reserve SIZE]\n"
         "\n"
         "Serves ComfyUI's frontend and its HTTP/WebSocket API over the wan-native engine\n"
         "(docs/server.md).\n\n"
         "  --listen [ADDR]        address to bind (default 127.0.0.1; bare --listen: 0.0.0.0)\n"
         "  --port N               port (default 8188; 0 picks a free one, printed at start)\n"
         "  --token TOKEN          require it on every request: 'Authorization: Bearer TOKEN',\n"
         "                         ?token=TOKEN (the page sets a cookie from it) (>= 16 chars)\n"
         "  --front-end-root DIR   the frontend's static folder (default: the\n"
         "                         comfyui-frontend-package of the build's Python environment)\n"
         "  --user-directory DIR   settings and saved workflows (default ./user)\n"
         "  --max-upload-size MB   largest request body (default 100)\n"
         "  --max-queue N          pending prompts before /prompt answers 503 (default 1000)\n"
         "  --io-threads N         HTTP threads (default 4)\n"
         "  --preview-method M     latent previews while sampling: none (default), auto,\n"
         "                         latent2rgb, taesd (auto and taesd give latent2rgb)\n"
         "  --ws-keepalive SECONDS while prompts are queued or running, a status message to\n"
         "                         every socket at least this often (default 5; 0: never)\n"
         "\n"
         "Engine flags as wan-run's: --models DIR (required), --output DIR, --input DIR,\n"
         "--temp DIR, --device auto|cpu|cuda[:N], --vram SIZE, --reserve SIZE, --page-lock SIZE,\n"
         "--threads N, --disable-metadata, --verbose.\n";
  return out.str();
}

fs::path find_front_end_root(const ServerOptions& options, const fs::path& executable,
                             std::vector<std::string>* searched) {
  auto usable = [&](const fs::path& folder) {
    if (folder.empty()) return false;
    searched->push_back(folder.string());
    std::error_code ec;
    return fs::is_regular_file(folder / "index.html", ec);
  };
  if (!options.front_end_root.empty())
    return usable(options.front_end_root) ? options.front_end_root : fs::path();
  if (const char* env = std::getenv("WAN_FRONT_END_ROOT"); env && *env)
    return usable(env) ? fs::path(env) : fs::path();
  if (usable(WAN_FRONT_END_ROOT)) return WAN_FRONT_END_ROOT;
  std::error_code ec;
  for (fs::path dir = fs::weakly_canonical(executable, ec).parent_path(); !dir.empty();
       dir = dir.parent_path()) {
    const fs::path lib = dir / ".venv" / "lib";
    if (fs::is_directory(lib, ec)) {
      for (const auto& entry : fs::directory_iterator(lib, ec)) {
        const fs::path candidate = entry.path() / "site-packages" / "comfyui_frontend_package" /
                                   "static";
        if (entry.path().filename().string().rfind("python3", 0) == 0 && usable(candidate))
          return candidate;
      }
    }
    if (dir == dir.root_path()) break;
  }
  return fs::path();
}

}  // namespace wan::server
