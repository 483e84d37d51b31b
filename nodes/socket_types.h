// The objects that flow between nodes on the WAN_* sockets (NODES.md "Socket types"), each with
// its type name in one place: schemas declare sockets with socket<VaeSocket>("vae") and
// .output(VaeSocket::kType, "vae"), never with the string.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "device/device_manager.h"
#include "graph/node_schema.h"
#include "graph/value.h"
#include "models/t5/umt5_text_encoder.h"
#include "pipeline/conditioning.h"

namespace wan::nodes {

// A loaded model registered with the device manager; the handle says where its weights live.
template <const char* Type>
struct ModelSocket : graph::Object {
  static constexpr const char* kType = Type;
  device::ModelHandle model;
  std::string file;
  std::string type() const override { return kType; }
};

inline constexpr char kWanVae[] = "WAN_VAE";
inline constexpr char kWanDit[] = "WAN_DIT";
inline constexpr char kWanClipVision[] = "WAN_CLIP_VISION";
using VaeSocket = ModelSocket<kWanVae>;
using DitSocket = ModelSocket<kWanDit>;
using ClipVisionSocket = ModelSocket<kWanClipVision>;

// WAN_T5: the encoder (a module in the device manager) and its tokenizer.
struct T5Socket : graph::Object {
  static constexpr const char* kType = "WAN_T5";
  std::shared_ptr<models::Umt5TextEncoder> encoder;
  device::ModelHandle model;  // the encoder's weights
  std::string file;
  std::string type() const override { return kType; }
};

// WAN_TEXT: the T5 output of one prompt, trimmed to its real tokens [L, dim].
struct TextSocket : graph::Object {
  static constexpr const char* kType = "WAN_TEXT";
  at::Tensor embeddings;
  std::string text;
  std::string type() const override { return kType; }
};

// VIDEO (ComfyUI's core type): frames and their rate. Audio is not carried; a VIDEO made from a
// file keeps only its video stream.
struct VideoSocket : graph::Object {
  static constexpr const char* kType = "VIDEO";
  at::Tensor frames;  // IMAGE [F, H, W, 3] float32 in [0, 1], CPU memory
  double fps = 0;
  std::string type() const override { return kType; }
};

// WAN_COND: conditioning for I2V, FLF2V or VACE and the video shape it implies.
struct CondSocket : graph::Object {
  static constexpr const char* kType = "WAN_COND";
  pipeline::WanConditioning cond;
  std::string type() const override { return kType; }
};

// WAN_LATENT: a latent tensor [16, T, H/8, W/8] (a plain tensor, no object).
inline constexpr const char* kLatentType = "WAN_LATENT";

// The input socket of `id` taking a Socket's type.
template <class Socket>
graph::Input socket(std::string id) {
  return graph::Socket(std::move(id), Socket::kType);
}

}  // namespace wan::nodes
