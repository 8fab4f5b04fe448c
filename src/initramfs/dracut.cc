// dracut (Fedora, RHEL, openSUSE...): a drop-in /etc/dracut.conf.d/pcipass.conf with
// force_drivers+=" ... " (loaded early in the initramfs, not only included) and install_items+=
// for files; `dracut -f --regenerate-all` rebuilds /boot/initramfs-VERSION.img of every kernel.
#include <sstream>

#include "initramfs/backends.h"

namespace pcipass::initramfs {

namespace {

constexpr const char* kConf = "/etc/dracut.conf.d/pcipass.conf";

// The words of every `NAME+=" ... "` line (dracut's conf files are shell; pcipass only reads the
// form it writes).
std::vector<std::string> listed(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::string t = trim(line);
    std::string head = name + "+=\"";
    if (!t.starts_with(head)) continue;
    auto end = t.find('"', head.size());
    for (auto& w : split_words(t.substr(head.size(), end - head.size()))) out.push_back(w);
  }
  return out;
}

std::string add(std::string text, const std::string& name, const std::vector<std::string>& words,
                bool modules) {
  auto missing = missing_words(words, listed(text, name), modules);
  if (missing.empty()) return text;
  // The spaces inside the quotes keep the words apart from other files' additions.
  return append_line(text, kHeader, name + "+=\" " + join_words(missing) + " \"");
}

Result<std::vector<change::Change>> plan(const HostFs& fs, const Wants& wants) {
  std::vector<change::Change> out;
  std::string text = TRY(read_optional(fs, kConf)).value_or(kHeader);
  if (!wants.modules.empty()) text = add(text, "force_drivers", wants.modules, true);
  if (!wants.files.empty()) text = add(text, "install_items", wants.files, false);
  plan_write(fs, out, kConf, text);
  return out;
}

Result<std::vector<Image>> images(const HostFs& fs) {
  std::vector<Image> out;
  for (const auto& v : TRY(installed_kernels(fs)))
    out.push_back({v, "/boot/initramfs-" + v + ".img"});
  return out;
}

}  // namespace

const Backend kDracutBackend = {
    System::kDracut,
    "dracut",
    {"/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut"},
    plan,
    {"dracut", "-f", "--regenerate-all"},
    images,
    "lsinitrd",
};

}  // namespace pcipass::initramfs
