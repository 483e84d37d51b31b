// The workflow metadata ComfyUI embeds in its outputs, and the small container readers around it
// (PNG chunks, TIFF/EXIF directories) shared by the image decoders and the writers.
//
// ComfyUI stores two things in every saved file: the API prompt (hidden input PROMPT) and the
// extra_pnginfo entries (hidden input EXTRA_PNGINFO, normally just {"workflow": <UI workflow>}),
// each as json.dumps text. Where they go depends on the format:
//   PNG  (nodes.py SaveImage):                 tEXt "prompt", then one tEXt per extra key.
//   WebP (comfy_api _ui.py save_animated_webp): EXIF IFD0 ASCII tags, "prompt:<json>" in 0x0110
//        (Model), extras "<key>:<json>" from 0x010F (Make) downwards.
//   MP4  (comfy_api video_types.py save_to):    container tags, extras then "prompt", written with
//        movflags=use_metadata_tags so the mp4 muxer keeps the custom keys.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wan::media {

struct OutputMetadata {
  std::optional<std::string> prompt;  // JSON text of the API prompt
  // extra_pnginfo in insertion order: key -> JSON text, e.g. {"workflow", "{...}"}.
  std::vector<std::pair<std::string, std::string>> extra;

  bool empty() const { return !prompt && extra.empty(); }
  // The JSON text of `key` ("prompt" or an extra key), or nullopt.
  std::optional<std::string> find(const std::string& key) const;
};

// Deepest nesting comfy_json_dumps writes; deeper throws Error (never a stack overflow).
inline constexpr int kMaxMetadataDepth = 256;

// Python's json.dumps(value) with its defaults (separators ", " and ": ", ensure_ascii, key order
// kept), so embedded text is byte-identical to what ComfyUI writes for the same object. Linear
// in the size of the value.
std::string comfy_json_dumps(const nlohmann::ordered_json& value);
// The same for a nlohmann::json, keys sorted (that type's order). Use it rather than converting
// to ordered_json: that conversion inserts keys in quadratic time (minutes for 400k nodes).
std::string comfy_json_dumps_sorted(const nlohmann::json& value);

// Reads the metadata back from a PNG (tEXt/iTXt/zTXt-less: tEXt only), WebP (EXIF chunk) or MP4
// (container tags) written by ComfyUI or by this library. Keys other than "prompt" become extras
// in file order. Throws LoadError naming the file when it cannot be read or has an unknown type.
OutputMetadata read_embedded_metadata(const std::string& path);

// ---- container helpers ----

// One PNG chunk as a view into the file's bytes.
struct PngChunk {
  std::string type;  // "IHDR", "tEXt", ...
  const uint8_t* data = nullptr;
  uint32_t size = 0;
};
// Splits a PNG file into chunks (stops after IEND). Throws LoadError naming `origin` when the
// signature or a chunk length is wrong. CRCs are not checked (the decoder does that).
std::vector<PngChunk> png_chunks(const uint8_t* data, size_t size, const std::string& origin);

// One ASCII entry of a TIFF directory.
struct TiffAsciiTag {
  uint16_t tag = 0;
  std::string value;  // without the NUL terminator
};
// A little-endian TIFF stream ("II*\0", IFD0 at offset 8) holding ASCII tags, sorted by tag as
// TIFF requires: the layout Pillow's Image.Exif.tobytes() gives ComfyUI's WebP metadata.
std::vector<uint8_t> build_tiff_ascii(std::vector<TiffAsciiTag> tags);
// The ASCII tags of IFD0 of a TIFF stream (either byte order); an optional "Exif\0\0" prefix is
// skipped. Malformed input gives what could be read, never an out-of-bounds access.
std::vector<TiffAsciiTag> parse_tiff_ascii(const uint8_t* data, size_t size);
// The EXIF Orientation (tag 0x0112) of IFD0, 1..8; 1 when absent or malformed.
int tiff_orientation(const uint8_t* data, size_t size);

}  // namespace wan::media
