#include "pci/address.h"

#include <fmt/format.h>

namespace pcipass {

// Written by hand, not with fmt: list formats every address several times per device (its own,
// its parents', its VFs'), and at 4,096 devices fmt's format-string parsing was 14% of list's
// instructions (callgrind, bench tree). Same output as "{:04x}:{:02x}:{:02x}.{:x}".
std::string PciAddress::str() const {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[24];
  char* end = buf + sizeof buf;
  char* p = end;
  auto put = [&](uint32_t v, int min_digits) {
    for (int i = 0; v || i < min_digits; ++i, v >>= 4) *--p = kHex[v & 0xf];
  };
  put(function, 1);
  *--p = '.';
  put(slot, 2);
  *--p = ':';
  put(bus, 2);
  *--p = ':';
  put(domain, 4);
  return std::string(p, end);
}

std::string PciAddress::libvirt_name() const {
  return fmt::format("pci_{:04x}_{:02x}_{:02x}_{:x}", domain, bus, slot, function);
}

std::string IdPattern::str() const {
  return device ? fmt::format("{:04x}:{:04x}", vendor, *device) : fmt::format("{:04x}:", vendor);
}

std::optional<uint32_t> parse_hex(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return std::nullopt;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  return v;
}

namespace {

Error bad_field(std::string_view field, std::string_view value, std::string_view text) {
  return Error::invalid(fmt::format("invalid {} '{}' in '{}'", field, value, text),
                        "write the address as DOMAIN:BUS:SLOT.FUNCTION in hex, e.g. 0000:01:00.0 "
                        "(see `pcipass list`)");
}

// "[DDDD:]BB:SS.F" with the parts already split out by the caller.
Result<PciAddress> build(std::string_view domain, std::string_view bus, std::string_view slot,
                         std::string_view function, std::string_view text) {
  PciAddress a;
  if (!domain.empty()) {
    auto d = parse_hex(domain, 8);
    if (!d) return bad_field("domain", domain, text);
    a.domain = *d;
  }
  auto b = parse_hex(bus, 2);
  if (!b) return bad_field("bus number", bus, text);
  auto s = parse_hex(slot, 2);
  if (!s || *s > 0x1f) return bad_field("slot number", slot, text);
  auto f = parse_hex(function, 1);
  if (!f || *f > 7) return bad_field("function number", function, text);
  a.bus = static_cast<uint8_t>(*b);
  a.slot = static_cast<uint8_t>(*s);
  a.function = static_cast<uint8_t>(*f);
  return a;
}

Result<PciAddress> parse_libvirt_name(std::string_view text) {
  std::string_view rest = text.substr(4);
  std::string_view parts[4];
  for (int i = 0; i < 4; ++i) {
    auto us = rest.find('_');
    if ((i < 3) != (us != std::string_view::npos))
      return Error::invalid(fmt::format("invalid libvirt device name '{}'", text),
                            "libvirt names look like pci_0000_01_00_0 (see `virsh nodedev-list`)");
    parts[i] = rest.substr(0, us);
    if (i < 3) rest.remove_prefix(us + 1);
  }
  return build(parts[0], parts[1], parts[2], parts[3], text);
}

}  // namespace

Result<PciAddress> parse_address(std::string_view text) {
  if (text.starts_with("pci_")) return parse_libvirt_name(text);
  auto dot = text.rfind('.');
  if (dot == std::string_view::npos)
    return Error::invalid(
        fmt::format("'{}' is not a PCI address: the '.FUNCTION' part is missing", text),
        "write it as 0000:01:00.0 or 01:00.0");
  std::string_view head = text.substr(0, dot), function = text.substr(dot + 1);
  auto last = head.rfind(':');
  if (last == std::string_view::npos)
    return Error::invalid(
        fmt::format("'{}' is not a PCI address: expected BUS:SLOT.FUNCTION", text),
        "write it as 0000:01:00.0 or 01:00.0");
  std::string_view slot = head.substr(last + 1);
  head = head.substr(0, last);
  auto first = head.rfind(':');
  std::string_view domain =
      first == std::string_view::npos ? std::string_view() : head.substr(0, first);
  std::string_view bus = first == std::string_view::npos ? head : head.substr(first + 1);
  if (first != std::string_view::npos && domain.empty()) return bad_field("domain", domain, text);
  return build(domain, bus, slot, function, text);
}

namespace {

// "0000:01:00.0" exactly as str() writes it (a four-digit domain), or nullopt: what
// parse_address and a comparison with str() accept at that length. list meets ~7 such names in
// each device's path; parsing and printing each back was 8% of its instructions (bench tree).
std::optional<PciAddress> short_canonical(std::string_view s) {
  if (s.size() != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.') return std::nullopt;
  uint32_t v[4] = {};
  const int start[4] = {0, 5, 8, 11}, len[4] = {4, 2, 2, 1};
  for (int f = 0; f < 4; ++f)
    for (int i = start[f]; i < start[f] + len[f]; ++i) {
      char c = s[static_cast<size_t>(i)];
      bool digit = c >= '0' && c <= '9', lower = c >= 'a' && c <= 'f';
      if (!digit && !lower) return std::nullopt;
      v[f] = v[f] * 16 + static_cast<uint32_t>(digit ? c - '0' : c - 'a' + 10);
    }
  if (v[2] > 0x1f || v[3] > 7) return std::nullopt;
  return PciAddress{v[0], static_cast<uint8_t>(v[1]), static_cast<uint8_t>(v[2]),
                    static_cast<uint8_t>(v[3])};
}

}  // namespace

std::vector<PciAddress> addresses_in_path(std::string_view path) {
  std::vector<PciAddress> out;
  out.reserve(8);  // a device's bridges: deeper paths are rare
  while (!path.empty()) {
    auto slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    // Only the canonical form: "0000:01:00.0" and nothing looser.
    if (part.size() == 12) {
      if (auto a = short_canonical(part)) out.push_back(*a);
    } else if (part.size() > 12 && part[part.size() - 2] == '.') {
      if (auto a = parse_address(part); a.ok() && part == a->str()) out.push_back(*a);
    }
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

Result<DeviceSelector> parse_selector(std::string_view text) {
  if (text.empty())
    return Error::invalid("empty device argument",
                          "name a device as 0000:01:00.0, 01:00.0, "
                          "pci_0000_01_00_0 or VENDOR:DEVICE");
  bool looks_like_id = text.find('.') == std::string_view::npos && !text.starts_with("pci_");
  if (!looks_like_id) {
    auto a = parse_address(text);
    if (!a) return std::move(a).error();
    return DeviceSelector(*a);
  }
  auto colon = text.find(':');
  std::string_view vendor = text.substr(0, colon);
  std::string_view device =
      colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  auto id_error = [&](std::string_view what, std::string_view v) {
    return Error::invalid(fmt::format("invalid {} ID '{}' in '{}'", what, v, text),
                          "IDs are 4 hex digits, as `lspci -nn` shows them: e.g. 10de:1b80");
  };
  auto v = parse_hex(vendor, 4);
  if (!v || vendor.size() != 4) return id_error("vendor", vendor);
  IdPattern p{static_cast<uint16_t>(*v), std::nullopt};
  if (!device.empty()) {
    auto d = parse_hex(device, 4);
    if (!d || device.size() != 4) return id_error("device", device);
    p.device = static_cast<uint16_t>(*d);
  }
  return DeviceSelector(p);
}

}  // namespace pcipass
