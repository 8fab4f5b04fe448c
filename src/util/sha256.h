// SHA-256 of a byte string, as lowercase hex (FIPS 180-4), to recognise a file pcipass wrote.
#pragma once

#include <string>
#include <string_view>

namespace pcipass {

std::string sha256_hex(std::string_view data);

}  // namespace pcipass
