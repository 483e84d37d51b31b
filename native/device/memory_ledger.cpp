#include "device/memory_ledger.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"

namespace wan::device {

MemoryLedger::MemoryLedger(Sampler sample, PeakReset reset_peaks)
    : sample_(std::move(sample)), reset_peaks_(std::move(reset_peaks)) {}

void MemoryLedger::begin_stage(std::string node_id, std::string class_type) {
  if (open_) end_stage(StageOutcome::failure("stage not ended"));
  current_ = StageRecord{};
  current_.node_id = std::move(node_id);
  current_.class_type = std::move(class_type);
  computed_on_.clear();
  if (reset_peaks_) reset_peaks_();
  started_ = std::chrono::steady_clock::now();
  open_ = true;
}

void MemoryLedger::end_stage(const StageOutcome& outcome) {
  if (!open_) return;
  current_.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  current_.outcome = outcome;
  if (sample_) {
    MemorySample sample = sample_();
    current_.devices = std::move(sample.devices);
    current_.models = std::move(sample.models);
  }
  for (const auto& [model, device] : computed_on_) {
    for (auto& m : current_.models) {
      if (m.name == model) m.computed_on = device;
    }
  }
  stages_.push_back(std::move(current_));
  current_ = StageRecord{};
  open_ = false;
}

std::string MemoryLedger::current_label() const {
  if (!open_) return "";
  return current_.class_type + " (node " + current_.node_id + ")";
}

void MemoryLedger::add_transfer(int64_t bytes_in, int64_t bytes_out, double seconds) {
  if (!open_) return;
  current_.bytes_in += bytes_in;
  current_.bytes_out += bytes_out;
  current_.transfer_s += seconds;
}

void MemoryLedger::note_computed_on(const std::string& model, const std::string& device) {
  if (!open_) return;
  for (auto& entry : computed_on_) {
    if (entry.first == model) {
      entry.second = device;
      return;
    }
  }
  computed_on_.emplace_back(model, device);
}

nlohmann::json MemoryLedger::to_json() const {
  using nlohmann::json;
  json devices = json::array();
  std::vector<std::string> device_names;
  json models = json::object();
  for (const auto& stage : stages_) {
    for (const auto& d : stage.devices) {
      if (std::find(device_names.begin(), device_names.end(), d.device) != device_names.end()) {
        continue;
      }
      device_names.push_back(d.device);
      devices.push_back(
          {{"name", d.device},
           {"bytes_capacity", d.bytes_capacity >= 0 ? json(d.bytes_capacity) : json(nullptr)}});
    }
    for (const auto& m : stage.models) {
      models[m.name] = {{"placement", m.placement}, {"bytes", m.bytes}};
    }
  }
  json nodes = json::array();
  for (const auto& stage : stages_) {
    json node;
    node["node"] = stage.node_id;
    node["class_type"] = stage.class_type;
    json after = json::object(), peak = json::object();
    for (const auto& d : stage.devices) {
      after[d.device] = d.bytes_held;
      peak[d.device] = d.bytes_peak;
    }
    node["bytes_after"] = after;
    node["bytes_peak"] = peak;
    json where = json::object(), computed = json::object();
    for (const auto& m : stage.models) {
      where[m.name] = m.location;
      if (!m.computed_on.empty()) computed[m.name] = m.computed_on;
    }
    node["models"] = where;
    node["computed_on"] = computed;
    node["transfers"] = {{"bytes_in", stage.bytes_in},
                         {"bytes_out", stage.bytes_out},
                         {"seconds", stage.transfer_s}};
    node["wall_s"] = stage.wall_s;
    node["outcome"] = stage.outcome.ok ? "ok" : "error";
    if (!stage.outcome.ok) node["error"] = stage.outcome.error;
    nodes.push_back(std::move(node));
  }
  return {{"devices", devices}, {"models", models}, {"nodes", nodes}};
}

namespace {

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string num(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", value);
  return buf;
}

// Distinct, print-friendly fills for model bands; activations are grey.
const char* band_color(size_t index) {
  static const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1",
                                  "#76b7b2", "#edc948", "#ff9da7", "#9c755f"};
  return kColors[index % (sizeof(kColors) / sizeof(kColors[0]))];
}
constexpr const char* kActivationColor = "#bab0ac";

// Geometry of the chart; one panel per device, stages as columns.
constexpr double kWidth = 960, kLeft = 90, kRight = 20, kPanelHeight = 220, kPanelGap = 110;
constexpr double kTop = 60;

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw Error("cannot write memory report " + tmp.string());
    out << text;
    if (!out.flush()) throw Error("cannot write memory report " + tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

std::string MemoryLedger::to_svg() const {
  // Devices and models in order of first appearance keep colors stable across stages.
  std::vector<std::string> devices, models;
  for (const auto& stage : stages_) {
    for (const auto& d : stage.devices) {
      if (std::find(devices.begin(), devices.end(), d.device) == devices.end()) {
        devices.push_back(d.device);
      }
    }
    for (const auto& m : stage.models) {
      if (std::find(models.begin(), models.end(), m.name) == models.end()) {
        models.push_back(m.name);
      }
    }
  }
  const size_t n = std::max<size_t>(stages_.size(), 1);
  const double plot_width = kWidth - kLeft - kRight;
  const double column = plot_width / static_cast<double>(n);
  const double height =
      kTop + static_cast<double>(std::max<size_t>(devices.size(), 1)) * (kPanelHeight + kPanelGap);

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(kWidth) << "\" height=\""
      << num(height) << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg << "<title>memory timeline</title>\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";

  // Legend: one swatch per model band, activations, the held line and the cap.
  double x = kLeft;
  auto swatch = [&](const std::string& label, const std::string& color) {
    svg << "<rect x=\"" << num(x) << "\" y=\"14\" width=\"12\" height=\"12\" fill=\"" << color
        << "\"/><text x=\"" << num(x + 16) << "\" y=\"24\">" << xml_escape(label) << "</text>\n";
    x += 28 + 7.0 * static_cast<double>(label.size());
  };
  for (size_t i = 0; i < models.size(); ++i) swatch(models[i] + " weights", band_color(i));
  swatch("activations", kActivationColor);
  svg << "<text x=\"" << num(kLeft)
      << "\" y=\"44\">line: bytes held after each node; dashed: "
         "usable capacity</text>\n";

  for (size_t p = 0; p < devices.size(); ++p) {
    const std::string& device = devices[p];
    const double top = kTop + static_cast<double>(p) * (kPanelHeight + kPanelGap);
    const double bottom = top + kPanelHeight;
    int64_t capacity = -1, scale = 1, peak = 0;
    for (const auto& stage : stages_) {
      for (const auto& d : stage.devices) {
        if (d.device != device) continue;
        capacity = std::max(capacity, d.bytes_capacity);
        peak = std::max({peak, d.bytes_peak, d.bytes_held});
        scale = std::max({scale, peak, d.bytes_capacity});
      }
    }
    auto y_of = [&](double bytes) {
      return bottom - kPanelHeight * bytes / (static_cast<double>(scale) * 1.08);
    };
    svg << "<g id=\"device-" << xml_escape(device) << "\">\n";
    svg << "<text x=\"10\" y=\"" << num(top + 12) << "\" font-weight=\"bold\">"
        << xml_escape(device) << "</text>\n";
    // Below the capacity label, which sits at the top of the panel when the cap sets the scale.
    svg << "<text x=\"10\" y=\"" << num(top + 44) << "\">peak " << xml_escape(format_bytes(peak))
        << "</text>\n";
    svg << "<line x1=\"" << num(kLeft) << "\" y1=\"" << num(bottom) << "\" x2=\""
        << num(kWidth - kRight) << "\" y2=\"" << num(bottom) << "\" stroke=\"black\"/>\n";

    std::string held_points;
    for (size_t s = 0; s < stages_.size(); ++s) {
      const StageRecord& stage = stages_[s];
      const DeviceMemory* mem = nullptr;
      for (const auto& d : stage.devices) {
        if (d.device == device) mem = &d;
      }
      if (mem == nullptr) continue;
      const double x0 = kLeft + column * static_cast<double>(s) + column * 0.15;
      const double bar = column * 0.7;
      // Weights on this device during the stage, stacked in model order.
      int64_t stacked = 0;
      for (size_t i = 0; i < models.size(); ++i) {
        for (const auto& m : stage.models) {
          if (m.name != models[i]) continue;
          // Offloaded weights count on both panels while in: their CPU copies stay held.
          if (m.location != device && m.computed_on != device) continue;
          const double y1 = y_of(static_cast<double>(stacked));
          const double y2 = y_of(static_cast<double>(stacked + m.bytes));
          svg << "<rect data-band=\"" << xml_escape(m.name) << "\" x=\"" << num(x0) << "\" y=\""
              << num(y2) << "\" width=\"" << num(bar) << "\" height=\"" << num(y1 - y2)
              << "\" fill=\"" << band_color(i) << "\"><title>" << xml_escape(m.name) << ": "
              << xml_escape(format_bytes(m.bytes)) << "</title></rect>\n";
          stacked += m.bytes;
        }
      }
      const int64_t activations = std::max<int64_t>(0, mem->bytes_peak - stacked);
      if (activations > 0) {
        const double y1 = y_of(static_cast<double>(stacked));
        const double y2 = y_of(static_cast<double>(stacked + activations));
        svg << "<rect data-band=\"activations\" x=\"" << num(x0) << "\" y=\"" << num(y2)
            << "\" width=\"" << num(bar) << "\" height=\"" << num(y1 - y2) << "\" fill=\""
            << kActivationColor
            << "\"><title>activations and other: " << xml_escape(format_bytes(activations))
            << "</title></rect>\n";
      }
      held_points +=
          num(x0 + bar / 2) + "," + num(y_of(static_cast<double>(mem->bytes_held))) + " ";
      // Stage label under the axis, rotated so long class names fit.
      const double lx = x0 + bar / 2, ly = bottom + 12;
      svg << "<text x=\"" << num(lx) << "\" y=\"" << num(ly) << "\" transform=\"rotate(30 "
          << num(lx) << " " << num(ly) << ")\"" << (stage.outcome.ok ? "" : " fill=\"#c00\"") << ">"
          << xml_escape(stage.node_id + " " + stage.class_type)
          << (stage.outcome.ok ? "" : " (error)") << "</text>\n";
    }
    if (!held_points.empty()) {
      held_points.pop_back();
      svg << "<polyline data-line=\"held\" points=\"" << held_points
          << "\" fill=\"none\" stroke=\"black\" stroke-width=\"1.5\"/>\n";
    }
    if (capacity > 0) {
      const double y = y_of(static_cast<double>(capacity));
      svg << "<line id=\"cap-" << xml_escape(device) << "\" x1=\"" << num(kLeft) << "\" y1=\""
          << num(y) << "\" x2=\"" << num(kWidth - kRight) << "\" y2=\"" << num(y)
          << "\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>\n";
      // Under the device name when the cap is the top of the scale.
      svg << "<text x=\"10\" y=\"" << num(std::max(y + 4, top + 28)) << "\" fill=\"#c00\">cap "
          << xml_escape(format_bytes(capacity)) << "</text>\n";
    }
    svg << "</g>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

void MemoryLedger::write_json(const std::filesystem::path& path) const {
  write_file(path, to_json().dump(2) + "\n");
}

void MemoryLedger::write_svg(const std::filesystem::path& path) const {
  write_file(path, to_svg());
}

}  // namespace wan::device
