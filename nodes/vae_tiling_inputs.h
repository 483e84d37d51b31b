// The spatial tiling inputs of the nodes that run the VAE, declared once. Named and measured in
// video pixels as ComfyUI's VAEDecodeTiled (tile_size, overlap); 0 keeps the untiled pass, and
// -1 leaves the tile to the memory planner (the largest of kAutoTileSizes that fits, untiled
// first). The temporal axis needs no such inputs: it is already chunked causally, which is exact.
#pragma once
#include <string>
#include <vector>

#include "core/error.h"

#include "graph/node_registry.h"
#include "graph/node_schema.h"
#include "graph/value.h"
#include "models/vae/wan_vae.h"

namespace wan::nodes {

inline constexpr int64_t kAutoTileSize = -1;
// What the planner tries for tile_size -1, in order: untiled, then ever smaller tiles (each
// above the default overlap).
inline const std::vector<int64_t> kAutoTileSizes = {0, 1024, 768, 512, 384, 256, 192, 128};

inline graph::NodeSchema& add_vae_tiling_inputs(graph::NodeSchema& schema) {
  return schema
      .input(graph::Int("tile_size").default_to(0).min(kAutoTileSize).max(4096)
                 .step(models::kVaeStrideSpace)
                 .planner_choice(kAutoTileSize, kAutoTileSizes)
                 .optional()
                 .tooltip("Spatial tile side in pixels (a multiple of 8); 0 = untiled, -1 = the "
                          "largest that fits the device (chosen by the planner). Tiles bound "
                          "the VAE's memory by the tile area; seams are blended."))
      .input(graph::Int("overlap").default_to(64).min(0).max(4096).step(models::kVaeStrideSpace)
                 .optional()
                 .tooltip("Pixels shared by neighbouring tiles (a multiple of 8, below "
                          "tile_size); used only when tiled."));
}

// tile_size and overlap: multiples of 8, and overlap < tile_size when tiled.
inline void check_vae_tiling_inputs(const graph::NodeView& node, graph::ValidationIssues& issues) {
  const auto& in = node.literals();
  const auto eight = models::kVaeStrideSpace;
  for (const char* name : {"tile_size", "overlap"}) {
    if (std::string(name) == "tile_size" && in.has(name) && in.integer(name) == kAutoTileSize)
      continue;
    if (in.has(name) && in.integer(name) % eight != 0)
      issues.add(name, node.class_type() + " input '" + name + "': " +
                           std::to_string(in.integer(name)) + " is not a multiple of 8; use " +
                           std::to_string(in.integer(name) / eight * eight) + " or " +
                           std::to_string((in.integer(name) / eight + 1) * eight));
  }
  if (!in.has("tile_size") || !in.has("overlap")) return;
  const int64_t tile = in.integer("tile_size"), overlap = in.integer("overlap");
  if (tile > 0 && overlap >= tile)
    issues.add("overlap", node.class_type() + " input 'overlap': " + std::to_string(overlap) +
                              " must be smaller than tile_size " + std::to_string(tile) +
                              "; use at most " + std::to_string(tile - eight) +
                              " or a larger tile_size");
}

// The tiling of VaeRunOptions, in latent pixels. tile_size -1 must have been resolved by the
// planner before the run (wan-run, wan-serve and the ComfyUI binding do).
inline models::VaeRunOptions vae_run_options_of(const graph::Values& in, const std::string& where) {
  if (in.integer("tile_size") == kAutoTileSize)
    throw ValidationError(where + " input 'tile_size': -1 is chosen by the memory planner for "
                          "the whole prompt, and this run was not planned; set a tile size, or "
                          "0 for untiled");
  return models::VaeRunOptions()
      .tile_size(in.integer("tile_size") / models::kVaeStrideSpace)
      .tile_overlap(in.integer("overlap") / models::kVaeStrideSpace);
}

}  // namespace wan::nodes
