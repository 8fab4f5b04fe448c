#include "vm/domain_xml.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace pcipass::vm {
namespace {

constexpr size_t kMaxXml = 16 << 20;
constexpr int kMaxDepth = 64;

Error malformed(const std::string& what, size_t at) {
  return Error::invalid(fmt::format("malformed domain XML at byte {}: {}", at, what),
                        "pass the XML libvirt gives (virsh dumpxml DOMAIN)");
}

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
         c == ':';
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<XmlElement> document() {
    TRY(skip_misc());
    if (!at('<')) return malformed("no root element", i_);
    XmlElement root = TRY(element(0));
    TRY(skip_misc());
    if (i_ != s_.size()) return malformed("text after the root element", i_);
    return root;
  }

 private:
  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }
  bool starts(std::string_view p) const { return s_.substr(i_, p.size()) == p; }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  Status skip_past(std::string_view end) {
    size_t e = s_.find(end, i_);
    if (e == std::string_view::npos) return malformed(fmt::format("no closing {}", end), i_);
    i_ = e + end.size();
    return {};
  }
  // Whitespace, comments, processing instructions and a DOCTYPE between elements.
  Status skip_misc() {
    for (;;) {
      skip_space();
      if (starts("<!--"))
        TRY(skip_past("-->"));
      else if (starts("<?"))
        TRY(skip_past("?>"));
      else if (starts("<!DOCTYPE"))
        TRY(skip_past(">"));
      else
        return {};
    }
  }
  Result<std::string> name() {
    size_t b = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    if (b == i_) return malformed("expected a name", i_);
    return std::string(s_.substr(b, i_ - b));
  }
  Result<std::string> decode(std::string_view raw, size_t at) {
    std::string out;
    for (size_t k = 0; k < raw.size(); ++k) {
      if (raw[k] != '&') {
        out += raw[k];
        continue;
      }
      size_t semi = raw.find(';', k);
      if (semi == std::string_view::npos) return malformed("unterminated entity", at + k);
      std::string_view ent = raw.substr(k + 1, semi - k - 1);
      static const std::pair<std::string_view, char> named[] = {
          {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"apos", '\''}, {"quot", '"'}};
      auto it = std::find_if(std::begin(named), std::end(named),
                             [&](const auto& p) { return p.first == ent; });
      if (it != std::end(named)) {
        out += it->second;
      } else if (ent.size() > 1 && ent[0] == '#') {
        bool hex = ent[1] == 'x';
        unsigned v = 0;
        auto d = ent.substr(hex ? 2 : 1);
        auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), v, hex ? 16 : 10);
        if (ec != std::errc() || p != d.data() + d.size() || v == 0 || v > 0x7f)
          out += '?';  // pcipass reads ASCII attributes; other characters need no decoding
        else
          out += static_cast<char>(v);
      } else {
        return malformed(fmt::format("unknown entity &{};", ent), at + k);
      }
      k = semi;
    }
    return out;
  }
  Status attributes(XmlElement& e) {
    for (;;) {
      skip_space();
      if (at('>') || at('/')) return {};
      std::string key = TRY(name());
      skip_space();
      if (!at('=')) return malformed("expected = after attribute " + key, i_);
      ++i_;
      skip_space();
      if (!at('\'') && !at('"')) return malformed("unquoted attribute " + key, i_);
      char q = s_[i_++];
      size_t end = s_.find(q, i_);
      if (end == std::string_view::npos) return malformed("unterminated attribute " + key, i_);
      std::string value = TRY(decode(s_.substr(i_, end - i_), i_));
      e.attributes.emplace_back(std::move(key), std::move(value));
      i_ = end + 1;
    }
  }
  Result<XmlElement> element(int depth) {
    if (depth >= kMaxDepth) return malformed("elements nested too deep", i_);
    ++i_;  // '<'
    XmlElement e;
    e.name = TRY(name());
    TRY(attributes(e));
    if (starts("/>")) {
      i_ += 2;
      return e;
    }
    if (!at('>')) return malformed("expected > after <" + e.name, i_);
    ++i_;
    TRY(content(e, depth));
    return e;
  }
  Status content(XmlElement& e, int depth) {
    for (;;) {
      size_t lt = s_.find('<', i_);
      if (lt == std::string_view::npos) return malformed("no </" + e.name + ">", i_);
      e.text += TRY(decode(s_.substr(i_, lt - i_), i_));
      i_ = lt;
      if (starts("</")) {
        i_ += 2;
        std::string n = TRY(name());
        skip_space();
        if (n != e.name || !at('>'))
          return malformed(fmt::format("</{}> closes <{}>", n, e.name), i_);
        ++i_;
        return {};
      }
      if (starts("<!--")) {
        TRY(skip_past("-->"));
      } else if (starts("<![CDATA[")) {
        i_ += 9;
        size_t end = s_.find("]]>", i_);
        if (end == std::string_view::npos) return malformed("unterminated CDATA", i_);
        e.text += s_.substr(i_, end - i_);
        i_ = end + 3;
      } else if (starts("<?")) {
        TRY(skip_past("?>"));
      } else {
        e.children.push_back(TRY(element(depth + 1)));
      }
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

// "0x1f", "31": libvirt writes hex, users may write decimal.
std::optional<unsigned> number(const std::string* s, unsigned max) {
  if (!s || s->empty()) return std::nullopt;
  std::string_view v = *s;
  int base = 10;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    v.remove_prefix(2);
    base = 16;
  }
  unsigned out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out, base);
  if (ec != std::errc() || p != v.data() + v.size() || out > max) return std::nullopt;
  return out;
}

Result<unsigned> field(const XmlElement& a, const char* key, unsigned max, bool required) {
  const std::string* s = a.attribute(key);
  if (!s && !required) return 0u;
  auto v = number(s, max);
  if (!v)
    return Error::invalid(fmt::format("domain XML: <address {}='{}'> is not a number up to {:#x}",
                                      key, s ? *s : std::string(), max),
                          "pass the XML libvirt gives (virsh dumpxml DOMAIN)");
  return *v;
}

bool is_pci_address(const XmlElement& a) {
  const std::string* t = a.attribute("type");
  return a.name == "address" && t && *t == "pci";
}

Result<GuestAddress> guest_address(const XmlElement& a) {
  if (TRY(field(a, "domain", 0xffff, false)) != 0)
    return Error::invalid("domain XML: a guest PCI domain other than 0",
                          "pcipass reads guests with one PCI domain");
  GuestAddress g;
  g.bus = static_cast<uint8_t>(TRY(field(a, "bus", 0xff, true)));
  g.slot = static_cast<uint8_t>(TRY(field(a, "slot", 0x1f, true)));
  g.function = static_cast<uint8_t>(TRY(field(a, "function", 7, false)));
  const std::string* m = a.attribute("multifunction");
  g.multifunction = m && *m == "on";
  return g;
}

bool is_root_port(const XmlElement& c) {
  const std::string* type = c.attribute("type");
  const std::string* model = c.attribute("model");
  return c.name == "controller" && type && *type == "pci" && model && *model == "pcie-root-port";
}

Status read_root_port(const XmlElement& c, DomainPci& d) {
  RootPort p;
  p.index = static_cast<int>(TRY(field(c, "index", 0xff, true)));
  if (const XmlElement* t = c.child("target"))
    if (const std::string* h = t->attribute("hotplug")) p.hotplug = *h != "off";
  d.root_ports.push_back(p);
  return {};
}

Status read_hostdev(const XmlElement& h, DomainPci& d) {
  const std::string* type = h.attribute("type");
  const XmlElement* src = h.child("source");
  const XmlElement* a = src ? src->child("address") : nullptr;
  if (!type || *type != "pci" || !a) return {};
  DomainHostdev out;
  out.host.domain = static_cast<uint16_t>(TRY(field(*a, "domain", 0xffff, false)));
  out.host.bus = static_cast<uint8_t>(TRY(field(*a, "bus", 0xff, true)));
  out.host.slot = static_cast<uint8_t>(TRY(field(*a, "slot", 0x1f, true)));
  out.host.function = static_cast<uint8_t>(TRY(field(*a, "function", 7, false)));
  const std::string* managed = h.attribute("managed");
  out.managed = managed && *managed == "yes";
  for (const XmlElement& c : h.children)
    if (is_pci_address(c)) out.guest = TRY(guest_address(c));
  d.hostdevs.push_back(out);
  return {};
}

// Every <address type='pci'> below <devices>, at any depth, and the elements pcipass reads.
Status walk_devices(const XmlElement& e, DomainPci& d, std::vector<GuestAddress>& used) {
  for (const XmlElement& c : e.children) {
    if (is_pci_address(c)) used.push_back(TRY(guest_address(c)));
    if (is_root_port(c)) TRY(read_root_port(c, d));
    if (c.name == "hostdev") TRY(read_hostdev(c, d));
    if (c.name != "source") TRY(walk_devices(c, d, used));  // a hostdev's source is the host's
  }
  return {};
}

}  // namespace

const std::string* XmlElement::attribute(std::string_view key) const {
  for (const auto& [k, v] : attributes)
    if (k == key) return &v;
  return nullptr;
}

const XmlElement* XmlElement::child(std::string_view key) const {
  for (const auto& c : children)
    if (c.name == key) return &c;
  return nullptr;
}

Result<XmlElement> parse_xml(std::string_view text) {
  if (text.size() > kMaxXml)
    return Error::invalid(
        fmt::format("domain XML of {} bytes: more than pcipass reads ({})", text.size(), kMaxXml));
  return Parser(text).document();
}

Result<DomainPci> parse_domain_xml(std::string_view xml) {
  XmlElement root = TRY(parse_xml(xml));
  if (root.name != "domain")
    return Error::invalid(
        fmt::format("domain XML: the root element is <{}>, not <domain>", root.name));
  DomainPci d;
  if (const XmlElement* n = root.child("name")) d.name = n->text;
  if (const XmlElement* os = root.child("os"))
    if (const XmlElement* t = os->child("type"))
      if (const std::string* m = t->attribute("machine")) d.machine_type = *m;
  d.machine = d.machine_type.find("q35") != std::string::npos ? Machine::kQ35 : Machine::kPc;
  std::vector<GuestAddress> used;
  if (const XmlElement* devices = root.child("devices")) TRY(walk_devices(*devices, d, used));
  d.root_slots.insert(0);
  for (const GuestAddress& g : used) {
    if (g.bus == 0) d.root_slots.insert(g.slot);
    for (RootPort& p : d.root_ports)
      if (p.index == g.bus) p.occupied = true;
  }
  return d;
}

const char* affect_name(Affect a) {
  return a == Affect::kLive ? "live" : "config";
}

bool SlotBudget::refused() const {
  if (free >= needed) return false;
  if (affect == Affect::kLive) return true;
  // A pci-bridge that libvirt adds to a full i440fx bus needs a bus 0 slot itself.
  return machine == Machine::kPc && free == 0;
}

std::string SlotBudget::describe() const {
  const char* s = free == 1 ? "" : "s";
  std::string place = machine == Machine::kQ35
                          ? fmt::format("empty hot-pluggable pcie-root-port{}", s)
                          : fmt::format("free slot{} on bus 0 (pci.0)", s);
  return fmt::format("{} {}, {} needed: {} left", free, place, needed, remaining);
}

SlotBudget slot_budget(const DomainPci& d, Affect affect, int cards) {
  SlotBudget b;
  b.machine = d.machine;
  b.affect = affect;
  b.needed = cards;
  if (d.machine == Machine::kQ35) {
    // Ascending and distinct whatever the document's order (attach takes from the top).
    std::set<int> ports;
    for (const RootPort& p : d.root_ports)
      if (p.hotplug && !p.occupied) ports.insert(p.index);
    b.free_places.assign(ports.begin(), ports.end());
  } else {
    for (int s = 0; s < kPcRootSlots; ++s)
      if (!d.root_slots.count(s)) b.free_places.push_back(s);
  }
  b.free = static_cast<int>(b.free_places.size());
  b.remaining = std::max(0, b.free - b.needed);
  b.libvirt_adds = affect == Affect::kConfig && b.free < b.needed;
  return b;
}

Status check_budget(const SlotBudget& b, const std::string& domain) {
  if (!b.refused()) return {};
  if (b.machine == Machine::kQ35)
    return Error::refused(
        fmt::format("domain {} has no room to hot-plug: {}", domain, b.describe()),
        "add pcie-root-port controllers to the domain (virsh edit; they take effect at the next "
        "start) or attach with --config and restart it");
  return Error::refused(
      fmt::format("domain {} has no room on its PCI bus: {}", domain, b.describe()),
      b.affect == Affect::kLive
          ? "detach a device the guest does not need, or attach with --config and restart it"
          : "remove a device from the domain; i440fx has 32 slots on bus 0 and libvirt needs one "
            "for a pci-bridge");
}

std::vector<std::string> budget_warnings(const SlotBudget& b, const std::string& domain) {
  std::vector<std::string> out;
  if (b.libvirt_adds)
    out.push_back(
        fmt::format("domain {}: {}; libvirt adds {} itself for --config", domain, b.describe(),
                    b.machine == Machine::kQ35 ? "a pcie-root-port per card" : "a pci-bridge"));
  else if (b.remaining <= 2)
    out.push_back(fmt::format("domain {} is running out of PCI places: {}", domain, b.describe()));
  return out;
}

}  // namespace pcipass::vm
