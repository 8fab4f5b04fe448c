// A snapshot extracted again must read back as the same host.
#include "snapshot/snapshot.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include "cli_harness.h"
#include "temp_tree.h"

namespace pcipass::test {
namespace {

void extract(const std::string& archive_path, const std::string& dest) {
  archive* in = archive_read_new();
  archive_read_support_filter_gzip(in);
  archive_read_support_format_tar(in);
  ASSERT_EQ(archive_read_open_filename(in, archive_path.c_str(), 1 << 16), ARCHIVE_OK);
  archive* out = archive_write_disk_new();
  archive_write_disk_set_options(out,
                                 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  archive_entry* e;
  while (archive_read_next_header(in, &e) == ARCHIVE_OK) {
    std::string path = dest + "/" + archive_entry_pathname(e);
    archive_entry_set_pathname(e, path.c_str());
    ASSERT_EQ(archive_write_header(out, e), ARCHIVE_OK) << archive_error_string(out);
    const void* buf;
    size_t size;
    la_int64_t off;
    while (archive_read_data_block(in, &buf, &size, &off) == ARCHIVE_OK)
      archive_write_data_block(out, buf, size, off);
  }
  archive_write_free(out);
  archive_read_free(in);
}

TEST(Snapshot, RoundTripsThroughAnArchive) {
  TempTree host;
  const std::string bus = "/sys/devices/pci0000:00";
  host.pci_device(bus, "0000:00:1c.0", 0x8086, 0x2448, 0x060400, "pcieport", 3);
  host.pci_device(bus + "/0000:00:1c.0", "0000:01:00.0", 0x10de, 0x1b80, 0x030000, "nouveau", 3);
  host.pci_device(bus + "/0000:00:1c.0", "0000:01:00.1", 0x10de, 0x10f0, 0x040300, "snd_hda_intel",
                  3);
  host.pci_device(bus, "0000:00:02.0", 0x1af4, 0x1042, 0x010000, "virtio-pci", 4);
  host.dir(bus + "/0000:00:02.0/virtio1/block/vda");
  host.file(bus + "/0000:00:02.0/virtio1/block/vda/dev", "254:0\n");
  host.link("/sys/class/block/vda", bus + "/0000:00:02.0/virtio1/block/vda");
  host.link("/sys/dev/block/254:0", bus + "/0000:00:02.0/virtio1/block/vda");
  host.file("/proc/self/mountinfo", "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n");
  host.file("/proc/cmdline", "root=/dev/vda intel_iommu=on\n");
  host.file("/proc/cpuinfo",
            "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\n\nprocessor\t: 1\n");
  host.file("/dev/kvm", "");
  host.file("/sys/firmware/acpi/tables/DMAR", "binary table");

  auto fs = make_real_host_fs(host.root());
  SnapshotTree tree = collect_snapshot(*fs);
  EXPECT_EQ(tree.at("/proc/cpuinfo").data,
            "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\n");
  EXPECT_EQ(tree.at("/sys/firmware/acpi/tables/DMAR").data, "");  // presence only
  EXPECT_EQ(tree.at("/sys/bus/pci/devices/0000:01:00.0").type, SnapshotEntry::kLink);

  TempTree out;
  std::string file = out.root() + "/snap.tar.gz";
  ASSERT_TRUE(write_snapshot(tree, file).ok());
  TempTree copy;
  extract(file, copy.root());
  for (const char* cmd : {"list", "groups", "tree"}) {
    auto a = run_cli({"--root", host.root(), "--json", cmd});
    auto b = run_cli({"--root", copy.root(), "--json", cmd});
    EXPECT_EQ(a.status, 0) << a.err;
    EXPECT_EQ(a.out, b.out) << cmd;
  }
  auto list = run_cli({"--root", copy.root(), "list"});
  EXPECT_NE(list.out.find("host-critical"), std::string::npos)
      << list.out;  // the root disk survived
}

TEST(Snapshot, UnwritableOutputIsAnError) {
  TempTree host;
  host.pci_device("/sys/devices/pci0000:00", "0000:00:02.0", 0x1af4, 0x1042, 0x010000);
  auto fs = make_real_host_fs(host.root());
  auto s = write_snapshot(collect_snapshot(*fs), "/nonexistent-dir/snap.tar.gz");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message.rfind("create /nonexistent-dir/snap.tar.gz: ", 0), 0u)
      << s.error().message;
}

}  // namespace
}  // namespace pcipass::test
