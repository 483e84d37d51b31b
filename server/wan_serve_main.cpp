// wan-serve: ComfyUI's frontend and HTTP/WebSocket API over the wan-native engine. See
// docs/server.md.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include "core/error.h"
#include "server/comfy_server.h"
#include "server/engine.h"
#include "server/server_options.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 2;
constexpr int kExitFailure = 3;

int serve(int argc, char** argv) {
  using namespace wan::server;
  spdlog::set_default_logger(spdlog::stderr_color_mt("wan-serve"));
  ServerOptions options;
  try {
    options = ServerOptions::parse(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const ServerUsageError& e) {
    std::fprintf(stderr, "wan-serve: %s\n(see wan-serve --help)\n", e.what());
    return kExitInvalid;
  }
  if (options.help) {
    std::printf("%s", server_usage().c_str());
    return kExitOk;
  }
  spdlog::set_level(spdlog::level::info);
  for (const auto& arg : options.engine_args)
    if (arg == "--verbose") spdlog::set_level(spdlog::level::debug);

  // Signals are taken by sigwait below, never by whichever thread happens to run.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop_signals, signal_number);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error code, not the end
  signal(SIGXFSZ, SIG_IGN);

  // The frontend first: a wrong --front-end-root changes nothing (no folders made, no device).
  std::vector<std::string> searched;
  const auto front_end = find_front_end_root(options, argv[0], &searched);
  if (front_end.empty()) {
    std::string places;
    for (const auto& place : searched) places += "\n  " + place;
    if (!options.front_end_root.empty()) {
      std::fprintf(stderr, "wan-serve: --front-end-root '%s' holds no index.html\n",
                   options.front_end_root.c_str());
      return kExitInvalid;
    }
    spdlog::warn("no ComfyUI frontend found (pip install comfyui-frontend-package==1.27.10, or "
                 "--front-end-root DIR); serving the API only. Looked in:{}", places);
  } else {
    spdlog::info("frontend: {}", front_end.string());
  }
  if (options.preview_method == "taesd")
    spdlog::warn("--preview-method taesd: Wan has no TAESD decoder; previews use latent2rgb");
  else if (options.preview_method != "none")
    spdlog::info("latent previews: latent2rgb after each sampling step");
  std::unique_ptr<Engine> engine;
  try {
    engine = std::make_unique<Engine>(options.engine_args);
  } catch (const wan::ValidationError& e) {
    std::fprintf(stderr, "wan-serve: %s\n(see wan-serve --help)\n", e.what());
    return kExitInvalid;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wan-serve: cannot start the engine: %s\n", e.what());
    return kExitFailure;
  }

  if (options.listen != "127.0.0.1" && options.listen != "::1" && options.token.empty())
    spdlog::warn("listening on {} without --token: anyone who reaches this port can run "
                 "workflows and read outputs", options.listen);

  std::unique_ptr<ComfyServer> server;
  try {
    server = std::make_unique<ComfyServer>(options, *engine, front_end);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wan-serve: %s\n", e.what());
    return kExitFailure;
  }
  const std::string host = options.listen.find(':') != std::string::npos
                               ? "[" + options.listen + "]"
                               : options.listen;
  // One line on stdout with the address, for scripts (port 0 picks one).
  std::printf("wan-serve: listening on http://%s:%u\n", host.c_str(), server->port());
  std::fflush(stdout);

  int received = 0;
  sigwait(&stop_signals, &received);
  spdlog::info("stopping ({})", received == SIGINT ? "SIGINT" : received == SIGTERM ? "SIGTERM"
                                                                                    : "SIGHUP");
  server->stop();
  server.reset();
  engine.reset();
  spdlog::shutdown();
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return serve(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wan-serve: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "wan-serve: internal error: an unknown exception\n");
  }
  return kExitFailure;
}
