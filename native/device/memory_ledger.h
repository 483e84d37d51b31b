// A timeline of a run's memory, one stage per executed node: what each device held after the
// node and at its peak during it, where each model's weights were, what moved and how long it
// took. Written as the `--report` JSON and as an SVG timeline (docs/memory.md shows both).
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace wan::device {

struct DeviceMemory {
  std::string device;           // "vgpu", "cuda:0", "cpu"
  int64_t bytes_held = 0;       // after the stage (or when sampled)
  int64_t bytes_peak = 0;       // highest during the stage
  int64_t bytes_capacity = -1;  // usable bytes; -1 when uncapped
};

struct ModelMemory {
  std::string name;
  std::string placement;    // "gpu", "cpu", "offload"
  std::string location;     // device holding the weights after the stage
  std::string computed_on;  // device it computed on during the stage; empty when it did not
  int64_t bytes = 0;        // parameters + buffers
};

// What the ledger reads from the devices; the device manager provides it.
struct MemorySample {
  std::vector<DeviceMemory> devices;
  std::vector<ModelMemory> models;
};

struct StageOutcome {
  bool ok = true;
  std::string error;
  static StageOutcome success() { return {}; }
  static StageOutcome failure(std::string message) { return {false, std::move(message)}; }
};

struct StageRecord {
  std::string node_id, class_type;
  std::vector<DeviceMemory> devices;
  std::vector<ModelMemory> models;
  int64_t bytes_in = 0;   // moved onto the compute device
  int64_t bytes_out = 0;  // released from it by moves back to the CPU
  double transfer_s = 0;
  double wall_s = 0;
  StageOutcome outcome;
};

class MemoryLedger {
 public:
  using Sampler = std::function<MemorySample()>;
  using PeakReset = std::function<void()>;

  // `sample` reads current/peak bytes per device and the models; `reset_peaks` starts a new
  // peak window on every device.
  MemoryLedger(Sampler sample, PeakReset reset_peaks);

  // Starts the stage of one node; an open stage is ended first as failed ("not ended").
  void begin_stage(std::string node_id, std::string class_type);
  void end_stage(const StageOutcome& outcome = StageOutcome::success());
  bool in_stage() const { return open_; }
  // "Sample (node 12)" for the open stage, empty outside one.
  std::string current_label() const;

  // Called by the device manager on every move; counted in the open stage (dropped outside).
  void add_transfer(int64_t bytes_in, int64_t bytes_out, double seconds);
  // A model computed on `device` during the open stage.
  void note_computed_on(const std::string& model, const std::string& device);

  const std::vector<StageRecord>& stages() const { return stages_; }
  // Forgets the finished stages (outside a stage only): a long-lived server reports each prompt
  // and then drops its stages, so the ledger does not grow with every prompt it runs.
  void clear_stages() {
    if (!open_) stages_.clear();
  }

  // {"devices": [...], "models": {...}, "nodes": [per stage, in execution order]}.
  nlohmann::json to_json() const;
  // A stacked chart per device: one band per model's weights, activations on top, the bytes
  // held after each stage as a line, the usable capacity as a dashed line.
  std::string to_svg() const;
  // Write through a temporary file and rename, so a reader never sees half a report.
  void write_json(const std::filesystem::path& path) const;
  void write_svg(const std::filesystem::path& path) const;

 private:
  Sampler sample_;
  PeakReset reset_peaks_;
  std::vector<StageRecord> stages_;
  StageRecord current_;
  std::vector<std::pair<std::string, std::string>> computed_on_;
  std::chrono::steady_clock::time_point started_;
  bool open_ = false;
};

}  // namespace wan::device
