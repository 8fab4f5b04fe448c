// Proxmox VE's own files (tests/fixtures/pve, as Proxmox writes them) parsed back: the lines of
// `pcipass qemu-args --format proxmox|proxmox-mapping` must be what Proxmox itself writes for the
// same device (same keys and values, the default key first, the rest sorted, no spaces).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "cli_harness.h"

namespace pcipass::test {
namespace {

std::string read_text(const std::string& rel) {
  std::ifstream in(source_path(rel));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

// A property string (PVE::JSONSchema::parse_property_string): KEY=VALUE items split at commas,
// an item without '=' is the default key's value and may only come first.
struct PropertyString {
  std::vector<std::pair<std::string, std::string>> items;
  bool well_formed = true;
};

PropertyString parse_property_string(const std::string& value, const std::string& default_key) {
  PropertyString p;
  auto parts = split(value, ',');
  for (size_t i = 0; i < parts.size(); ++i) {
    auto eq = parts[i].find('=');
    if (eq == std::string::npos) {
      if (i != 0 || default_key.empty()) p.well_formed = false;
      p.items.push_back({default_key, parts[i]});
    } else {
      p.items.push_back({parts[i].substr(0, eq), parts[i].substr(eq + 1)});
    }
    if (parts[i].find(' ') != std::string::npos || parts[i].empty()) p.well_formed = false;
  }
  // print_property_string: the default key first, the others in sorted order.
  size_t first = !p.items.empty() && p.items[0].first == default_key ? 1 : 0;
  for (size_t i = first + 1; i < p.items.size(); ++i)
    if (p.items[i - 1].first >= p.items[i].first) p.well_formed = false;
  return p;
}

// A VM config: "key: value" lines up to the first snapshot section.
std::map<std::string, std::string> parse_vm_conf(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const auto& line : split(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') break;
    auto colon = line.find(": ");
    EXPECT_NE(colon, std::string::npos) << line;
    out[line.substr(0, colon)] = line.substr(colon + 2);
  }
  return out;
}

// SectionConfig without the type (PVE::Mapping::PCI): "ID" then "\tKEY VALUE" lines.
std::map<std::string, std::vector<std::string>> parse_mapping(const std::string& text) {
  std::map<std::string, std::vector<std::string>> maps;
  std::string section;
  for (const auto& line : split(text, '\n')) {
    if (line.empty()) {
      section.clear();
      continue;
    }
    if (line[0] != '\t') {
      EXPECT_TRUE(section.empty()) << "no blank line before section " << line;
      section = line;
      maps[section];
      continue;
    }
    EXPECT_FALSE(section.empty()) << line;
    auto space = line.find(' ');
    if (line.substr(1, space - 1) == "map") maps[section].push_back(line.substr(space + 1));
  }
  return maps;
}

const std::string kHost = "tests/fixtures/hosts/intel-workstation";

TEST(Pve, HostpciLineIsWhatProxmoxWrites) {
  auto conf = parse_vm_conf(read_text("tests/fixtures/pve/qemu-server/100.conf"));
  auto theirs = parse_property_string(conf.at("hostpci0"), "host");
  ASSERT_TRUE(theirs.well_formed) << conf.at("hostpci0");

  auto r = run_cli({"--root", source_path(kHost), "qemu-args", "--format", "proxmox",
                    "--with-group", "--x-vga", "01:00.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto conf_ours = parse_vm_conf(r.out);
  ASSERT_EQ(conf_ours.size(), 1u) << r.out;
  auto ours = parse_property_string(conf_ours.at("hostpci0"), "host");
  EXPECT_TRUE(ours.well_formed) << r.out;
  EXPECT_EQ(ours.items, theirs.items);
}

TEST(Pve, MappingEntryIsWhatProxmoxWrites) {
  auto maps = parse_mapping(read_text("tests/fixtures/pve/mapping/pci.cfg"));
  ASSERT_EQ(maps.size(), 2u);
  auto theirs = parse_property_string(maps.at("pcipass-0000-01-00").at(0), "");
  ASSERT_TRUE(theirs.well_formed);
  ASSERT_TRUE(parse_property_string(maps.at("gpu-spare").at(0), "").well_formed);

  auto r = run_cli({"--root", source_path(kHost), "qemu-args", "--format", "proxmox-mapping",
                    "--node", "pve", "--with-group", "01:00.0"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto ours_maps = parse_mapping(r.out);
  ASSERT_EQ(ours_maps.size(), 1u) << r.out;
  auto ours = parse_property_string(ours_maps.at("pcipass-0000-01-00").at(0), "");
  EXPECT_TRUE(ours.well_formed) << r.out;
  EXPECT_EQ(ours.items, theirs.items);

  // The VM's line that uses the mapping, as in 101.conf.
  auto vm = parse_vm_conf(read_text("tests/fixtures/pve/qemu-server/101.conf"));
  auto j = run_cli({"--root", source_path(kHost), "--json", "qemu-args", "--format",
                    "proxmox-mapping", "--node", "pve", "--with-group", "01:00.0"});
  ASSERT_EQ(j.status, 0) << j.err;
  EXPECT_NE(j.out.find("\"value\": \"" + vm.at("hostpci0") + "\""), std::string::npos) << j.out;
}

// The parser above must be able to fail, or the two tests prove nothing.
TEST(Pve, ParserRejectsWhatProxmoxWouldNotWrite) {
  EXPECT_FALSE(parse_property_string("0000:01:00,x-vga=1,pcie=1", "host").well_formed);
  EXPECT_FALSE(parse_property_string("pcie=1,0000:01:00", "host").well_formed);
  EXPECT_FALSE(parse_property_string("0000:01:00, pcie=1", "host").well_formed);
  EXPECT_TRUE(parse_property_string("0000:01:00,pcie=1,x-vga=1", "host").well_formed);
}

}  // namespace
}  // namespace pcipass::test
