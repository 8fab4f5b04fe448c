// The GRUB defaults and /etc/kernel/cmdline editors: parse then print gives the same bytes, the
// values read agree with /bin/sh sourcing the same file (an oracle independent of pcipass), and
// an edit changes only the bytes of the parameters it touches (golden strings below).
#include <gtest/gtest.h>
#include <stdio.h>

#include <array>
#include <filesystem>
#include <fstream>

#include "boot/cmdline_file.h"
#include "boot/grub_cfg.h"
#include "boot/grub_defaults.h"

namespace pcipass::boot {
namespace {

const Edit kIntelOn{{{"intel_iommu", "on"}}, {{"iommu", "off"}}, {}};
const Edit kAmd{{}, {{"amd_iommu", "off"}, {"iommu", "off"}}, {}};

// What /bin/sh makes of GRUB_CMDLINE_LINUX and _DEFAULT after sourcing `text`.
std::string shell_value(const std::string& text, const char* name) {
  std::string path = std::filesystem::temp_directory_path() / "pcipass-grub-oracle";
  std::ofstream(path, std::ios::binary) << text;
  std::string cmd = "sh -c '. " + path + " >/dev/null 2>&1; printf %s \"$" + name + "\"'";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 256> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  ::pclose(p);
  std::filesystem::remove(path);
  return out;
}

std::string edited(const std::string& text, const Edit& e = kIntelOn) {
  GrubDefaults g{{ShellFile::parse(kGrubDefaults, text)}};
  auto r = g.edit(e);
  if (!r) return "error: " + r.error().message;
  return r->empty() ? text : r->front().second;
}

struct Case {
  const char* name;
  std::string before, after;  // after kIntelOn
  bool shell = true;          // /bin/sh reads it as pcipass does (CRLF: sh keeps the CR)
};

const Case kCases[] = {
    {"plain", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n"},
    {"single_quotes_and_bang",
     "GRUB_DEFAULT='!Windows 2020'\nGRUB_CMDLINE_LINUX_DEFAULT='quiet splash'\n",
     "GRUB_DEFAULT='!Windows 2020'\nGRUB_CMDLINE_LINUX_DEFAULT='quiet splash intel_iommu=on'\n"},
    {"variable_in_value",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
     "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT intel_iommu=off\"\n",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
     "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT intel_iommu=on\"\n"},
    {"braced_variable_appended",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"${GRUB_CMDLINE_LINUX_"
     "DEFAULT}\"\n",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
     "GRUB_CMDLINE_LINUX_DEFAULT=\"${GRUB_CMDLINE_LINUX_DEFAULT} intel_iommu=on\"\n"},
    {"repeated_key_last_wins",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"a\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"b\"\n",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"a\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"b intel_iommu=on\"\n"},
    {"linux_vs_default_replaced_in_place",
     "GRUB_CMDLINE_LINUX=\"intel_iommu=off rhgb\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
     "GRUB_CMDLINE_LINUX=\"intel_iommu=on rhgb\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"},
    {"only_linux", "GRUB_CMDLINE_LINUX=\"rhgb quiet\"\n",
     "GRUB_CMDLINE_LINUX=\"rhgb quiet intel_iommu=on\"\n"},
    {"no_trailing_newline", "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"",
     "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\""},
    {"crlf", "GRUB_TIMEOUT=5\r\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\r\n",
     "GRUB_TIMEOUT=5\r\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\r\n", false},
    {"neither_set", "GRUB_TIMEOUT=5",
     "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on\"\n"},
    {"comments_kept",
     "# GRUB_CMDLINE_LINUX_DEFAULT=\"nope\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"  # mine\n",
     "# GRUB_CMDLINE_LINUX_DEFAULT=\"nope\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"  "
     "# mine\n"},
    {"unquoted", "GRUB_CMDLINE_LINUX_DEFAULT=quiet\n",
     "GRUB_CMDLINE_LINUX_DEFAULT=quiet\" intel_iommu=on\"\n"},
    {"empty", "GRUB_CMDLINE_LINUX_DEFAULT=\nGRUB_CMDLINE_LINUX=\"\"\n",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on\"\nGRUB_CMDLINE_LINUX=\"\"\n"},
    {"iommu_off_removed_with_its_space", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet iommu=off  splash\"\n",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet  splash intel_iommu=on\"\n"},
    {"export_and_tabs", "export GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\ttext\"\n",
     "export GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\ttext intel_iommu=on\"\n"},
    {"already_there", "GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on\"\n",
     "GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on\"\n"},
    {"quote_inside_word_refused", "GRUB_CMDLINE_LINUX_DEFAULT=intel_iommu=\"off\"\n",
     "error: cannot remove intel_iommu=off from GRUB_CMDLINE_LINUX(_DEFAULT): it is written with "
     "quotes, escapes or a variable inside it"},
    {"command_substitution_refused", "GRUB_CMDLINE_LINUX_DEFAULT=\"$(cat /x)\"\n",
     "error: cannot tell the value of GRUB_CMDLINE_LINUX_DEFAULT: /etc/default/grub line 1 "
     "computes it ($(...), `...`, ${x:-y} or an unclosed quote)"},
};

TEST(GrubDefaults, RoundTripShellAgreementAndGoldenEdits) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    ShellFile f = ShellFile::parse(kGrubDefaults, c.before);
    EXPECT_EQ(f.str(), c.before);
    EXPECT_EQ(edited(c.before), c.after);
    if (!c.shell || c.after.starts_with("error:")) continue;
    auto env = evaluate({f});
    for (const char* name : {"GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"})
      EXPECT_EQ(env[name].value_or(""), shell_value(c.before, name)) << name;
    // The shell reads the edited file as asking for intel_iommu=on.
    KernelCmdline line = KernelCmdline::parse(shell_value(c.after, "GRUB_CMDLINE_LINUX") + " " +
                                              shell_value(c.after, "GRUB_CMDLINE_LINUX_DEFAULT"));
    EXPECT_TRUE(satisfied(kIntelOn, line)) << *line.str();
  }
}

TEST(GrubDefaults, AmdRemovesOnlyTheOffParameter) {
  EXPECT_EQ(edited("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet amd_iommu=off splash\"\n", kAmd),
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\n");
  EXPECT_EQ(edited("GRUB_CMDLINE_LINUX_DEFAULT=\"amd_iommu=off iommu=off\"\n", kAmd),
            "GRUB_CMDLINE_LINUX_DEFAULT=\"\"\n");
  EXPECT_EQ(edited("X=1\n", kAmd), "X=1\n");
}

// An unquoted \v is a literal character to /bin/sh (the value goes on past it) and white space to
// the kernel (it splits the parameters there).
TEST(GrubDefaults, AVerticalTabIsShellTextButKernelSpace) {
  EXPECT_EQ(edited("GRUB_CMDLINE_LINUX_DEFAULT=quiet\vintel_iommu=off\n"),
            "GRUB_CMDLINE_LINUX_DEFAULT=quiet\vintel_iommu=on\n");
}

TEST(GrubDefaults, AParameterComingBackThroughAnotherVariableIsRefused) {
  EXPECT_EQ(edited("EXTRA=\"intel_iommu=off\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet $EXTRA\"\n"),
            "error: cannot edit the GRUB defaults so that grub-mkconfig sees the change: "
            "intel_iommu=off would still be wrong, through a variable pcipass does not edit");
}

TEST(GrubDefaults, DropInOverridingTheMainFileIsTheOneEdited) {
  GrubDefaults g{{ShellFile::parse(kGrubDefaults, "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\n"),
                  ShellFile::parse("/etc/default/grub.d/50-cloudimg-settings.cfg",
                                   "# cloud\nGRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1\"\n")}};
  auto r = g.edit(kIntelOn);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].first, "/etc/default/grub.d/50-cloudimg-settings.cfg");
  EXPECT_EQ((*r)[0].second,
            "# cloud\nGRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 intel_iommu=on\"\n");
  EXPECT_EQ(*g.where("GRUB_CMDLINE_LINUX_DEFAULT"),
            "/etc/default/grub.d/50-cloudimg-settings.cfg line 2");
}

TEST(CmdlineFile, EditsKeepEveryOtherByte) {
  auto edit = [](const std::string& t, const Edit& e) {
    auto r = CmdlineFile::parse(t).edit(e, kKernelCmdlineFile);
    return r ? *r : "error: " + r.error().message;
  };
  for (const char* t : {"", "root=ZFS=rpool/ROOT/pve-1 boot=zfs\n", "a  b\tc", "a\r\n"})
    EXPECT_EQ(CmdlineFile::parse(t).str(), t);
  EXPECT_EQ(edit("root=ZFS=rpool/ROOT/pve-1 boot=zfs\n", kIntelOn),
            "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on\n");
  EXPECT_EQ(edit("root=/dev/sda1 amd_iommu=off quiet\n", kAmd), "root=/dev/sda1 quiet\n");
  EXPECT_EQ(edit("amd_iommu=off quiet", kAmd), "quiet");
  EXPECT_EQ(edit("quiet intel_iommu=off", kIntelOn), "quiet intel_iommu=on");
  EXPECT_EQ(edit("", kIntelOn), "intel_iommu=on\n");
  // An unclosed quote would swallow what is appended (fuzz: regressions/kernel_cmdline_file).
  EXPECT_EQ(edit("quiet \"dyndbg=file a.c\n", kIntelOn),
            "error: /etc/kernel/cmdline has an unclosed double quote");
  EXPECT_EQ(edit("quiet \"dyndbg=file a.c\" x\n", kIntelOn),
            "quiet \"dyndbg=file a.c\" x intel_iommu=on\n");
  // The kernel splits at \v and \f too (fuzz: regressions/kernel_cmdline_file/vertical-tab).
  EXPECT_EQ(edit("quiet intel_iommu=off\vx\n", kIntelOn), "quiet intel_iommu=on\vx\n");
  // After `--` the words are init's: a parameter goes before it, and init's words stay.
  EXPECT_EQ(edit("quiet -- single intel_iommu=off\n", kIntelOn),
            "quiet intel_iommu=on -- single intel_iommu=off\n");
  EXPECT_EQ(edit("-- single\n", kIntelOn), "intel_iommu=on -- single\n");
  // The kernel strips the quotes first: `"--"` is the separator too, `"-- x"` is not
  // (fuzz: regressions/kernel_cmdline_file/quoted-separator).
  EXPECT_EQ(edit("quiet \"--\" single\n", kIntelOn), "quiet intel_iommu=on \"--\" single\n");
  EXPECT_EQ(edit("quiet \"-- x\"\n", kIntelOn), "quiet \"-- x\" intel_iommu=on\n");
  EXPECT_EQ(
      cmdline_from_proc("BOOT_IMAGE=/vmlinuz-6.1 root=/dev/sda1 ro initrd=\\x\\initrd quiet\n"),
      "root=/dev/sda1 ro quiet\n");
}

TEST(CmdlineFile, AlsoKeepsOtherValuesOfItsKey) {
  Edit fb{{}, {}, {{"video", "efifb:off"}}};
  EXPECT_EQ(*CmdlineFile::parse("video=1920x1080\n").edit(fb, "x"),
            "video=1920x1080 video=efifb:off\n");
  EXPECT_EQ(*CmdlineFile::parse("video=efifb:off\n").edit(fb, "x"), "video=efifb:off\n");
}

TEST(GrubCfg, DefaultEntryFromNumbersTitlesIdsSubmenusAndSavedEntry) {
  const std::string cfg =
      "function load_video {\n  insmod all_video\n}\n"
      "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n   set "
      "default=\"${saved_entry}\"\nfi\n"
      "menuentry 'Debian GNU/Linux' $menuentry_id_option 'gnulinux-simple-x' {\n"
      "\tlinux\t/boot/vmlinuz-6.1 root=/dev/sda1 ro quiet\n}\n"
      "submenu 'Advanced options' $menuentry_id_option 'gnulinux-advanced-x' {\n"
      "\tmenuentry 'Debian, with Linux 6.1' $menuentry_id_option 'gnulinux-6.1-advanced-x' {\n"
      "\t\tlinux /boot/vmlinuz-6.1 root=/dev/sda1 ro intel_iommu=on\n\t}\n"
      "\tmenuentry 'Debian, with Linux 6.1 (recovery mode)' {\n"
      "\t\tlinux /boot/vmlinuz-6.1 root=/dev/sda1 ro single\n\t}\n}\n";
  GrubCfg g = GrubCfg::parse(cfg);
  ASSERT_EQ(g.entries.size(), 2u);
  EXPECT_EQ((*g.default_entry(std::nullopt))->title, "Debian GNU/Linux");
  EXPECT_EQ((*g.default_entry(std::string("1>1")))->linux_args, " root=/dev/sda1 ro single");
  EXPECT_EQ(
      (*g.default_entry(std::string("gnulinux-advanced-x>gnulinux-6.1-advanced-x")))->linux_args,
      " root=/dev/sda1 ro intel_iommu=on");
  EXPECT_EQ((*g.default_entry(std::string("Advanced options")))->title, "Debian, with Linux 6.1");
  EXPECT_FALSE(g.default_entry(std::string("7")).ok());
  EXPECT_EQ(*grubenv_value("# GRUB\nsaved_entry=1>0\n", "saved_entry"), "1>0");
}

// The fuzz targets' oracles (tests/fuzz/grub_defaults.cc, kernel_cmdline_file.cc) over random
// texts of the characters that matter, so the unit run exercises them too.
TEST(GrubDefaults, RandomTextsKeepTheirBytesAndEditsReadBack) {
  const std::string alphabet = "GRUB_CMDLINE_LINUX_DEFAULT=\"'$ {}\\\n\r\t#;`()intel_iommu=off";
  const std::string heads[] = {"GRUB_CMDLINE_LINUX_DEFAULT=", "GRUB_CMDLINE_LINUX=", ""};
  uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245 + 12345, (seed >> 16) & 0x7fff; };
  int edits = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text = heads[next() % 3];
    for (int n = next() % 40; n > 0; --n) text += alphabet[next() % alphabet.size()];
    ShellFile f = ShellFile::parse(kGrubDefaults, text);
    ASSERT_EQ(f.str(), text);
    for (const auto& a : f.assignments)
      for (const auto& w : value_words(f, a).words) {
        if (w.editable) {
          ASSERT_EQ(text.substr(w.begin, w.end - w.begin), w.text) << text;
        }
      }
    GrubDefaults g{{f}};
    if (auto r = g.edit(kIntelOn); r && !r->empty()) {
      ++edits;
      GrubDefaults after{{ShellFile::parse(kGrubDefaults, r->front().second)}};
      ASSERT_TRUE(satisfied(kIntelOn, *after.cmdline())) << text;
    }
    CmdlineFile c = CmdlineFile::parse(text);
    ASSERT_EQ(c.str(), text);
    if (auto r = c.edit(kAmd, "x")) {
      ASSERT_TRUE(satisfied(kAmd, CmdlineFile::parse(*r).cmdline())) << text;
    }
  }
  EXPECT_GT(edits, 1000);
}

// Found by fuzz/kernel_cmdline_file on the 16-core campaign: "\r" splits words (the kernel's
// isspace) but is not eaten with a removed word, so removing the last word took the blanks
// after it, and the new parameters' insertion point (that word's end) fell inside the removal:
// the result lost two bytes of the new text ("ntel_iommu=on").
TEST(CmdlineFile, InsertionAfterARemovedLastWordIsWhole) {
  const Edit e{{{"intel_iommu", "on"}, {"iommu", "pt"}}, {{"iommu", "off"}}, {}};
  auto r = CmdlineFile::parse("iommu\riommu\t\t").edit(e, "x");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "iommu=pt\r intel_iommu=on");
  EXPECT_TRUE(satisfied(e, CmdlineFile::parse(*r).cmdline()));
}

}  // namespace
}  // namespace pcipass::boot
