#include "server/prompt_queue.h"

#include <algorithm>

namespace wan::server {

using nlohmann::json;

json PromptQueue::job_json(const PromptJob& job) {
  return json::array({job.number, job.prompt_id, job.prompt, job.extra_data, job.outputs});
}

bool PromptQueue::push(PromptJob job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_.size() >= max_pending_) return false;
    // Stable: after every job of a number not above it.
    const auto at = std::upper_bound(
        pending_.begin(), pending_.end(), job.number,
        [](double number, const PromptJob& other) { return number < other.number; });
    pending_.insert(at, std::move(job));
  }
  ready_.notify_one();
  return true;
}

std::optional<PromptJob> PromptQueue::pop_blocking() {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return closed_ || !pending_.empty(); });
  if (closed_) return std::nullopt;
  running_ = std::move(pending_.front());
  pending_.pop_front();
  return running_;
}

void PromptQueue::finish(const PromptJob& job, const PromptOutcome& outcome) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (running_ && running_->prompt_id == job.prompt_id) running_.reset();
  json entry = {{"prompt", job_json(job)},
                {"outputs", outcome.outputs},
                {"status", outcome.status},
                {"meta", outcome.meta},
                {"memory_report", outcome.memory_report},
                {"memory_report_svg", "/api/memory_report/" + job.prompt_id + ".svg"}};
  history_.push_back({job.prompt_id, entry.dump(-1, ' ', false, json::error_handler_t::replace),
                      outcome.memory_svg});
  while (history_.size() > max_history_) history_.pop_front();
}

void PromptQueue::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  ready_.notify_all();
}

double PromptQueue::next_number(bool front) {
  std::lock_guard<std::mutex> lock(mutex_);
  const double number = number_++;
  return front ? -number : number;
}

size_t PromptQueue::remaining() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.size() + (running_ ? 1 : 0);
}

json PromptQueue::queue_json() const {
  std::lock_guard<std::mutex> lock(mutex_);
  json running = json::array(), pending = json::array();
  if (running_) running.push_back(job_json(*running_));
  for (const auto& job : pending_) pending.push_back(job_json(job));
  return {{"queue_running", running}, {"queue_pending", pending}};
}

bool PromptQueue::is_running(const std::string& prompt_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_ && running_->prompt_id == prompt_id;
}

size_t PromptQueue::remove_pending(const std::vector<std::string>& prompt_ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t before = pending_.size();
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                [&](const PromptJob& job) {
                                  return std::find(prompt_ids.begin(), prompt_ids.end(),
                                                   job.prompt_id) != prompt_ids.end();
                                }),
                 pending_.end());
  return before - pending_.size();
}

void PromptQueue::clear_pending() {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.clear();
}

json PromptQueue::history_json(std::optional<size_t> max_items,
                               std::optional<size_t> offset) const {
  std::lock_guard<std::mutex> lock(mutex_);
  // ComfyUI: without an offset, max_items means the newest max_items.
  size_t start = offset.value_or(0);
  if (!offset && max_items)
    start = history_.size() > *max_items ? history_.size() - *max_items : 0;
  json out = json::object();
  size_t taken = 0;
  for (size_t i = start; i < history_.size(); ++i) {
    if (max_items && taken >= *max_items) break;
    out[history_[i].prompt_id] = json::parse(history_[i].entry);
    ++taken;
  }
  return out;
}

json PromptQueue::history_entry_json(const std::string& prompt_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& finished : history_)
    if (finished.prompt_id == prompt_id) return {{prompt_id, json::parse(finished.entry)}};
  return json::object();
}

std::optional<std::string> PromptQueue::memory_svg(const std::string& prompt_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& finished : history_)
    if (finished.prompt_id == prompt_id) return finished.svg;
  return std::nullopt;
}

void PromptQueue::remove_history(const std::vector<std::string>& prompt_ids) {
  std::lock_guard<std::mutex> lock(mutex_);
  history_.erase(std::remove_if(history_.begin(), history_.end(),
                                [&](const Finished& finished) {
                                  return std::find(prompt_ids.begin(), prompt_ids.end(),
                                                   finished.prompt_id) != prompt_ids.end();
                                }),
                 history_.end());
}

void PromptQueue::clear_history() {
  std::lock_guard<std::mutex> lock(mutex_);
  history_.clear();
}

}  // namespace wan::server
