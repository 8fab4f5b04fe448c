#include "pci/config_space.h"

#include <gtest/gtest.h>

namespace pcipass {
namespace {

struct Bytes {
  std::string b;
  explicit Bytes(size_t n) : b(n, '\0') {}
  void u8(size_t o, uint8_t v) { b[o] = static_cast<char>(v); }
  void u16(size_t o, uint16_t v) { u8(o, v & 0xff), u8(o + 1, v >> 8); }
  void u32(size_t o, uint32_t v) { u16(o, v & 0xffff), u16(o + 2, v >> 16); }
  // A standard capability at `o` pointing to `next`.
  void cap(size_t o, uint8_t id, uint8_t next) { u8(o, id), u8(o + 1, next); }
  void ext(size_t o, uint16_t id, uint16_t next) {
    u32(o, id | (1u << 16) | (uint32_t(next) << 20));
  }
};

Bytes endpoint(size_t size) {
  Bytes c(size);
  c.u16(0, 0x10de), c.u16(2, 0x1b80), c.u8(8, 0xa1);
  c.u8(9, 0x00), c.u8(10, 0x00), c.u8(11, 0x03);  // class 030000
  c.u16(6, 0x10);                                 // capability list present
  c.u8(0x34, 0x60);
  return c;
}

TEST(ConfigSpace, DecodesHeaderAndCapabilities) {
  Bytes c = endpoint(4096);
  c.cap(0x60, 0x01, 0x68);  // PM
  c.u16(0x64, 0x0008);      // NoSoftRst
  c.cap(0x68, 0x05, 0x78);  // MSI, 64-bit
  c.u16(0x6a, 0x0080);
  c.cap(0x78, 0x10, 0xb4);  // PCIe endpoint with FLR, link 8GT/s x16
  c.u16(0x7a, 0x0002);
  c.u32(0x7c, 1u << 28);
  c.u32(0x84, 0x103);
  c.u16(0x8a, 0x103);
  c.cap(0xb4, 0x11, 0x00);  // MSI-X 4 vectors
  c.u16(0xb6, 0x0003);
  c.ext(0x100, 0x0001, 0x140);  // AER
  c.ext(0x140, 0x0010, 0x000);  // SR-IOV
  c.u16(0x140 + 0x0e, 7), c.u16(0x140 + 0x10, 3), c.u16(0x140 + 0x1a, 0x1b81);
  auto r = parse_config_space(c.b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& cs = *r;
  EXPECT_EQ(cs.vendor, 0x10de);
  EXPECT_EQ(cs.class_code, 0x030000u);
  EXPECT_EQ(cs.revision, 0xa1);
  ASSERT_EQ(cs.capabilities.size(), 6u);
  EXPECT_TRUE(cs.problems.empty());
  EXPECT_TRUE(cs.pm_no_soft_reset);
  EXPECT_TRUE(cs.msi);
  EXPECT_TRUE(cs.msix);
  ASSERT_TRUE(cs.pcie);
  EXPECT_TRUE(cs.pcie->flr);
  EXPECT_EQ(cs.pcie->port_type_name, "Endpoint");
  EXPECT_EQ(*cs.pcie->link_width, 16);
  EXPECT_EQ(cs.capabilities[2].summary, "Endpoint, FLR, link 8 GT/s x16 (max 8 GT/s x16)");
  EXPECT_EQ(cs.capabilities[1].summary, "64-bit, 1 vector");
  EXPECT_EQ(cs.capabilities[3].summary, "4 vectors");
  ASSERT_TRUE(cs.sriov);
  EXPECT_EQ(cs.sriov->total_vfs, 7);
  EXPECT_EQ(cs.sriov->vf_device, 0x1b81);
  EXPECT_TRUE(cs.aer);
  EXPECT_EQ(cs.capabilities[5].name, "SR-IOV");
}

TEST(ConfigSpace, TruncatedHeaderIsAnError) {
  auto r = parse_config_space(std::string(40, '\0'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "config space is truncated: 40 bytes, the header needs 64");
}

TEST(ConfigSpace, UnprivilegedReadSaysSo) {
  Bytes c = endpoint(64);
  auto r = parse_config_space(c.b);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->capabilities.empty());
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_EQ(r->problems[0],
            "only the 64-byte header is readable (run as root to see capabilities)");
}

TEST(ConfigSpace, StandardListLoop) {
  Bytes c = endpoint(256);
  c.cap(0x60, 0x01, 0x70);
  c.cap(0x70, 0x05, 0x60);  // back to the first
  auto r = parse_config_space(c.b);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->capabilities.size(), 2u);
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_EQ(r->problems[0], "capability list loops back to 0x60");
}

TEST(ConfigSpace, SelfLoop) {
  Bytes c = endpoint(256);
  c.cap(0x60, 0x01, 0x60);
  auto r = parse_config_space(c.b);
  EXPECT_EQ(r->problems.at(0), "capability list loops back to 0x60");
}

TEST(ConfigSpace, PointerIntoHeader) {
  Bytes c = endpoint(256);
  c.u8(0x34, 0x20);
  auto r = parse_config_space(c.b);
  EXPECT_TRUE(r->capabilities.empty());
  EXPECT_EQ(r->problems.at(0), "capability pointer 0x20 is outside 0x40..0xff");
}

TEST(ConfigSpace, PointerPastTruncatedData) {
  Bytes c = endpoint(128);
  c.cap(0x60, 0x01, 0xf0);
  auto r = parse_config_space(c.b);
  EXPECT_EQ(r->capabilities.size(), 1u);
  EXPECT_EQ(r->problems.at(0), "capability pointer 0xf0 is outside 0x40..0x7f");
}

TEST(ConfigSpace, NoCapabilityListBitMeansNone) {
  Bytes c = endpoint(256);
  c.u16(6, 0);
  c.cap(0x60, 0x01, 0x00);
  EXPECT_TRUE(parse_config_space(c.b)->capabilities.empty());
}

TEST(ConfigSpace, LowBitsOfPointersAreIgnored) {
  Bytes c = endpoint(256);
  c.u8(0x34, 0x63);  // the low two bits are reserved
  c.cap(0x60, 0x05, 0x00);
  auto r = parse_config_space(c.b);
  ASSERT_EQ(r->capabilities.size(), 1u);
  EXPECT_EQ(r->capabilities[0].offset, 0x60);
}

Bytes pcie_endpoint() {
  Bytes c = endpoint(4096);
  c.cap(0x60, 0x10, 0x00);
  return c;
}

TEST(ConfigSpace, ExtendedLoop) {
  Bytes c = pcie_endpoint();
  c.ext(0x100, 0x0001, 0x200);
  c.ext(0x200, 0x000d, 0x100);
  auto r = parse_config_space(c.b);
  EXPECT_EQ(r->capabilities.size(), 3u);
  EXPECT_EQ(r->problems.at(0), "extended capability list loops back to 0x100");
}

TEST(ConfigSpace, ExtendedPointerBelow0x100) {
  Bytes c = pcie_endpoint();
  c.ext(0x100, 0x0001, 0x0c0);
  auto r = parse_config_space(c.b);
  EXPECT_EQ(r->problems.at(0), "extended capability pointer 0x0c0 is outside 0x100..0xfff");
}

TEST(ConfigSpace, ExtendedSpaceAbsentOn256Bytes) {
  Bytes c = endpoint(256);
  c.cap(0x60, 0x10, 0x00);
  auto r = parse_config_space(c.b);
  EXPECT_EQ(r->capabilities.size(), 1u);
  EXPECT_TRUE(r->problems.empty());
}

TEST(ConfigSpace, AllOnesExtendedHeaderIsAnEmptyList) {
  Bytes c = pcie_endpoint();
  c.u32(0x100, 0xffffffff);
  auto r = parse_config_space(c.b);
  EXPECT_EQ(r->capabilities.size(), 1u);
  EXPECT_TRUE(r->problems.empty());
}

TEST(ConfigSpace, TruncatedPcieCapability) {
  Bytes c = endpoint(0x66);
  c.cap(0x60, 0x10, 0x00);
  auto r = parse_config_space(c.b);
  EXPECT_EQ(r->problems.at(0), "PCI Express capability at 0x60 is truncated");
  EXPECT_FALSE(r->pcie);
}

TEST(ConfigSpace, AcsIsolation) {
  Bytes c = pcie_endpoint();
  c.ext(0x100, 0x000d, 0);
  c.u16(0x104, 0x001f), c.u16(0x106, 0x001d);
  auto r = parse_config_space(c.b);
  ASSERT_TRUE(r->acs);
  EXPECT_TRUE(r->acs->isolates());
  EXPECT_EQ(r->capabilities[1].name, "Access Control Services");
}

}  // namespace
}  // namespace pcipass
