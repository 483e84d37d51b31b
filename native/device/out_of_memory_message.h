// The out-of-memory messages the device manager throws and the memory planner predicts, written
// in one place so that a plan's message is the run's, word for word.
#pragma once
#include <cstdint>
#include <string>

#include "device/placement.h"

namespace wan::device {

// Moving `model`'s tensor `tensor` (`requested` bytes) onto `device` failed with `free` of
// `capacity` bytes left: the move is undone, and the message says what to change.
std::string weight_move_oom_message(const std::string& node_label, const std::string& device,
                                    const std::string& model, Placement placement,
                                    const std::string& tensor, int64_t requested, int64_t free,
                                    int64_t capacity);

// A computation's activations (`what`, estimated `activations` bytes) do not fit: `more` bytes
// beyond the `free` of `capacity`.
std::string activation_oom_message(const std::string& node_label, const std::string& device,
                                   const std::string& model, const std::string& what,
                                   int64_t activations, int64_t more, int64_t free,
                                   int64_t capacity);

}  // namespace wan::device
