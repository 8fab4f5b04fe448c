#include "pci/address.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace pcipass {
namespace {

std::string error_of(std::string_view text) {
  auto r = parse_address(text);
  return r.ok() ? "ok" : r.error().message;
}

TEST(Address, ParsesFullShortAndLibvirtForms) {
  auto a = parse_address("0000:01:00.0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->str(), "0000:01:00.0");
  EXPECT_EQ(parse_address("01:00.1")->str(), "0000:01:00.1");
  EXPECT_EQ(parse_address("pci_0000_1a_1f_7")->str(), "0000:1a:1f.7");
  EXPECT_EQ(parse_address("10000:e1:00.0")->str(), "10000:e1:00.0");  // VMD domains
  EXPECT_EQ(parse_address("0000:AF:00.0")->str(), "0000:af:00.0");
}

TEST(Address, LibvirtName) {
  EXPECT_EQ(parse_address("0000:3b:02.5")->libvirt_name(), "pci_0000_3b_02_5");
}

TEST(Address, NamesTheBadField) {
  EXPECT_EQ(error_of("0000:zz:00.0"), "invalid bus number 'zz' in '0000:zz:00.0'");
  EXPECT_EQ(error_of("0000:01:20.0"), "invalid slot number '20' in '0000:01:20.0'");
  EXPECT_EQ(error_of("0000:01:00.8"), "invalid function number '8' in '0000:01:00.8'");
  EXPECT_EQ(error_of("0000:01:00."), "invalid function number '' in '0000:01:00.'");
  EXPECT_EQ(error_of("xyz0:01:00.0"), "invalid domain 'xyz0' in 'xyz0:01:00.0'");
  EXPECT_EQ(error_of(":01:00.0"), "invalid domain '' in ':01:00.0'");
  EXPECT_EQ(error_of("100:00.0"), "invalid bus number '100' in '100:00.0'");
  EXPECT_EQ(error_of("01.0"), "'01.0' is not a PCI address: expected BUS:SLOT.FUNCTION");
  EXPECT_EQ(error_of("0000:01:00"),
            "'0000:01:00' is not a PCI address: the '.FUNCTION' part is missing");
  EXPECT_EQ(error_of("pci_0000_01_00"), "invalid libvirt device name 'pci_0000_01_00'");
  EXPECT_EQ(error_of("pci_0000_01_00_0_1"), "invalid libvirt device name 'pci_0000_01_00_0_1'");
  EXPECT_EQ(parse_address("0000:zz:00.0").error().kind, ErrorKind::kInvalid);
  EXPECT_FALSE(parse_address("0000:zz:00.0").error().fix.empty());
}

TEST(Selector, IdsAndAddresses) {
  auto s = parse_selector("10de:1b80");
  ASSERT_TRUE(s.ok());
  auto id = std::get<IdPattern>(*s);
  EXPECT_EQ(id.vendor, 0x10de);
  EXPECT_EQ(*id.device, 0x1b80);
  EXPECT_TRUE(id.matches(0x10de, 0x1b80));
  EXPECT_FALSE(id.matches(0x10de, 0x10f0));
  auto v = std::get<IdPattern>(*parse_selector("8086"));
  EXPECT_FALSE(v.device.has_value());
  EXPECT_TRUE(v.matches(0x8086, 0x1234));
  EXPECT_TRUE(std::holds_alternative<PciAddress>(*parse_selector("01:00.0")));
  EXPECT_TRUE(std::holds_alternative<PciAddress>(*parse_selector("pci_0000_01_00_0")));
}

TEST(Selector, BadIds) {
  EXPECT_EQ(parse_selector("10dg:1b80").error().message, "invalid vendor ID '10dg' in '10dg:1b80'");
  EXPECT_EQ(parse_selector("10de:1b8").error().message, "invalid device ID '1b8' in '10de:1b8'");
  EXPECT_EQ(parse_selector("").error().message, "empty device argument");
}

}  // namespace
}  // namespace pcipass

namespace pcipass {
namespace {

TEST(Address, AddressesInPath) {
  auto chain = addresses_in_path("/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/net/eth0");
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0].str(), "0000:00:01.0");
  EXPECT_EQ(chain[1].str(), "0000:01:00.0");
  // Only canonical components count: no short forms, no lookalikes.
  EXPECT_TRUE(addresses_in_path("/sys/devices/pci0000:00/01:00.0/virtio1").empty());
  EXPECT_TRUE(addresses_in_path("").empty());
}

// The twelve-character names take a shortcut: it must accept exactly what the strict parse
// followed by a comparison with str() accepts, field by field and character by character.
TEST(Address, AddressesInPathShortcutAgreesWithTheStrictParse) {
  std::vector<std::string> names;
  for (std::string base : {"0000:00:00.0", "abcd:ef:1f.7", "0001:80:10.3"})
    for (size_t i = 0; i < base.size(); ++i)
      for (char c : std::string("09afAFg:.- /x")) {
        std::string n = base;
        n[i] = c;
        names.push_back(n);
      }
  names.insert(names.end(), {"0000:00:20.0", "0000:00:1f.8", "10000:00:00.0", "0000:00:00.00"});
  for (const auto& n : names) {
    auto strict = parse_address(n);
    bool canonical = strict.ok() && strict->str() == n;
    auto found = addresses_in_path("/sys/devices/pci0000:00/" + n + "/net");
    ASSERT_EQ(found.size(), canonical ? 1u : 0u) << n;
    if (canonical) {
      EXPECT_EQ(found[0], *strict) << n;
    }
  }
}

// str() is written by hand for speed; it must say exactly what the format string says.
TEST(Address, StrIsTheKernelsNameForEveryField) {
  for (uint32_t domain : {0u, 1u, 0xabcu, 0xffffu, 0x10000u, 0xffffffffu})
    for (int bus = 0; bus < 256; bus += 3)
      for (int slot = 0; slot < 32; ++slot)
        for (int fn = 0; fn < 8; ++fn) {
          PciAddress a{domain, static_cast<uint8_t>(bus), static_cast<uint8_t>(slot),
                       static_cast<uint8_t>(fn)};
          ASSERT_EQ(a.str(), fmt::format("{:04x}:{:02x}:{:02x}.{:x}", domain, bus, slot, fn));
        }
}

}  // namespace
}  // namespace pcipass
