// multipart/form-data bodies (RFC 7578), as the frontend's image upload sends them. HTTP itself
// is parsed by Beast; this reads the one body format Beast leaves to the application.
#pragma once
#include <string>
#include <vector>

namespace wan::server {

struct FormPart {
  std::string name;
  std::string filename;  // empty for a plain field
  bool is_file = false;  // a filename parameter was present
  std::string content_type;
  std::string data;
};

inline constexpr size_t kMaxFormParts = 64;

// Splits `body` by the boundary that `content_type` declares. Returns false with `error` set for
// a content type that is not multipart/form-data, a missing boundary, a part without
// Content-Disposition or a name, more than kMaxFormParts parts, or a body that ends early.
bool parse_multipart(const std::string& content_type, const std::string& body,
                     std::vector<FormPart>* parts, std::string* error);

// The first part named `name`, or nullptr.
const FormPart* find_part(const std::vector<FormPart>& parts, const std::string& name);

}  // namespace wan::server
