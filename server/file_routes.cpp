// /view, /upload/image, /upload/mask, /extensions and the frontend's static files: every name a
// client sends is resolved inside its folder (safe_path.h) before anything is read or written.
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/bounded_json.h"
#include "core/path_rules.h"
#include "server/comfy_server.h"
#include "server/multipart.h"
#include "server/safe_path.h"

namespace wan::server {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// ComfyUI's folder for a `type` parameter; empty for an unknown type.
fs::path folder_of_type(const EngineFolders& folders, const std::string& type) {
  if (type == "input") return folders.input;
  if (type == "output") return folders.output;
  if (type == "temp") return folders.temp;
  return {};
}

std::string type_of(AnnotatedFolder folder) {
  switch (folder) {
    case AnnotatedFolder::kInput:
      return "input";
    case AnnotatedFolder::kOutput:
      return "output";
    case AnnotatedFolder::kTemp:
      return "temp";
  }
  return "input";
}

bool read_file(const fs::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return static_cast<bool>(in) || in.eof();
}

// For Content-Disposition: quotes and control characters would end the header value.
std::string quoted_name(const std::string& name) {
  std::string out;
  for (unsigned char c : name) out.push_back(c < 0x20 || c == '"' || c == '\\' ? '_' : c);
  return out;
}

HttpResponse file_response(const fs::path& path, const std::string& shown_name) {
  HttpResponse response;
  response.file = path;
  response.content_type = content_type_for(path);
  // Files a workflow wrote are never run as a page of this origin (ComfyUI does the same).
  const std::string& type = response.content_type;
  if (type.rfind("text/html", 0) == 0 || type.rfind("text/javascript", 0) == 0 ||
      type.rfind("text/css", 0) == 0 || type.rfind("image/svg", 0) == 0)
    response.content_type = "application/octet-stream";
  response.headers.emplace_back("Content-Disposition",
                                "filename=\"" + quoted_name(shown_name) + "\"");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return response;
}

}  // namespace

HttpResponse ComfyServer::view(const HttpRequest& request) const {
  if (!request.has_query("filename")) return HttpResponse::text(404, "no filename given");
  const AnnotatedName annotated = parse_annotated_name(request.query_value("filename"));
  const std::string& name = annotated.name;
  const bool annotation = annotated.name != request.query_value("filename");
  if (name.empty()) return HttpResponse::text(400, "empty filename");
  // ComfyUI's rule, and no folder in the name (the folder goes in subfolder).
  if (name[0] == '/' || name.find("..") != std::string::npos)
    return HttpResponse::text(400, "filename may not be absolute or hold '..'");
  if (const std::string why = bad_file_name_reason(name); !why.empty())
    return HttpResponse::text(400, "filename: " + why);
  const std::string type =
      annotation ? type_of(annotated.folder)
                 : (request.has_query("type") ? request.query_value("type") : "output");
  const fs::path folder = folder_of_type(engine_.folders(), type);
  if (folder.empty()) return HttpResponse::text(400, "type must be input, output or temp");
  const std::string subfolder = request.query_value("subfolder");
  const ResolvedPath inside = resolve_in_folder(folder, subfolder, true);
  if (!inside.ok()) return HttpResponse::text(inside.status == 404 ? 404 : 403, inside.error);
  const ResolvedPath file =
      resolve_in_folder(folder, subfolder.empty() ? name : subfolder + "/" + name, true);
  if (!file.ok()) return HttpResponse::text(file.status, file.error);
  std::error_code ec;
  if (!fs::is_regular_file(file.path, ec)) return HttpResponse::text(404, "not a file");
  return file_response(file.path, name);
}

HttpResponse ComfyServer::upload(const HttpRequest& request, bool mask) const {
  std::vector<FormPart> parts;
  std::string error;
  if (!parse_multipart(request.header("content-type"), request.body, &parts, &error))
    return HttpResponse::text(400, error);
  const FormPart* image = find_part(parts, "image");
  if (!image || !image->is_file) return HttpResponse::text(400, "no 'image' file in the form");
  if (const std::string why = bad_file_name_reason(image->filename); !why.empty())
    return HttpResponse::text(400, "image: " + why);
  auto field = [&](const std::string& name) {
    const FormPart* part = find_part(parts, name);
    return part ? part->data : std::string();
  };
  const std::string type = field("type").empty() ? "input" : field("type");
  const fs::path folder = folder_of_type(engine_.folders(), type);
  if (folder.empty()) return HttpResponse::text(400, "type must be input, output or temp");
  const std::string subfolder = field("subfolder");

  // /upload/mask: what is stored is the original image with the mask's alpha (ComfyUI's).
  std::string merged;
  if (mask) {
    // The mask belongs to an image that must already be in one of the folders.
    json original;
    try {
      original = parse_json_bounded(field("original_ref"), "original_ref", JsonLimits{});
    } catch (const std::exception& e) {
      return HttpResponse::text(400, e.what());
    }
    if (!original.is_object() || !original.contains("filename") ||
        !original["filename"].is_string())
      return HttpResponse::text(400, "original_ref needs a filename");
    const AnnotatedName ref = parse_annotated_name(original["filename"].get<std::string>());
    if (ref.name.empty() || ref.name[0] == '/' || ref.name.find("..") != std::string::npos)
      return HttpResponse::text(400, "original_ref: bad filename");
    const fs::path ref_folder = folder_of_type(
        engine_.folders(),
        ref.name != original["filename"].get<std::string>() ? type_of(ref.folder)
                                                            : original.value("type", "output"));
    if (ref_folder.empty()) return HttpResponse::text(400, "original_ref: bad type");
    const std::string ref_sub = original.value("subfolder", "");
    const ResolvedPath ref_file =
        resolve_in_folder(ref_folder, ref_sub.empty() ? ref.name : ref_sub + "/" + ref.name, true);
    if (!ref_file.ok()) return HttpResponse::text(ref_file.status, "original_ref: " + ref_file.error);
    std::error_code exists_ec;
    if (!fs::is_regular_file(ref_file.path, exists_ec))
      return HttpResponse::text(404, "original_ref: no image " + ref.name);
    try {
      merged = engine_.merge_mask_alpha(ref_file.path, image->data);
    } catch (const std::exception& e) {
      return HttpResponse::text(400, std::string("/upload/mask: ") + e.what());
    }
  }
  const std::string& stored = mask ? merged : image->data;

  const ResolvedPath target_folder = resolve_in_folder(folder, subfolder, false);
  if (!target_folder.ok()) return HttpResponse::text(target_folder.status, target_folder.error);
  std::error_code ec;
  fs::create_directories(target_folder.path, ec);
  if (ec) return HttpResponse::text(500, "cannot create the folder: " + ec.message());
  // Re-checked now that the folders exist: a symlink made meanwhile cannot lead out.
  const ResolvedPath checked = resolve_in_folder(folder, subfolder, true);
  if (!checked.ok()) return HttpResponse::text(checked.status, checked.error);

  std::string filename = image->filename;
  const std::string overwrite = field("overwrite");
  const bool replace = overwrite == "true" || overwrite == "1";
  bool duplicate = false;
  if (!replace) {
    const fs::path base(filename);
    const std::string stem = base.stem().string(), extension = base.extension().string();
    for (int i = 1; fs::exists(checked.path / filename, ec); ++i) {
      std::string existing;
      // Same bytes under the same name: nothing new to store (ComfyUI's duplicate check).
      if (read_file(checked.path / filename, &existing) && existing == stored) {
        duplicate = true;
        break;
      }
      if (i > 10000) return HttpResponse::text(409, "too many files named like " + image->filename);
      filename = stem + " (" + std::to_string(i) + ")" + extension;
    }
  }
  if (!duplicate) {
    const ResolvedPath target =
        resolve_in_folder(folder, subfolder.empty() ? filename : subfolder + "/" + filename, false);
    if (!target.ok()) return HttpResponse::text(target.status, target.error);
    try {
      write_text_atomically(target.path, stored);
    } catch (const std::exception& e) {
      return HttpResponse::text(500, std::string("cannot save the upload: ") + e.what());
    }
    spdlog::info("upload: {} ({} bytes{})", target.path.string(), stored.size(),
                 mask ? ", the original with the mask's alpha" : "");
  }
  return json_response({{"name", filename}, {"subfolder", subfolder}, {"type", type}});
}

HttpResponse ComfyServer::extensions() const {
  json files = json::array();
  if (front_end_root_.empty()) return json_response(files);
  std::error_code ec;
  const fs::path root = front_end_root_ / "extensions";
  if (!fs::is_directory(root, ec)) return json_response(files);
  std::vector<std::string> found;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 8) it.disable_recursion_pending();
    if (it->is_regular_file(ec) && it->path().extension() == ".js")
      found.push_back("/" + fs::relative(it->path(), front_end_root_, ec).generic_string());
  }
  std::sort(found.begin(), found.end());
  for (auto& file : found) files.push_back(std::move(file));
  return json_response(files);
}

HttpResponse ComfyServer::static_file(const Route& route) const {
  if (front_end_root_.empty())
    return HttpResponse::text(404, "404: Not Found (this wan-serve has no frontend)");
  std::string relative;
  for (const auto& segment : route.segments) {
    if (segment.find('/') != std::string::npos)
      return HttpResponse::text(400, "an encoded '/' in a file path");
    relative += (relative.empty() ? "" : "/") + segment;
  }
  if (relative.empty()) relative = "index.html";
  const ResolvedPath file = resolve_in_folder(front_end_root_, relative, true);
  if (!file.ok()) return HttpResponse::text(file.status == 404 ? 404 : file.status, "404: Not Found");
  std::error_code ec;
  if (!fs::is_regular_file(file.path, ec)) return HttpResponse::text(404, "404: Not Found");
  HttpResponse response;
  response.file = file.path;
  response.content_type = content_type_for(file.path);
  if (relative == "index.html") {
    response.headers.emplace_back("Cache-Control", "no-cache");
  }
  return response;
}

}  // namespace wan::server
