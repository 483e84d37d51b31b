// Names from clients (/view, uploads, user data, static files) resolved inside one folder: no
// '..', no absolute path, no NUL or invalid UTF-8, and no symlink that leads out of the folder.
#pragma once
#include <filesystem>
#include <string>

namespace wan::server {

struct ResolvedPath {
  int status = 200;             // 400 bad name, 403 outside the folder, 404 missing
  std::string error;            // why, for the response; empty when status is 200
  std::filesystem::path path;   // inside the folder (canonical folder + the name)
  bool ok() const { return status == 200; }
};

// `relative` ('/'-separated, may be empty for the folder itself) under `folder`. With
// `must_exist`, the target must exist; otherwise its nearest existing ancestor must be inside.
// Either way an existing target or ancestor is checked after following every symlink.
ResolvedPath resolve_in_folder(const std::filesystem::path& folder, const std::string& relative,
                               bool must_exist);

// A single file name from a client (an upload): not empty, no '/', NUL or invalid UTF-8, not
// "." or "..", at most 255 bytes. Returns why not, or "".
std::string bad_file_name_reason(const std::string& name);

// The MIME type a browser should get for `path`, by extension; octet-stream when unknown.
std::string content_type_for(const std::filesystem::path& path);

}  // namespace wan::server
