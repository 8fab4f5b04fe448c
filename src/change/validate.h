// Reading back what pcipass wrote as untrusted input: journals, state and manifests may be
// truncated by a crash or edited by hand, so every field's type and range is checked, and a
// file that fails is reported with its path and the fix before anything acts on it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "util/json.h"
#include "util/result.h"

namespace pcipass::change {

// A JSON document; invalid JSON or UTF-8 is an error naming `path`.
Result<Json> parse_json(const std::string& text, const std::string& path,
                        const std::string& fix = {});

// Field by field, each error "PATH is damaged: FIELD ..." with the fix given.
class Checker {
 public:
  explicit Checker(std::string path, std::string fix = {});
  Status schema(const Json& j, const std::string& expected) const;
  Result<std::string> string(const Json& j, const char* key) const;
  Result<int64_t> integer(const Json& j, const char* key, int64_t min, int64_t max) const;
  Result<bool> boolean(const Json& j, const char* key) const;
  Result<const Json*> array(const Json& j, const char* key) const;
  Result<const Json*> object(const Json& j, const char* key) const;
  Result<std::string> sha256(const Json& j, const char* key) const;
  Error bad(const std::string& field, const std::string& why) const;

 private:
  Result<const Json*> field(const Json& j, const char* key) const;
  std::string path_, fix_;
};

// A kernel driver's name: 1-64 bytes of [A-Za-z0-9_.-], not "." or "..".
bool plain_driver_name(const std::string& s);
// A UUID as the kernel shows an mdev's: 8-4-4-4-12 lowercase hex digits.
bool canonical_uuid(const std::string& s);
// /sys/class/mdev_bus/PARENT/mdev_supported_types/TYPE with plain PARENT and TYPE (as
// plain_driver_name, also ':' for a PCI address): the only mdev type a journal may name.
bool mdev_type_dir(const std::string& s);
// A change set id: digits and dashes, starting with a digit, at most 32 bytes.
bool plain_id(const std::string& s);
// An absolute path without "", "." or ".." components, under one of `roots` ("/etc/").
bool path_under(const std::string& path, std::initializer_list<const char*> roots);
template <size_t N>
bool path_under(const std::string& path, const char* const (&roots)[N]) {
  for (const char* r : roots)
    if (path_under(path, {r})) return true;
  return false;
}

}  // namespace pcipass::change
