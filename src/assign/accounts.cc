#include "assign/accounts.h"

#include <fmt/format.h>

#include <optional>
#include <sstream>
#include <vector>

namespace pcipass::assign {

namespace {

std::vector<std::vector<std::string>> records(const HostFs& fs, const std::string& path) {
  std::vector<std::vector<std::string>> out;
  auto text = fs.read(path);
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::string field;
    std::istringstream ls(line);
    while (std::getline(ls, field, ':')) f.push_back(field);
    out.push_back(std::move(f));
  }
  return out;
}

std::optional<unsigned> number(const std::string& s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  unsigned long v = std::stoul(s);
  if (v > 0xfffffffeUL) return std::nullopt;
  return static_cast<unsigned>(v);
}

}  // namespace

Result<Account> resolve_owner(const HostFs& fs, const std::string& spec) {
  auto colon = spec.find(':');
  std::string user = spec.substr(0, colon);
  std::string group = colon == std::string::npos ? std::string() : spec.substr(colon + 1);
  if (user.empty())
    return Error::invalid(fmt::format("invalid owner '{}': the user is missing", spec),
                          "write --owner USER[:GROUP], e.g. --owner libvirt-qemu:kvm");
  Account a;
  bool found = false;
  auto passwd = records(fs, "/etc/passwd");
  for (const auto& f : passwd) {
    if (f.size() < 4) continue;
    auto uid = number(f[2]), gid = number(f[3]);
    if (!uid || !gid) continue;
    if (f[0] == user || (number(user) && *number(user) == *uid)) {
      a.uid = *uid, a.gid = *gid, a.user = f[0];
      found = true;
      break;
    }
  }
  if (!found) {
    auto n = number(user);
    if (!n)
      return Error::invalid(fmt::format("no user '{}' in /etc/passwd", user),
                            "create the user, or give a numeric uid");
    if (group.empty())
      return Error::invalid(
          fmt::format("uid {} is not in /etc/passwd, so it has no primary group", *n),
          "give the group too: --owner UID:GROUP");
    a.uid = *n;
  }
  auto groups = records(fs, "/etc/group");
  if (group.empty()) {
    for (const auto& f : groups)
      if (f.size() >= 3 && number(f[2]) == a.gid) a.group = f[0];
    return a;
  }
  for (const auto& f : groups) {
    if (f.size() < 3) continue;
    auto gid = number(f[2]);
    if (gid && (f[0] == group || number(group) == *gid)) {
      a.gid = *gid, a.group = f[0];
      return a;
    }
  }
  if (auto n = number(group)) {
    a.gid = *n;
    return a;
  }
  return Error::invalid(fmt::format("no group '{}' in /etc/group", group),
                        "create the group, or give a numeric gid");
}

}  // namespace pcipass::assign
