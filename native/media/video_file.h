// Reading videos as ComfyUI IMAGE tensors: a video file, a folder of frames, or a glob.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "media/image_file.h"

namespace wan::media {

// Loads frames as IMAGE float32 [F, H, W, 3] in [0, 1]. `spec` is
//   - a glob ("frames/*.png"; any of * ? [ makes it one): the matching files sorted by name,
//   - a folder: its .png/.jpg/.jpeg/.webp files (not hidden ones) sorted by name,
//   - an animated or still WebP / PNG / JPEG file: its frames (through load_image),
//   - any other file: the first video stream, decoded with libavcodec and converted to RGB24 by
//     swscale using the stream's own colour matrix and range (BT.601 when untagged).
// frame_load_cap > 0 keeps the first frame_load_cap frames (0 = all; negative is a
// ValidationError). All frames must share one size: the first file (or frame) that differs is
// named in the LoadError. Nothing matched, or no frames, is a LoadError too.
at::Tensor load_video(const std::string& spec, int64_t frame_load_cap = 0);

// What load_video(spec, frame_load_cap) gives, without decoding: frames, height, width from the
// image files' headers (probe_image), or from a video file's container: the stream's size and
// its frame count where the container records one (MP4, MOV), else its duration times its
// average frame rate, rounded up. Empty when a video file declares neither. Throws LoadError as
// load_video would for a spec that names nothing readable.
std::optional<ImageExtent> probe_video(const std::string& spec, int64_t frame_load_cap = 0);

// The frame rate of a video file's first video stream (average, else base rate), as ComfyUI's
// LoadVideo reports it. Throws LoadError naming the file when it has none.
double video_frame_rate(const std::string& path);

// The frame files `spec` (glob or folder) stands for, sorted by name; empty for a single file.
std::vector<std::string> list_frame_files(const std::string& spec);

// Sends libav* log lines to spdlog (warnings and errors as warn, the rest as debug) instead of
// stderr. Installed once per process by the readers and writers; idempotent.
void route_ffmpeg_logs();

}  // namespace wan::media
