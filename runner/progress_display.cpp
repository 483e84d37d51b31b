#include "runner/progress_display.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>

namespace wan::runner {

namespace {

constexpr int kBarWidth = 30;

// An spdlog sink that hands formatted lines to the display.
class DisplaySink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit DisplaySink(std::shared_ptr<ProgressDisplay> display) : display_(std::move(display)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string line(formatted.data(), formatted.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    display_->write_log_line(line);
  }
  void flush_() override {}

 private:
  std::shared_ptr<ProgressDisplay> display_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

ProgressDisplay::ProgressDisplay(std::FILE* stream, bool interactive)
    : stream_(stream), interactive_(interactive) {}

bool ProgressDisplay::is_terminal(std::FILE* stream) { return isatty(fileno(stream)) == 1; }

std::shared_ptr<spdlog::logger> ProgressDisplay::make_logger() {
  auto sink = std::make_shared<DisplaySink>(shared_from_this());
  sink->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  return std::make_shared<spdlog::logger>("wan", std::move(sink));
}

void ProgressDisplay::on_event(const graph::ProgressEvent& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string label = event.class_type + " (node " + event.node_id + ")";
  switch (event.kind) {
    case graph::ProgressEvent::Kind::kNodeStarted:
      label_ = label;
      step_ = steps_ = 0;
      last_plain_decile_ = -1;
      node_start_ = std::chrono::steady_clock::now();
      if (interactive_) {
        draw_locked();
      } else {
        std::fprintf(stream_, "%s: started\n", label.c_str());
      }
      break;
    case graph::ProgressEvent::Kind::kStep:
      step_ = event.step;
      steps_ = event.steps;
      if (interactive_) {
        draw_locked();
      } else if (steps_ > 0) {
        // Plain output: the first step, then every tenth of the way, so a log stays short.
        const int64_t decile = step_ * 10 / steps_;
        if (step_ == 1 || decile != last_plain_decile_) {
          last_plain_decile_ = decile;
          std::fprintf(stream_, "%s: step %lld/%lld (%.1f s)\n", label_.c_str(),
                       static_cast<long long>(step_), static_cast<long long>(steps_),
                       seconds_since(node_start_));
        }
      }
      break;
    case graph::ProgressEvent::Kind::kNodeFinished:
      clear_locked();
      std::fprintf(stream_, "%s: done in %.2f s\n", label.c_str(), event.wall_ms / 1000.0);
      label_.clear();
      break;
    case graph::ProgressEvent::Kind::kNodeCached:
      clear_locked();
      std::fprintf(stream_, "%s: cached\n", label.c_str());
      break;
  }
  std::fflush(stream_);
}

void ProgressDisplay::write_log_line(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  clear_locked();
  std::fprintf(stream_, "%s\n", line.c_str());
  if (interactive_ && !label_.empty()) draw_locked();
  std::fflush(stream_);
}

void ProgressDisplay::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  clear_locked();
  label_.clear();
  std::fflush(stream_);
}

void ProgressDisplay::draw_locked() {
  std::string line = label_;
  if (steps_ > 0) {
    const double fraction = std::min(1.0, static_cast<double>(step_) / steps_);
    const int filled = static_cast<int>(std::lround(fraction * kBarWidth));
    const double elapsed = seconds_since(node_start_);
    const double eta = step_ > 0 ? elapsed * (steps_ - step_) / step_ : 0.0;
    char tail[96];
    std::snprintf(tail, sizeof(tail), "| %lld/%lld [%.1fs<%.1fs]", static_cast<long long>(step_),
                  static_cast<long long>(steps_), elapsed, eta);
    line += " |" + std::string(filled, '#') + std::string(kBarWidth - filled, '-') + tail;
  } else {
    line += " ...";
  }
  // \r + erase-line: redraw in place.
  std::fprintf(stream_, "\r\033[K%s", line.c_str());
  bar_visible_ = true;
}

void ProgressDisplay::clear_locked() {
  if (!bar_visible_) return;
  std::fprintf(stream_, "\r\033[K");
  bar_visible_ = false;
}

}  // namespace wan::runner
