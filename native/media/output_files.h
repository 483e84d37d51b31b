// Output file naming and atomic writing.
//
// Naming mirrors ComfyUI's folder_paths.get_save_image_path: a prefix such as "wan" or
// "videos/wan_%width%x%height%" becomes <output_dir>/<subfolder>/<name>_<counter:05>_.<ext>, where
// the counter continues from the highest number any entry "<name>_<digits>..." in that folder
// already uses. Unlike ComfyUI, a name is claimed with an atomic no-replace rename after the file
// is complete, so two writers racing for a counter never overwrite each other: the later one moves
// on to the next free number.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace wan::media {

// Where counter-named outputs of one prefix go.
struct OutputTarget {
  std::string folder;     // output_dir joined with subfolder (created)
  std::string subfolder;  // relative to output_dir, "" when none ("videos", "a/b")
  std::string name;       // last component of the prefix ("wan")
  int64_t counter = 1;    // first number above every existing "<name>_<n>..." entry
};

// Resolves a filename prefix under output_dir. Substitutes %width%, %height%, %year%, %month%,
// %day%, %hour%, %minute%, %second% as ComfyUI does, normalizes "." and ".." (parse_output_prefix
// in core/path_rules.h, the rule the validator checks), and creates the folder. Throws
// ValidationError when the prefix is empty, absolute, holds a NUL, or leaves output_dir.
OutputTarget resolve_output_target(const std::string& output_dir, const std::string& prefix,
                                   int64_t width = 0, int64_t height = 0);

// "<name>_<counter:05>_.<extension>"; without an extension "<name>_<counter:05>_" (a folder).
std::string counter_name(const std::string& name, int64_t counter, const std::string& extension);

// Where a counter-named output landed.
struct SavedOutput {
  std::string path;       // full path of the file (or folder)
  std::string filename;   // "wan_00003_.mp4"
  std::string subfolder;  // as in OutputTarget
};

// The writer callbacks below get a path that does not exist yet and must create exactly that
// file (or folder). They may throw; the callers then remove whatever the callback left.
using WriteFn = std::function<void(const std::string& temp_path)>;

// wan::write_atomically (core/atomic_file.h): `path` (a file or, when the writer makes one, a
// folder) through a registered temporary sibling, renamed onto `path`, replacing an existing file.
// On any exception the temporary is removed, `path` is left as it was, and the exception
// propagates; a second signal mid-write removes it too.
void write_atomically(const std::string& path, const WriteFn& write);

// Counter-named write: resolves the target, lets `write` fill a temporary name in the target
// folder, then moves it to the first free "<name>_<counter:05>_.<extension>" at or above the
// resolved counter without ever replacing an existing entry. `extension` "" names a folder.
SavedOutput save_with_counter(const std::string& output_dir, const std::string& prefix,
                              const std::string& extension, int64_t width, int64_t height,
                              const WriteFn& write);

// Whole-file read; throws LoadError naming the file.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Writes bytes to a new file at `path` (which must not exist); throws Error naming `origin`.
void write_new_file(const std::string& path, const uint8_t* data, size_t size,
                    const std::string& origin);

}  // namespace wan::media
