// ComfyUI's PromptQueue: pending prompts ordered by number, the one running, and the history of
// finished ones (oldest dropped past a bound). Thread-safe; the executor thread pops, the HTTP
// threads push, list, delete and clear.
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/engine.h"

namespace wan::server {

class PromptQueue {
 public:
  PromptQueue(size_t max_pending, size_t max_history)
      : max_pending_(max_pending), max_history_(max_history) {}

  // Adds a job; false when max_pending jobs already wait (nothing is added).
  bool push(PromptJob job);
  // The next job by number (lowest first; ties in arrival order), marked running; nullopt once
  // close() was called.
  std::optional<PromptJob> pop_blocking();
  // Files the running job's outcome in the history and clears the running slot.
  void finish(const PromptJob& job, const PromptOutcome& outcome);
  void close();

  // ComfyUI's next number for a prompt without one (front: its negative, to go first).
  double next_number(bool front);
  size_t remaining() const;  // pending + running
  // {"queue_running": [[number, id, prompt, extra_data, outputs]], "queue_pending": [...]}
  nlohmann::json queue_json() const;
  bool is_running(const std::string& prompt_id) const;
  // Removes pending jobs by id; returns how many were removed.
  size_t remove_pending(const std::vector<std::string>& prompt_ids);
  void clear_pending();

  // {id: {"prompt": [...], "outputs", "status", "meta", "memory_report"}} oldest first;
  // max_items: the newest that many (ComfyUI's offset rules).
  nlohmann::json history_json(std::optional<size_t> max_items, std::optional<size_t> offset) const;
  nlohmann::json history_entry_json(const std::string& prompt_id) const;  // {} when unknown
  // The SVG memory timeline of a finished prompt; nullopt when unknown.
  std::optional<std::string> memory_svg(const std::string& prompt_id) const;
  void remove_history(const std::vector<std::string>& prompt_ids);
  void clear_history();

 private:
  // The entry as compact JSON text, parsed when asked for: as a JSON tree it took several times
  // the memory, which grew the server with every prompt kept (up to --max-history of them).
  struct Finished {
    std::string prompt_id;
    std::string entry;
    std::string svg;
  };
  static nlohmann::json job_json(const PromptJob& job);

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<PromptJob> pending_;
  std::optional<PromptJob> running_;
  std::deque<Finished> history_;
  size_t max_pending_, max_history_;
  double number_ = 0;
  bool closed_ = false;
};

}  // namespace wan::server
