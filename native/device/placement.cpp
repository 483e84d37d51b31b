#include "device/placement.h"

#include "core/error.h"

namespace wan::device {

const char* placement_name(Placement placement) {
  switch (placement) {
    case Placement::kGpu:
      return "gpu";
    case Placement::kCpu:
      return "cpu";
    case Placement::kOffload:
      return "offload";
    case Placement::kStream:
      return "stream";
  }
  return "?";
}

Placement parse_placement(const std::string& text) {
  if (text == "gpu") return Placement::kGpu;
  if (text == "cpu") return Placement::kCpu;
  if (text == "offload") return Placement::kOffload;
  if (text == "stream") return Placement::kStream;
  if (text == kAutoPlacement)
    throw ValidationError("placement 'auto' is chosen by the planner for the whole graph before "
                          "the run; this node ran without that plan (run it in a prompt)");
  throw ValidationError("placement '" + text + "' is not one of gpu, cpu, offload, stream, auto");
}

const std::vector<std::string>& concrete_placement_choices() {
  static const std::vector<std::string> choices = {"gpu", "cpu", "offload"};
  return choices;
}

const std::vector<std::string>& placement_choices() {
  static const std::vector<std::string> choices = [] {
    std::vector<std::string> all = concrete_placement_choices();
    all.push_back(kAutoPlacement);
    return all;
  }();
  return choices;
}

const std::vector<std::string>& stream_placement_choices() {
  static const std::vector<std::string> choices = [] {
    std::vector<std::string> all = concrete_placement_choices();
    all.push_back(placement_name(Placement::kStream));
    all.push_back(kAutoPlacement);
    return all;
  }();
  return choices;
}

}  // namespace wan::device
