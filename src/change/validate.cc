#include "change/validate.h"

#include <algorithm>

#include <fmt/format.h>

namespace pcipass::change {

Result<Json> parse_json(const std::string& text, const std::string& path, const std::string& fix) {
  try {
    Json j = Json::parse(text);
    if (!j.is_object()) throw std::runtime_error("not a JSON object");
    return j;
  } catch (const std::exception& e) {
    Error err = Error::state(fmt::format("{} is damaged: {}", path, e.what()), fix);
    err.path = path;
    return err;
  }
}

Checker::Checker(std::string path, std::string fix)
    : path_(std::move(path)), fix_(std::move(fix)) {}

Error Checker::bad(const std::string& field, const std::string& why) const {
  Error e = Error::state(fmt::format("{} is damaged: {} {}", path_, field, why), fix_);
  e.path = path_;
  return e;
}

Result<const Json*> Checker::field(const Json& j, const char* key) const {
  if (!j.is_object()) return bad(key, "is inside something that is not an object");
  auto it = j.find(key);
  if (it == j.end()) return bad(key, "is missing");
  return &*it;
}

Status Checker::schema(const Json& j, const std::string& expected) const {
  std::string got = TRY(string(j, "schema"));
  if (got != expected) return bad("schema", fmt::format("is {}, not {}", got, expected));
  return {};
}

Result<std::string> Checker::string(const Json& j, const char* key) const {
  const Json* v = TRY(field(j, key));
  if (!v->is_string()) return bad(key, "is not a string");
  return v->get<std::string>();
}

Result<int64_t> Checker::integer(const Json& j, const char* key, int64_t min, int64_t max) const {
  const Json* v = TRY(field(j, key));
  if (!v->is_number_integer()) return bad(key, "is not an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    return bad(key, "is out of range");
  int64_t n = v->get<int64_t>();
  if (n < min || n > max) return bad(key, fmt::format("is {}, outside {}..{}", n, min, max));
  return n;
}

Result<bool> Checker::boolean(const Json& j, const char* key) const {
  const Json* v = TRY(field(j, key));
  if (!v->is_boolean()) return bad(key, "is not true or false");
  return v->get<bool>();
}

Result<const Json*> Checker::array(const Json& j, const char* key) const {
  const Json* v = TRY(field(j, key));
  if (!v->is_array()) return bad(key, "is not a list");
  return v;
}

Result<const Json*> Checker::object(const Json& j, const char* key) const {
  const Json* v = TRY(field(j, key));
  if (!v->is_object()) return bad(key, "is not an object");
  return v;
}

Result<std::string> Checker::sha256(const Json& j, const char* key) const {
  std::string s = TRY(string(j, key));
  if (s.size() != 64 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
    return bad(key, "is not a SHA-256 in hex");
  return s;
}

bool plain_driver_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || s == "." || s == "..") return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
      return false;
  return true;
}

bool canonical_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = s[i];
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool mdev_type_dir(const std::string& s) {
  const std::string prefix = "/sys/class/mdev_bus/", mid = "/mdev_supported_types/";
  if (!s.starts_with(prefix)) return false;
  std::string rest = s.substr(prefix.size());
  auto m = rest.find(mid);
  if (m == std::string::npos) return false;
  std::string parent = rest.substr(0, m), type = rest.substr(m + mid.size());
  std::string p = parent;
  std::replace(p.begin(), p.end(), ':', '_');
  return plain_driver_name(p) && plain_driver_name(type);
}

bool plain_id(const std::string& s) {
  if (s.empty() || s.size() > 32 || !std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return s.find_first_not_of("0123456789-") == std::string::npos;
}

bool path_under(const std::string& path, std::initializer_list<const char*> roots) {
  if (path.empty() || path[0] != '/' || path.back() == '/' || path.find('\0') != std::string::npos)
    return false;
  for (size_t pos = 1; pos <= path.size();) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(pos, end - pos);
    if (part.empty() || part == "." || part == "..") return false;
    pos = end + 1;
  }
  for (const char* r : roots)
    if (path.starts_with(r)) return true;
  return false;
}

}  // namespace pcipass::change
