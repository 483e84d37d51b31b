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
  }
  return "?";
}

Placement parse_placement(const std::string& text) {
  if (text == "gpu") return Placement::kGpu;
  if (text == "cpu") return Placement::kCpu;
  if (text == "offload") return Placement::kOffload;
  throw ValidationError("placement '" + text + "' is not one of gpu, cpu, offload");
}

const std::vector<std::string>& placement_choices() {
  static const std::vector<std::string> choices = {"gpu", "cpu", "offload"};
  return choices;
}

}  // namespace wan::device
