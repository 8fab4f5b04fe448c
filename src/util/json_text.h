// The text of the JSON files pcipass writes and reads back (the journal, the state file, change
// set manifests).
#pragma once

#include <string>

#include "util/json.h"
#include "util/result.h"

namespace pcipass {

// dump(2) and a newline, strict: a name rewritten with U+FFFD would not name the same thing when
// read back (a driver to return a device to). A string that is not UTF-8 (a driver or user name
// on a hostile host) makes nlohmann's dump() throw, which ended pcipass with "internal error";
// this is an error naming the file instead, before it is written.
inline Result<std::string> json_file_text(const Json& j, const std::string& path) {
  try {
    return j.dump(2) + "\n";
  } catch (const Json::type_error&) {
    return Error::state(path +
                            " cannot be written: a name in it is not UTF-8, which JSON cannot "
                            "carry faithfully",
                        "a driver, user or device name on this host is not UTF-8; pcipass cannot "
                        "record it, so do this step by hand");
  }
}

}  // namespace pcipass
