// What the user sees while a workflow runs, on stderr: a single-line progress bar redrawn in
// place on a terminal, plain log lines otherwise (CI logs, pipes). Log records go through the
// same object so that a log line never lands in the middle of the bar.
#pragma once
#include <spdlog/logger.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "graph/node_registry.h"

namespace wan::runner {

class ProgressDisplay : public std::enable_shared_from_this<ProgressDisplay> {
 public:
  // `interactive`: draw the bar (stderr is a terminal); otherwise print plain lines.
  ProgressDisplay(std::FILE* stream, bool interactive);

  // Whether `stream` is a terminal (isatty).
  static bool is_terminal(std::FILE* stream);

  // Feeds the executor's events (RunContext::on_progress).
  void on_event(const graph::ProgressEvent& event);
  // Writes one finished log line, clearing the bar first and redrawing it after.
  void write_log_line(const std::string& line);
  // Ends the bar's line (call before printing a final message).
  void finish();

  // A logger writing through this display ("wan" by name), for spdlog::set_default_logger.
  std::shared_ptr<spdlog::logger> make_logger();

 private:
  void draw_locked();
  void clear_locked();

  std::FILE* stream_;
  bool interactive_;
  std::mutex mutex_;
  bool bar_visible_ = false;
  std::string label_;  // "Sample (node 7)"
  int64_t step_ = 0, steps_ = 0;
  int64_t last_plain_decile_ = -1;
  std::chrono::steady_clock::time_point node_start_;
};

}  // namespace wan::runner
