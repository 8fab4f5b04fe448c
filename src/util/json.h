// The JSON of pcipass's documents and files, and how "none" is written in them.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pcipass {

// Ordered: keys come out in the order the code writes them, the order docs/json.md documents.
using Json = nlohmann::ordered_json;

// An absent value is null in every schema, never a missing key (a consumer can tell "none" from
// "this pcipass predates the field").
template <typename T>
Json or_null(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

// For the text fields whose schema says null for none (fix, message, owner...): the library keeps
// them as strings, empty when there is nothing to say.
inline Json or_null(const std::string& s) {
  return s.empty() ? Json(nullptr) : Json(s);
}

}  // namespace pcipass
