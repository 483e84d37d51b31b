// ComfyUI's single-user data routes (app/user_manager.py, app/app_settings.py): /users,
// /settings, /userdata and /v2/userdata, all inside <user-directory>/default/.
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "core/atomic_file.h"
#include "core/bounded_json.h"
#include "server/comfy_server.h"
#include "server/safe_path.h"

namespace wan::server {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSettingsFile = "comfy.settings.json";
// A new user's settings. Frontend 1.27.10's default navigation mode ("legacy") sets these two
// while it registers its settings, before they exist, and throws a TypeError on a fresh profile;
// holding the values that mode implies already, it finds nothing to change.
const nlohmann::json kFirstSettings = {{"Comfy.Canvas.LeftMouseClickBehavior", "panning"},
                                       {"Comfy.Canvas.MouseWheelScroll", "zoom"}};
// User files the frontend always asks for, and what a missing one means: no user stylesheet,
// no user templates. Answering 404 (as ComfyUI does) puts an error in every page's console.
const std::map<std::string, std::pair<std::string, std::string>> kAbsentUserFiles = {
    {"user.css", {"text/css; charset=utf-8", ""}},
    {"comfy.templates.json", {"application/json", "[]"}},
};
// How deep /userdata?recurse=true and /v2/userdata descend.
constexpr int kMaxListDepth = 16;

// Seconds since the epoch, fractional, as Python's os.path.getmtime gives them.
double modified_seconds(const fs::path& path) {
  struct stat info = {};
  if (stat(path.c_str(), &info) != 0) return 0;
  return static_cast<double>(info.st_mtim.tv_sec) + info.st_mtim.tv_nsec * 1e-9;
}

json file_info(const fs::path& path, const fs::path& base) {
  std::error_code ec;
  const double modified = modified_seconds(path);
  return {{"path", fs::relative(path, base, ec).generic_string()},
          {"size", static_cast<int64_t>(fs::file_size(path, ec))},
          {"modified", modified},
          {"created", modified}};
}

// The regular files under `folder` (recursively when asked), sorted, links not followed out.
std::vector<fs::path> list_files(const fs::path& folder, bool recurse) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (recurse) {
    for (auto it = fs::recursive_directory_iterator(folder, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it.depth() >= kMaxListDepth) it.disable_recursion_pending();
      if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path());
    }
  } else {
    for (const auto& entry : fs::directory_iterator(folder, ec))
      if (entry.is_regular_file(ec) && !entry.is_symlink(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

fs::path ComfyServer::user_root() const { return options_.user_dir / "default"; }

HttpResponse ComfyServer::user_route(const Route& r) {
  const fs::path root = user_root();
  const HttpRequest& request = r.request;

  auto read_settings = [&]() -> json {
    const fs::path file = root / kSettingsFile;
    std::error_code ec;
    if (!fs::exists(file, ec)) return kFirstSettings;
    try {
      json settings = read_json_file_bounded(file.string());
      if (settings.is_object()) return settings;
    } catch (const std::exception& e) {
      spdlog::error("the settings file {} is unreadable: {}", file.string(), e.what());
    }
    return json::object();
  };
  auto save_settings = [&](const json& settings) {
    write_text_atomically(root / kSettingsFile, settings.dump(4));
  };

  if (r.is("GET", {"users"})) {
    std::error_code ec;
    return json_response({{"storage", "server"}, {"migrated", fs::exists(root, ec)}});
  }
  if (r.is("POST", {"users"}))
    return json_response({{"error", "wan-serve has a single user ('default')"}}, 400);
  if (r.is("GET", {"settings"})) {
    std::lock_guard<std::mutex> lock(user_mutex_);
    return json_response(read_settings());
  }
  if (r.is("GET", {"settings", "*"})) {
    std::lock_guard<std::mutex> lock(user_mutex_);
    const json settings = read_settings();
    return json_response(settings.contains(r.segments[1]) ? settings[r.segments[1]] : json());
  }
  if (r.is("POST", {"settings"}) || r.is("POST", {"settings", "*"})) {
    HttpResponse bad;
    const auto body = parse_body(request, &bad);
    if (!body) return bad;
    std::lock_guard<std::mutex> lock(user_mutex_);
    json settings = read_settings();
    if (r.segments.size() == 2) {
      settings[r.segments[1]] = *body;
    } else {
      if (!body->is_object()) return error_response(400, "invalid_json", "expected an object");
      settings.update(*body);
    }
    try {
      save_settings(settings);
    } catch (const std::exception& e) {
      return HttpResponse::text(500, std::string("cannot save the settings: ") + e.what());
    }
    return HttpResponse::empty(200);
  }

  if (r.is("GET", {"userdata"})) {
    const std::string dir = request.query_value("dir");
    if (dir.empty()) return HttpResponse::text(400, "Directory not provided");
    const ResolvedPath folder = resolve_in_folder(root, dir, true);
    if (!folder.ok())
      return HttpResponse::text(folder.status == 404 ? 404 : 403,
                                folder.status == 404 ? "Directory not found" : folder.error);
    auto flag = [&](const char* key) { return request.query_value(key) == "true"; };
    const bool full_info = flag("full_info"), split = flag("split");
    json results = json::array();
    for (const auto& file : list_files(folder.path, flag("recurse"))) {
      std::error_code ec;
      if (full_info) {
        results.push_back(file_info(file, folder.path));
        continue;
      }
      const std::string relative = fs::relative(file, folder.path, ec).generic_string();
      if (!split) {
        results.push_back(relative);
        continue;
      }
      json pieces = json::array({relative});
      std::stringstream parts(relative);
      for (std::string piece; std::getline(parts, piece, '/');) pieces.push_back(piece);
      results.push_back(pieces);
    }
    return json_response(results);
  }
  if (r.is("GET", {"v2", "userdata"})) {
    const std::string path = request.query_value("path");
    const ResolvedPath folder = resolve_in_folder(root, path, true);
    if (!folder.ok()) {
      if (folder.status == 404 && path.empty()) return json_response(json::array());
      return HttpResponse::text(folder.status == 404 ? 404 : 400, folder.error);
    }
    std::error_code ec;
    if (!fs::is_directory(folder.path, ec))
      return HttpResponse::text(400, "Requested path is not a directory");
    const fs::path base = fs::canonical(root, ec);
    json dirs = json::array(), files = json::array();
    for (auto it = fs::recursive_directory_iterator(folder.path, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it.depth() >= kMaxListDepth) it.disable_recursion_pending();
      if (it->is_symlink(ec)) continue;
      const std::string name = it->path().filename().string();
      const std::string relative = fs::relative(it->path(), base, ec).generic_string();
      if (it->is_directory(ec)) {
        dirs.push_back({{"name", name}, {"path", relative}, {"type", "directory"}});
      } else if (it->is_regular_file(ec)) {
        json entry = file_info(it->path(), base);
        files.push_back({{"name", name}, {"path", relative}, {"type", "file"},
                         {"size", entry["size"]}, {"modified", entry["modified"]}});
      }
    }
    auto by_name = [](const json& a, const json& b) {
      return a["name"].get<std::string>() < b["name"].get<std::string>();
    };
    std::sort(dirs.begin(), dirs.end(), by_name);
    std::sort(files.begin(), files.end(), by_name);
    for (auto& file : files) dirs.push_back(std::move(file));
    return json_response(dirs);
  }

  // /userdata/{file}: the file is one (encoded) segment, as the frontend sends it.
  if (r.segments.size() < 2 || r.segments[0] != "userdata")
    return HttpResponse::text(404, "404: Not Found");
  const std::string& name = r.segments[1];
  if (name.empty()) return HttpResponse::text(400, "no file named");
  const bool exists_needed = request.method != "POST" || r.segments.size() == 4;
  const ResolvedPath file = resolve_in_folder(root, name, exists_needed);
  if (file.status == 404 && request.method == "GET" && r.segments.size() == 2 &&
      kAbsentUserFiles.count(name)) {
    const auto& [type, body] = kAbsentUserFiles.at(name);
    HttpResponse response = HttpResponse::text(200, body);
    response.content_type = type;
    return response;
  }
  if (!file.ok()) return HttpResponse::text(file.status, file.error);
  std::error_code ec;

  if (r.is("GET", {"userdata", "*"})) {
    if (!fs::is_regular_file(file.path, ec)) return HttpResponse::text(404, "not a file");
    HttpResponse response;
    response.file = file.path;
    response.content_type = content_type_for(file.path);
    if (response.content_type.rfind("text/html", 0) == 0 ||
        response.content_type.rfind("text/javascript", 0) == 0 ||
        response.content_type.rfind("image/svg", 0) == 0)
      response.content_type = "application/octet-stream";
    response.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return response;
  }
  if (r.is("DELETE", {"userdata", "*"})) {
    if (!fs::is_regular_file(file.path, ec)) return HttpResponse::text(404, "not a file");
    fs::remove(file.path, ec);
    if (ec) return HttpResponse::text(500, "cannot delete: " + ec.message());
    return HttpResponse::empty(204);
  }
  const bool overwrite = request.query_value("overwrite") != "false";
  const bool full_info = request.query_value("full_info") == "true";
  auto answer = [&](const fs::path& written) {
    const fs::path base = fs::canonical(root, ec);
    return full_info ? json_response(file_info(written, base))
                     : json_response(fs::relative(written, base, ec).generic_string());
  };
  if (r.is("POST", {"userdata", "*"})) {
    if (!overwrite && fs::exists(file.path, ec))
      return HttpResponse::text(409, "File already exists");
    if (fs::is_directory(file.path, ec)) return HttpResponse::text(400, "that name is a folder");
    fs::create_directories(file.path.parent_path(), ec);
    // Re-resolved with the folders made: a symlinked folder cannot take the write outside.
    const ResolvedPath again = resolve_in_folder(root, name, false);
    if (!again.ok()) return HttpResponse::text(again.status, again.error);
    try {
      write_text_atomically(again.path, request.body);
    } catch (const std::exception& e) {
      return HttpResponse::text(400, std::string("cannot save: ") + e.what());
    }
    return answer(again.path);
  }
  if (r.is("POST", {"userdata", "*", "move", "*"})) {
    if (!fs::is_regular_file(file.path, ec)) return HttpResponse::text(404, "not a file");
    const ResolvedPath dest = resolve_in_folder(root, r.segments[3], false);
    if (!dest.ok()) return HttpResponse::text(dest.status, dest.error);
    if (!overwrite && fs::exists(dest.path, ec))
      return HttpResponse::text(409, "File already exists");
    fs::create_directories(dest.path.parent_path(), ec);
    fs::rename(file.path, dest.path, ec);
    if (ec) return HttpResponse::text(400, "cannot move: " + ec.message());
    return answer(dest.path);
  }
  return HttpResponse::text(405, "405: Method Not Allowed");
}

}  // namespace wan::server
