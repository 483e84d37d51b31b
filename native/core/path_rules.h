// Where names from a workflow may point: output prefixes stay under the output folder, input files
// are regular files, model names stay inside their models folder after following symlinks. The
// validator checks these before anything runs; nodes and savers resolve names with the same
// functions, so the two can never disagree.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace wan {

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
bool is_valid_utf8(std::string_view text);

// A filename prefix split into its folder under the output folder and its last component:
// "videos/./a/../wan" -> {"videos", "wan"}.
struct OutputPrefix {
  std::string subfolder;  // "" when none
  std::string name;
};
// Throws ValidationError when the prefix is empty, holds a NUL or invalid UTF-8, is absolute, leaves
// the output folder through '..', or names no file. Placeholders (%width%) are kept as they are.
OutputPrefix parse_output_prefix(const std::string& prefix);

// Why `folder` cannot receive outputs ("" when it can): it exists and is a writable folder, or its
// nearest existing ancestor is one (so it can be created).
std::string folder_unwritable_reason(const std::filesystem::path& folder);

// ComfyUI's annotated file names: "x.png [input]", "x.png [output]", "x.png [temp]" name a file of
// that folder; a plain name is in the input folder.
enum class AnnotatedFolder { kInput, kOutput, kTemp };
struct AnnotatedName {
  std::string name;  // without the annotation
  AnnotatedFolder folder = AnnotatedFolder::kInput;
};
AnnotatedName parse_annotated_name(const std::string& name);

// Whether `name` is a glob pattern ('*', '?' or '[').
bool is_file_pattern(const std::string& name);

// The file an input names: absolute, or relative to input_dir. Throws ValidationError when the
// name is empty, holds a NUL or invalid UTF-8, does not exist or is not a regular file (a FIFO, a
// folder, a device). With allow_pattern, a glob must match at least one regular file.
std::filesystem::path check_input_file(const std::filesystem::path& input_dir,
                                       const std::string& name, bool allow_pattern);

// models_dir/folder/name after checking that the name is relative without '..', valid UTF-8
// without NUL, exists, and resolves inside models_dir/folder after following symlinks, as a
// regular file (or a folder with allow_folder). A *.index.json must list shards that pass the
// same checks. Throws ValidationError saying which rule failed and how to fix it.
std::filesystem::path resolve_model_file(const std::filesystem::path& models_dir,
                                         const std::string& folder, const std::string& name,
                                         bool allow_folder = false);
// The same checks inside `folder_dir` (a directory that holds the folder's files directly).
std::filesystem::path resolve_model_file_in(const std::filesystem::path& folder_dir,
                                            const std::string& name, bool allow_folder = false);

}  // namespace wan
