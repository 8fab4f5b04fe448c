// pcipass list: one line per device.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>
#include <string_view>

#include "cli/commands.h"

namespace pcipass::cli {

Json pci_ids_names_json(Context& ctx) {
  Json j = pci_ids_json(ctx);
  const auto& why = ctx.ids().unavailable();
  j["names"] = why ? "unavailable" : "available";
  if (why) j["names_unavailable"] = {{"message", why->message}, {"fix", why->fix}};
  return j;
}

void setup_list(CLI::App& app, Args& a) {
  std::string kinds;
  for (const char* const* k = class_kinds(); *k; ++k)
    kinds += std::string(kinds.empty() ? "" : "|") + *k;
  app.add_option("--class", a.class_filter, "Only devices of this kind: " + kinds);
  app.add_option("--vendor", a.vendor_filter, "Only this vendor: ID (10de) or part of its name");
  app.add_option("--driver", a.driver_filter,
                 "Only devices bound to this driver ('none' for unbound)");
  add_group_option(app, a, "Only devices of this IOMMU group");
}

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Status validate_filters(const Args& a) {
  if (!a.class_filter.empty()) {
    bool known = false;
    for (const char* const* k = class_kinds(); *k; ++k) known |= a.class_filter == *k;
    if (!known) {
      std::string kinds;
      for (const char* const* k = class_kinds(); *k; ++k)
        kinds += std::string(kinds.empty() ? "" : ", ") + *k;
      return Error::invalid(fmt::format("unknown device class '{}'", a.class_filter),
                            "use one of: " + kinds);
    }
  }
  return {};
}

bool keep(const Device& d, const Args& a, std::optional<int> group) {
  if (!a.class_filter.empty() && d.kind() != a.class_filter) return false;
  if (!a.vendor_filter.empty()) {
    auto id = parse_hex(a.vendor_filter, 4);
    bool by_id = id && a.vendor_filter.size() == 4 && *id == d.vendor;
    bool by_name = lower(d.vendor_name).find(lower(a.vendor_filter)) != std::string::npos;
    if (!by_id && !by_name) return false;
  }
  if (!a.driver_filter.empty()) {
    std::string drv = d.driver.value_or("none");
    if (drv != a.driver_filter) return false;
  }
  if (group && d.iommu_group != group) return false;
  return true;
}

Style verdict_style(Verdict v) {
  switch (v) {
    case Verdict::kReady:
      return Style::kGood;
    case Verdict::kNeedsGroup:
      return Style::kWarn;
    case Verdict::kBridge:
      return Style::kDim;
    default:
      return Style::kBad;
  }
}

// Whether `s` needs no escaping: printable ASCII other than '"' and '\'. Eight bytes at a time
// (each byte's high bit set where it fails), then the tail: list checks five strings a device.
bool plain_json(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  auto zero_byte = [&](uint64_t x) { return (x - kOnes) & ~x & kHigh; };
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    uint64_t bad = (w & kHigh) | ((w - 0x20 * kOnes) & ~w & kHigh) | zero_byte(w ^ ('"' * kOnes)) |
                   zero_byte(w ^ ('\\' * kOnes));
    if (bad) return false;
  }
  for (; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return false;
  }
  return true;
}

// A JSON string as nlohmann's dump() writes it (docs/json.md shapes stay byte-identical). Text
// beyond ASCII goes through nlohmann itself, which also validates its UTF-8.
void json_string(std::string& out, std::string_view s) {
  if (!plain_json(s)) {
    out += dump_json(Json(std::string(s)), -1);
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

// `prefix`, then `v` in lowercase hex with at least `digits` digits (fmt's "{:0Nx}"), written by
// hand: six fmt calls per device were 5% of list's instructions at 4,096 devices.
void hex_field(std::string& out, std::string_view prefix, uint32_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[8];
  char* end = buf + sizeof buf;
  char* p = end;
  for (int n = 0; v || n < digits; ++n, v >>= 4) *--p = kHex[v & 0xf];
  out += prefix;
  out.append(p, end);
}

void json_address(std::string& out, const PciAddress& a) {
  out += '"';
  out += a.str();  // 12 characters: no allocation (the short-string buffer)
  out += '"';
}

void json_addresses(std::string& out, const std::vector<PciAddress>& list) {
  out += '[';
  for (size_t i = 0; i < list.size(); ++i) {
    if (i) out += ',';
    json_address(out, list[i]);
  }
  out += ']';
}

// One device of `list --json`: device_json() plus "passthrough", written directly. At 4,096
// devices the nlohmann document per device (an ordered map of 20 keys) costs more than the
// writing (bench/list-vs-lspci); tests/golden holds the shape byte for byte. The keys are
// string_view literals: their lengths are known, no strlen per key.
void device_line(std::string& out, const Device& d, const Assessment& as) {
  using namespace std::string_view_literals;
  out += "{\"address\":"sv;
  json_address(out, d.address);
  hex_field(out, ",\"vendor_id\":\""sv, d.vendor, 4);
  hex_field(out, "\",\"device_id\":\""sv, d.device, 4);
  hex_field(out, "\",\"subsystem_vendor_id\":\""sv, d.subsystem_vendor, 4);
  hex_field(out, "\",\"subsystem_device_id\":\""sv, d.subsystem_device, 4);
  hex_field(out, "\",\"revision\":\""sv, d.revision, 2);
  hex_field(out, "\",\"class\":\""sv, d.class_code, 6);
  out += "\",\"kind\":"sv;
  json_string(out, d.kind());
  out += ",\"vendor_name\":"sv;
  json_string(out, d.vendor_name);
  out += ",\"device_name\":"sv;
  json_string(out, d.device_name);
  out += ",\"class_name\":"sv;
  json_string(out, d.class_name);
  out += ",\"driver\":"sv;
  if (d.driver)
    json_string(out, *d.driver);
  else
    out += "null"sv;
  out += ",\"iommu_group\":"sv;
  if (d.iommu_group) {
    char buf[16];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *d.iommu_group);
    out.append(buf, end);
  } else {
    out += "null"sv;
  }
  out += d.is_bridge() ? ",\"bridge\":true"sv : ",\"bridge\":false"sv;
  out += d.boot_vga ? ",\"boot_vga\":true,\"parents\":"sv : ",\"boot_vga\":false,\"parents\":"sv;
  json_addresses(out, d.parents);
  out += ",\"physfn\":"sv;
  if (d.physfn)
    json_address(out, *d.physfn);
  else
    out += "null"sv;
  out += ",\"virtfns\":"sv;
  json_addresses(out, d.virtfns);
  out += ",\"passthrough\":{\"verdict\":"sv;
  json_string(out, verdict_id(as.verdict));
  out += ",\"reason\":"sv;
  json_string(out, as.reason);
  out += "}}"sv;
}

std::string summary_line(const std::map<Verdict, int>& counts, size_t devices, size_t groups) {
  std::vector<std::string> parts;
  for (auto [v, n] : counts) parts.push_back(fmt::format("{} {}", n, verdict_label(v)));
  return fmt::format("{} device{}, {} IOMMU group{}{}{}", devices, devices == 1 ? "" : "s", groups,
                     groups == 1 ? "" : "s", parts.empty() ? "" : ": ", fmt::join(parts, ", "));
}

}  // namespace

int run_list(Context& ctx, const Args& a) {
  if (auto s = validate_filters(a); !s) return fail(ctx, s.error());
  auto group = group_filter(a);
  if (!group) return fail(ctx, group.error());
  auto inv = ctx.inventory();
  if (!inv) return fail(ctx, inv.error());
  const auto& groups = ctx.groups();
  bool iommu = (*inv)->iommu_groups_present();
  Assessor assessor(groups, ctx.impact(), iommu);
  bool zero_domain = (*inv)->single_domain_zero();
  // Streamed one device per line: a 4,096-device host would otherwise build its whole
  // document in memory first (bench/list-vs-lspci).
  if (ctx.json) ctx.out << "{\n  \"schema\": \"pcipass.list/1\",\n  \"devices\": [";
  const char* separator = "\n    ";
  Table table({"ADDRESS", "CLASS", "DRIVER", "GROUP", "VERDICT", "DEVICE"});
  std::map<Verdict, int> counts;
  size_t shown = 0;
  std::string line;
  for (const auto& d : (*inv)->devices()) {
    if (!keep(d, a, *group)) continue;
    ++shown;
    Assessment as = assessor(d, false);
    counts[as.verdict]++;
    if (ctx.json) {
      // Companions are left to `show` and `groups`: listed per device they grow with the square
      // of a group's size (a 764-device group alone would add 9 MB here).
      line = separator;
      device_line(line, d, as);
      ctx.out << line;
      separator = ",\n    ";
      continue;
    }
    table.add({{short_address(d.address, zero_domain)},
               {d.kind(), Style::kPlain},
               {d.driver.value_or("-"), d.driver ? Style::kPlain : Style::kDim},
               {d.iommu_group ? std::to_string(*d.iommu_group) : "-"},
               {verdict_label(as.verdict), verdict_style(as.verdict)},
               {device_title(d)}});
  }
  size_t group_count = groups.groups().size();
  if (ctx.json) {
    Json summary{{"devices", shown}, {"iommu_groups", group_count}, {"iommu_enabled", iommu}};
    Json by_verdict = Json::object();
    for (auto [v, n] : counts) by_verdict[verdict_id(v)] = n;
    summary["verdicts"] = by_verdict;
    ctx.out << (shown ? "\n  ],\n" : "],\n") << "  \"summary\": " << dump_json(summary, -1) << ",\n"
            << "  \"pci_ids\": " << dump_json(pci_ids_names_json(ctx), -1) << "\n}\n";
    return kExitOk;
  }
  if (table.size()) table.print(ctx.out, ctx.term);
  ctx.out << summary_line(counts, shown, group_count);
  if (!iommu) ctx.out << " (IOMMU off: see `pcipass check`)";
  ctx.out << '\n';
  return kExitOk;
}

}  // namespace pcipass::cli
