#include "doctor/doctor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "doctor/catalog.h"

namespace pcipass::doctor {
namespace {

constexpr size_t kMaxMatchedLine = 64 * 1024;  // longer lines are matched on their start only
constexpr size_t kShownLine = 300;             // what a report quotes of a line
constexpr size_t kLookedAt = 20;               // lines shown when nothing matched
constexpr size_t kNewestProbe = 64 * 1024;     // tail of each log read to find the newest start

bool same_char(char a, char b) {
  return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
}

size_t find_nocase(std::string_view hay, std::string_view needle, size_t from) {
  if (from > hay.size()) return std::string_view::npos;
  auto it = std::search(hay.begin() + static_cast<long>(from), hay.end(), needle.begin(),
                        needle.end(), same_char);
  return it == hay.end() ? std::string_view::npos : static_cast<size_t>(it - hay.begin());
}

bool hex_at(std::string_view s, size_t at, size_t n) {
  if (at + n > s.size()) return false;
  return std::all_of(s.begin() + static_cast<long>(at), s.begin() + static_cast<long>(at + n),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// "BB:DD.F" at `at`, `with_domain`: "DDDD:BB:DD.F".
bool address_shape(std::string_view s, size_t at, bool with_domain) {
  if (with_domain) {
    if (!hex_at(s, at, 4) || at + 4 >= s.size() || s[at + 4] != ':') return false;
    at += 5;
  }
  return hex_at(s, at, 2) && at + 7 <= s.size() && s[at + 2] == ':' && hex_at(s, at + 3, 2) &&
         s[at + 5] == '.' && s[at + 6] >= '0' && s[at + 6] <= '7';
}

// Not inside a longer run of hex digits and colons; a colon may follow ("vfio 0000:01:00.0: ").
bool boundary(std::string_view s, size_t before, size_t after) {
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  return (before == 0 || (!hex(s[before - 1]) && s[before - 1] != ':')) &&
         (after >= s.size() || (!hex(s[after]) && s[after] != '.'));
}

std::string shown(std::string_view line) {
  return std::string(line.substr(0, kShownLine));
}

std::vector<std::string_view> view_lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view l = text.substr(pos, nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    out.push_back(l);
    pos = nl + 1;
  }
  return out;
}

std::string where(const Text& t, size_t line) {
  if (t.source == "command line") return t.source;
  if (t.truncated)
    return fmt::format("{}: line {} of its last {} bytes", t.source, line, kTailBytes);
  return fmt::format("{}:{}", t.source, line);
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// matches() on a line already lowered: each line is lowered once for the whole catalog.
bool matches_lowered(std::string_view lower, std::string_view pattern) {
  size_t pos = 0;
  while (!pattern.empty()) {
    size_t star = pattern.find('*');
    std::string part = ascii_lower(pattern.substr(0, star));
    if (!part.empty()) {
      pos = lower.find(part, pos);
      if (pos == std::string_view::npos) return false;
      pos += part.size();
    }
    if (star == std::string_view::npos) break;
    pattern.remove_prefix(star + 1);
  }
  return true;
}

// A finding for `line` from the first catalog row that matches it; nullopt when none does.
std::optional<Finding> match_line(std::string_view line, const std::vector<Cause>* only) {
  std::string_view head = line.substr(0, kMaxMatchedLine);
  std::string lower = ascii_lower(head);
  for (const Entry& e : catalog()) {
    if (only && std::find(only->begin(), only->end(), e.cause) == only->end()) continue;
    for (auto pattern : e.patterns)
      if (matches_lowered(lower, pattern)) {
        Finding f;
        f.cause = e.cause;
        f.line = shown(line);
        f.device = address_in(head);
        return f;
      }
  }
  return std::nullopt;
}

Examine examiner(Cause c) {
  for (const Entry& e : catalog())
    if (e.cause == c) return e.examine;
  return nullptr;
}

struct Collector {
  const HostFs& fs;
  const KernelLog& kernel;
  const std::vector<std::string_view>& section;
  std::vector<Finding> findings;
  std::set<std::pair<Cause, std::optional<PciAddress>>> seen;

  // Once per cause and device; an examiner may change the cause (a refusal that was an RMRR).
  void add(Finding f, std::string_view line) {
    if (seen.count({f.cause, f.device})) return;
    Probe p{fs, kernel, section, line.substr(0, kMaxMatchedLine)};
    examiner(f.cause)(p, f);
    if (!seen.insert({f.cause, f.device}).second) return;
    findings.push_back(std::move(f));
  }
};

// Kernel messages about the devices the failure names (a BAR, D3cold, an RMRR): QEMU's log
// says only that the device failed, the kernel says why.
void add_kernel_side(Collector& c, const std::set<PciAddress>& devices) {
  static const std::vector<Cause> kernel_causes = {Cause::kBootFramebuffer, Cause::kPowerState,
                                                   Cause::kRmrr};
  for (const auto& l : c.kernel.lines) {
    auto f = match_line(l, &kernel_causes);
    if (!f || !f->device || !devices.count(*f->device)) continue;
    f->where = c.kernel.source;
    c.add(std::move(*f), l);
  }
}

// libvirt's "Unable to read from monitor" names no cause: point at the ones QEMU's lines gave.
void link_monitor(std::vector<Finding>& findings) {
  std::vector<std::string> real;
  for (const auto& f : findings)
    if (f.cause != Cause::kMonitorReset) real.push_back(cause_id(f.cause));
  if (real.empty()) return;
  for (auto& f : findings)
    if (f.cause == Cause::kMonitorReset) {
      f.explanation +=
          fmt::format("; here QEMU's reason is {}, explained below", fmt::join(real, ", "));
      f.fix = "see below";
    }
}

std::vector<std::string> looked_at(const std::vector<std::string_view>& section) {
  std::vector<std::string> out;
  for (auto l : section)
    if (!trim(l.substr(0, kShownLine)).empty()) out.push_back(shown(l));
  if (out.size() > kLookedAt) out.erase(out.begin(), out.end() - kLookedAt);
  return out;
}

// A log's tail without the partial line it starts with.
std::string_view whole_lines(std::string_view tail, bool truncated) {
  if (!truncated) return tail;
  auto nl = tail.find('\n');
  return nl == std::string_view::npos ? std::string_view() : tail.substr(nl + 1);
}

Result<Text> read_log(const HostFs& fs, const std::string& path, std::string& storage) {
  if (path.empty() || path.front() != '/')
    return Error::invalid(fmt::format("--log needs an absolute path, not '{}'", path),
                          "give the log's full path, e.g. /var/log/libvirt/qemu/DOMAIN.log");
  auto tail = fs.read_tail(path, kTailBytes);
  if (!tail)
    return Error(tail.error())
        .with_fix(
            "name a readable QEMU or libvirt log (libvirt's are in /var/log/libvirt/qemu, root's "
            "to read)");
  bool truncated = tail->size() >= kTailBytes;
  storage = std::string(whole_lines(*tail, truncated));
  return Text{storage, path, truncated};
}

Status check_domain(const std::string& d) {
  if (!d.empty() && d != "." && d != ".." && d.find('/') == std::string::npos &&
      d.find('\0') == std::string::npos)
    return {};
  return Error::invalid(fmt::format("'{}' is not a libvirt domain name", d),
                        "give the name `virsh list --all` shows, e.g. --domain win10");
}

// libvirt's start line: "2026-11-22 21:00:00.000+0000: starting up libvirt version: ...".
std::string last_start_stamp(std::string_view log) {
  size_t first = 1;
  std::string_view section = last_start(log, first);
  if (section.size() == log.size() && find_nocase(log, "starting up", 0) == std::string_view::npos)
    return {};
  return std::string(section.substr(0, section.find(": ")));
}

Result<std::string> newest_log(const HostFs& fs) {
  auto names = fs.list(kLibvirtLogDir);
  if (!names)
    return Error(names.error()).with_fix("name the log with --log FILE, or give the message");
  std::string best, best_stamp;
  for (const auto& n : *names) {
    if (!n.ends_with(".log")) continue;
    std::string path = join_path(kLibvirtLogDir, n);
    auto tail = fs.read_tail(path, kNewestProbe);
    if (!tail) continue;
    std::string stamp = last_start_stamp(*tail);
    if (!stamp.empty() && stamp > best_stamp) best = path, best_stamp = stamp;
  }
  if (best.empty())
    return Error::not_found(fmt::format("no libvirt QEMU log with a start in {}", kLibvirtLogDir),
                            "name the domain with --domain DOMAIN or the log with --log FILE, or "
                            "give the error message itself");
  return best;
}

}  // namespace

const char* cause_id(Cause c) {
  switch (c) {
    case Cause::kIommuOff:
      return "iommu_off";
    case Cause::kMonitorReset:
      return "monitor_reset";
    case Cause::kVfioUnsupported:
      return "vfio_unsupported";
    case Cause::kGroupNotViable:
      return "group_not_viable";
    case Cause::kInterruptRemapping:
      return "interrupt_remapping";
    case Cause::kMemlock:
      return "memlock";
    case Cause::kBootFramebuffer:
      return "boot_framebuffer";
    case Cause::kPowerState:
      return "power_state";
    case Cause::kRmrr:
      return "rmrr";
    case Cause::kUnmanagedDevice:
      return "unmanaged_device";
    case Cause::kRomFile:
      return "romfile";
    case Cause::kUnknown:
      return "unknown";
  }
  return "unknown";
}

bool matches(std::string_view line, std::string_view pattern) {
  return matches_lowered(ascii_lower(line), pattern);
}

std::optional<PciAddress> address_in(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    for (bool domain : {true, false}) {
      size_t len = domain ? 12 : 7;
      if (!address_shape(line, i, domain) || !boundary(line, i, i + len)) continue;
      if (auto a = parse_address(line.substr(i, len))) return *a;
    }
  }
  return std::nullopt;
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> out;
  for (auto l : view_lines(text)) out.emplace_back(l);
  return out;
}

std::string_view last_start(std::string_view log, size_t& first_line) {
  size_t pos = 0, line = 1, start = 0;
  first_line = 1;
  while (pos < log.size()) {
    size_t nl = log.find('\n', pos);
    if (nl == std::string_view::npos) nl = log.size();
    if (find_nocase(log.substr(pos, std::min(nl - pos, kMaxMatchedLine)), "starting up", 0) !=
        std::string_view::npos)
      start = pos, first_line = line;
    pos = nl + 1;
    ++line;
  }
  return log.substr(start);
}

std::vector<std::string> kmsg_lines(std::string_view records) {
  std::vector<std::string> out;
  for (auto l : view_lines(records)) {
    if (l.empty() || l.front() == ' ') continue;  // " SUBSYSTEM=pci": a record's dictionary
    auto semi = l.find(';');
    out.emplace_back(semi == std::string_view::npos ? l : l.substr(semi + 1));
  }
  return out;
}

KernelLog read_kernel_log(const HostFs& fs) {
  if (auto kmsg = fs.read_kmsg(kTailBytes)) return {"/dev/kmsg", kmsg_lines(*kmsg)};
  const std::string kern = "/var/log/kern.log";
  if (auto tail = fs.read_tail(kern, kTailBytes))
    return {kern, split_lines(whole_lines(*tail, tail->size() >= kTailBytes))};
  return {};
}

Report diagnose_text(const HostFs& fs, const Text& text, const KernelLog& kernel) {
  Report r;
  r.source = text.source;
  r.truncated = text.truncated;
  r.kernel_log = kernel.source;
  std::string_view section_text = last_start(text.text, r.first_line);
  auto section = view_lines(section_text);
  Collector c{fs, kernel, section, {}, {}};
  std::set<PciAddress> devices;
  for (size_t i = 0; i < section.size(); ++i) {
    if (auto a = address_in(section[i].substr(0, kMaxMatchedLine))) devices.insert(*a);
    auto f = match_line(section[i], nullptr);
    if (!f) continue;
    f->where = where(text, r.first_line + i);
    c.add(std::move(*f), section[i]);
  }
  add_kernel_side(c, devices);
  r.findings = std::move(c.findings);
  link_monitor(r.findings);
  if (r.findings.empty()) {
    r.looked_at = looked_at(section);
    bool qemu_ran = section_text.find("starting up") != std::string_view::npos;
    bool failed = section_text.find("shutting down, reason=failed") != std::string_view::npos;
    r.fix = failed && !qemu_ran ? kBeforeQemuFix : kUnknownFix;
  }
  return r;
}

Result<Report> diagnose(const HostFs& fs, const Request& req) {
  std::string storage;
  Text text{req.message, "command line", false};
  if (req.mode == Mode::kMessage && trim(req.message).empty())
    return Error::invalid("the message to explain is empty",
                          "give the error as the VM manager printed it, in quotes, or use "
                          "--domain DOMAIN or --log FILE");
  if (req.mode == Mode::kDomain) TRY(check_domain(req.domain));
  std::string path = req.mode == Mode::kLog      ? req.log
                     : req.mode == Mode::kDomain ? join_path(kLibvirtLogDir, req.domain + ".log")
                     : req.mode == Mode::kNewest ? TRY(newest_log(fs))
                                                 : std::string();
  if (req.mode != Mode::kMessage) text = TRY(read_log(fs, path, storage));
  return diagnose_text(fs, text, read_kernel_log(fs));
}

}  // namespace pcipass::doctor
