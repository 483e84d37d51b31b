#include "device/out_of_memory_message.h"

#include "core/error.h"

namespace wan::device {

std::string weight_move_oom_message(const std::string& node_label, const std::string& device,
                                    const std::string& model, Placement placement,
                                    const std::string& tensor, int64_t requested, int64_t free,
                                    int64_t capacity) {
  const std::string hint =
      placement == Placement::kGpu
          ? "try placement=offload for " + model + ", or a larger --vram"
          : "try placement=cpu for " + model + ", a smaller weight dtype, or a larger --vram";
  return node_label + ": " + device + " out of memory moving " + model + " tensor '" + tensor +
         "' (" + format_bytes(requested) + " asked, " + format_bytes(free) + " free of " +
         format_bytes(capacity) + "); the move was undone and " + model +
         " stays in CPU memory; " + hint;
}

std::string activation_oom_message(const std::string& node_label, const std::string& device,
                                   const std::string& model, const std::string& what,
                                   int64_t activations, int64_t more, int64_t free,
                                   int64_t capacity) {
  return node_label + ": " + device + " out of memory: tried to allocate " + format_bytes(more) +
         " more than free for " + what + " (estimated " + format_bytes(activations) +
         " of activations; " + format_bytes(free) + " free of " + format_bytes(capacity) +
         "); try placement=cpu for " + model + ", a smaller size, or a larger --vram";
}

}  // namespace wan::device
