// The text of the JSON pcipass writes and reads back (the journal, the state file, change set
// manifests) or sends (QMP commands).
#pragma once

#include <optional>
#include <string>

#include "util/json.h"
#include "util/result.h"

namespace pcipass {

// j.dump(indent), strict; nullopt when a string in it is not UTF-8 (nlohmann's dump() throws
// then). Strict, not replaced: U+FFFD would make a recorded driver name, or a QMP argument, name
// something else.
inline std::optional<std::string> strict_dump(const Json& j, int indent = -1) {
  try {
    return j.dump(indent);
  } catch (const Json::type_error&) {
    return std::nullopt;
  }
}

// The file's text: dump(2) and a newline; a name that is not UTF-8 (a driver or user name on a
// hostile host), which ended pcipass with "internal error", is an error naming the file instead,
// before it is written.
inline Result<std::string> json_file_text(const Json& j, const std::string& path) {
  if (auto text = strict_dump(j, 2)) return *text + "\n";
  return Error::state(
      path + " cannot be written: a name in it is not UTF-8, which JSON cannot carry faithfully",
      "a driver, user or device name on this host is not UTF-8; pcipass cannot record it, so do "
      "this step by hand");
}

}  // namespace pcipass
