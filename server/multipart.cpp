#include "server/multipart.h"

#include <algorithm>
#include <cctype>

namespace wan::server {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

// The value of parameter `key` in a header value such as
// `form-data; name="image"; filename="a.png"` (quoted or not); `found` says whether it was there.
std::string header_parameter(const std::string& value, const std::string& key, bool* found) {
  *found = false;
  size_t pos = 0;
  while (pos < value.size()) {
    size_t semicolon = value.find(';', pos);
    // A quoted value may hold ';': skip to the closing quote first.
    const size_t eq = value.find('=', pos);
    if (eq != std::string::npos && (semicolon == std::string::npos || eq < semicolon)) {
      const std::string name = lower(trim(value.substr(pos, eq - pos)));
      size_t start = eq + 1;
      while (start < value.size() && value[start] == ' ') ++start;
      std::string parsed;
      size_t next = start;
      if (start < value.size() && value[start] == '"') {
        next = start + 1;
        while (next < value.size() && value[next] != '"') {
          if (value[next] == '\\' && next + 1 < value.size()) ++next;
          parsed.push_back(value[next++]);
        }
        semicolon = value.find(';', next);
      } else {
        semicolon = value.find(';', start);
        parsed = trim(value.substr(start, semicolon == std::string::npos ? std::string::npos
                                                                         : semicolon - start));
      }
      if (name == key) {
        *found = true;
        return parsed;
      }
    }
    if (semicolon == std::string::npos) break;
    pos = semicolon + 1;
  }
  return "";
}

}  // namespace

bool parse_multipart(const std::string& content_type, const std::string& body,
                     std::vector<FormPart>* parts, std::string* error) {
  parts->clear();
  if (lower(trim(content_type)).rfind("multipart/form-data", 0) != 0) {
    *error = "expected Content-Type multipart/form-data, got '" + content_type.substr(0, 100) + "'";
    return false;
  }
  bool found = false;
  const std::string boundary = header_parameter(content_type, "boundary", &found);
  if (!found || boundary.empty() || boundary.size() > 200) {
    *error = "multipart/form-data without a usable boundary";
    return false;
  }
  const std::string delimiter = "--" + boundary;
  size_t pos = body.find(delimiter);
  if (pos == std::string::npos) {
    *error = "the body holds no multipart boundary";
    return false;
  }
  for (;;) {
    pos += delimiter.size();
    if (body.compare(pos, 2, "--") == 0) return true;  // the closing delimiter
    if (body.compare(pos, 2, "\r\n") != 0) {
      *error = "malformed multipart boundary line";
      return false;
    }
    pos += 2;
    const size_t headers_end = body.find("\r\n\r\n", pos);
    if (headers_end == std::string::npos) {
      *error = "a multipart part ends inside its headers";
      return false;
    }
    if (parts->size() == kMaxFormParts) {
      *error = "more than " + std::to_string(kMaxFormParts) + " multipart parts";
      return false;
    }
    FormPart part;
    bool has_disposition = false;
    size_t line_start = pos;
    while (line_start < headers_end) {
      size_t line_end = body.find("\r\n", line_start);
      if (line_end == std::string::npos || line_end > headers_end) line_end = headers_end;
      const std::string line = body.substr(line_start, line_end - line_start);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        const std::string name = lower(trim(line.substr(0, colon)));
        const std::string value = trim(line.substr(colon + 1));
        if (name == "content-disposition") {
          has_disposition = true;
          bool has_name = false;
          part.name = header_parameter(value, "name", &has_name);
          part.filename = header_parameter(value, "filename", &part.is_file);
          if (!has_name) {
            *error = "a multipart part has no name";
            return false;
          }
        } else if (name == "content-type") {
          part.content_type = value;
        }
      }
      line_start = line_end + 2;
    }
    if (!has_disposition) {
      *error = "a multipart part has no Content-Disposition";
      return false;
    }
    const size_t data_start = headers_end + 4;
    const size_t data_end = body.find("\r\n" + delimiter, data_start);
    if (data_end == std::string::npos) {
      *error = "the multipart body ends before its closing boundary";
      return false;
    }
    part.data = body.substr(data_start, data_end - data_start);
    parts->push_back(std::move(part));
    pos = data_end + 2;
  }
}

const FormPart* find_part(const std::vector<FormPart>& parts, const std::string& name) {
  for (const auto& part : parts)
    if (part.name == name) return &part;
  return nullptr;
}

}  // namespace wan::server
