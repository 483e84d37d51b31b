// The width/height/frames inputs that Sample and the conditioning nodes share, declared once;
// the validator enforces the 4k+1 and multiple-of-16 rules from these declarations.
#pragma once
#include "graph/node_schema.h"
#include "graph/value.h"
#include "pipeline/video_shape.h"

namespace wan::nodes {

inline graph::NodeSchema& add_video_size_inputs(graph::NodeSchema& schema) {
  return schema
      .input(graph::Int("width").default_to(832).min(pipeline::kSizeMultiple).max(4096)
                 .step(pipeline::kSizeMultiple).multiple_of(pipeline::kSizeMultiple))
      .input(graph::Int("height").default_to(480).min(pipeline::kSizeMultiple).max(4096)
                 .step(pipeline::kSizeMultiple).multiple_of(pipeline::kSizeMultiple))
      .input(graph::Int("frames").default_to(81).min(1).max(1001).step(pipeline::kVaeStrideTime)
                 .multiple_of(pipeline::kVaeStrideTime, 1)
                 .tooltip("4k+1 frames"));
}

inline pipeline::VideoShape video_shape_of(const graph::Values& in) {
  return {in.integer("width"), in.integer("height"), in.integer("frames")};
}

}  // namespace wan::nodes
