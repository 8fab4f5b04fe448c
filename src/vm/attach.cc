#include "vm/attach.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "assign/plan.h"
#include "vm/selection.h"

namespace pcipass::vm {
namespace {

Error with_diagnosis(Error e) {
  if (auto d = diagnose_libvirt_error(e.message)) e.fix = *d;
  return e;
}

struct Opened {
  std::unique_ptr<LibvirtConnection> conn;
  std::unique_ptr<LibvirtDomain> dom;
  DomainState state = DomainState::kOther;
};

Result<Opened> open_domain(Libvirt& lib, const std::string& uri, const std::string& name) {
  Opened o;
  auto conn = lib.open(uri);
  if (!conn) return with_diagnosis(std::move(conn).error());
  o.conn = std::move(*conn);
  auto dom = o.conn->domain(name);
  if (!dom) {
    Error e = std::move(dom).error();
    if (e.kind == ErrorKind::kNotFound)
      e.fix = fmt::format("see the domains with `virsh -c {} list --all`", uri);
    return e;
  }
  o.dom = std::move(*dom);
  o.state = TRY(o.dom->state());
  return o;
}

bool runs(DomainState s) {
  return s == DomainState::kRunning || s == DomainState::kPaused;
}

Result<AffectFlags> effective_flags(const DomainRequest& req, DomainState state) {
  AffectFlags f = req.flags;
  if (!f.live && !f.config) {
    f.live = runs(state);
    f.config = !runs(state);
  }
  if (f.live && !runs(state))
    return Error::state(fmt::format("domain {} is {}: --live needs a running domain", req.domain,
                                    domain_state_name(state)),
                        "use --config to change its definition, or start it first");
  return f;
}

std::vector<Affect> affected(AffectFlags f) {
  std::vector<Affect> out;
  if (f.live) out.push_back(Affect::kLive);
  if (f.config) out.push_back(Affect::kConfig);
  return out;
}

Result<DomainPci> read_definition(LibvirtDomain& dom, Affect a) {
  std::string xml = TRY(dom.xml(a == Affect::kConfig));
  return parse_domain_xml(xml);
}

const DomainHostdev* find_hostdev(const DomainPci& d, const PciAddress& a) {
  for (const auto& h : d.hostdevs)
    if (h.host == a) return &h;
  return nullptr;
}

// Refuses what plan refuses: a group left partly with the host, a device the host needs.
Status check_host_side(const Inventory& inv, const GroupMap& groups, const HostImpact& impact,
                       const Selection& s, bool force) {
  std::vector<PciAddress> all;
  for (const Card& c : s.cards)
    for (const Device* d : c.functions) all.push_back(d->address);
  assign::PlanOptions options;
  options.force = force;
  assign::Plan plan = TRY(assign::make_plan(inv, groups, impact, all, options));
  if (!plan.refusals.empty()) return plan.refusal_error("attach");
  return {};
}

// The guest place of each multifunction card: a free place from `budget`, taken from the
// highest down, because libvirt gives the cards without an address the lowest free ones.
Status place_multifunction(std::vector<Hostdev>& hostdevs, const SlotBudget& budget,
                           const std::string& domain) {
  size_t next = 0;
  std::optional<uint8_t> card_slot;
  for (Hostdev& h : hostdevs) {
    if (!h.guest) continue;
    if (h.guest->multifunction) {  // function 0 of a card: a new place
      if (next >= budget.free_places.size())
        return Error::refused(
            fmt::format("domain {} has no free {} for the multifunction card at {}", domain,
                        budget.machine == Machine::kQ35 ? "pcie-root-port" : "bus 0 slot",
                        h.host.str()),
            "add a pcie-root-port controller to the domain (virsh edit), or attach the card's "
            "functions one by one");
      card_slot = static_cast<uint8_t>(budget.free_places[budget.free_places.size() - 1 - next++]);
    }
    if (!card_slot) continue;
    if (budget.machine == Machine::kQ35) {
      h.guest->bus = *card_slot;
      h.guest->slot = 0;
    } else {
      h.guest->bus = 0;
      h.guest->slot = *card_slot;
    }
  }
  return {};
}

// Function 0 of each guest slot last: the guest sees the slot once its function 0 is there.
std::vector<Hostdev> attach_order(std::vector<Hostdev> hostdevs) {
  std::stable_sort(hostdevs.begin(), hostdevs.end(), [](const Hostdev& a, const Hostdev& b) {
    auto key = [](const Hostdev& h) {
      return h.guest ? std::make_pair(h.guest->slot + 256 * h.guest->bus,
                                      h.guest->function == 0 ? 1 : 0)
                     : std::make_pair(-1, 0);
    };
    return key(a) < key(b);
  });
  return hostdevs;
}

// A failed attach leaves the domain as it was: what this run attached is detached again.
Error roll_back(LibvirtDomain& dom, DomainReport& r, Error failed) {
  std::vector<std::string> left;
  for (auto it = r.calls.rbegin(); it != r.calls.rend(); ++it)
    if (it->done && !dom.detach(it->xml, r.flags)) left.push_back(it->address.str());
  failed = with_diagnosis(std::move(failed));
  if (!left.empty())
    failed.message += fmt::format(" (and detaching {} again failed: run pcipass detach {} {})",
                                  fmt::join(left, ", "), r.domain, fmt::join(left, " "));
  return failed;
}

}  // namespace

std::string libvirt_uri(const std::optional<std::string>& option, const ProcessContext& process) {
  if (option && !option->empty()) return *option;
  if (auto env = process.env("LIBVIRT_DEFAULT_URI"); env && !env->empty()) return *env;
  return kDefaultLibvirtUri;
}

Result<DomainReport> attach(Libvirt& lib, const Inventory& inv, const GroupMap& groups,
                            const HostImpact& impact, const DomainRequest& req) {
  Selection s = TRY(select_for_vm(inv, groups, req.devices, req.with_group));
  TRY(check_host_side(inv, groups, impact, s, req.force));
  std::vector<Hostdev> hostdevs = TRY(libvirt_hostdevs(s, req.xml));
  Opened o = TRY(open_domain(lib, req.uri, req.domain));
  DomainReport r{req.uri, req.domain, o.state, TRY(effective_flags(req, o.state)),
                 {},      {},         {},      req.dry_run};
  int cards = static_cast<int>(s.cards.size());
  for (Affect a : affected(r.flags)) {
    DomainPci d = TRY(read_definition(*o.dom, a));
    for (const Hostdev& h : hostdevs)
      if (find_hostdev(d, h.host))
        return Error::refused(
            fmt::format("{} is already in domain {} ({} definition)", h.host.str(), req.domain,
                        affect_name(a)),
            fmt::format("pcipass detach {} {} first to attach it anew", req.domain, h.host.str()));
    SlotBudget b = slot_budget(d, a, cards);
    TRY(check_budget(b, req.domain));
    for (auto& w : budget_warnings(b, req.domain)) r.warnings.push_back(std::move(w));
    if (r.budgets.empty()) TRY(place_multifunction(hostdevs, b, req.domain));
    r.budgets.push_back(std::move(b));
  }
  for (const Hostdev& h : attach_order(hostdevs))
    r.calls.push_back({h.host, libvirt_xml({h}), false});
  if (req.dry_run) return r;
  for (DeviceCall& c : r.calls) {
    if (auto ok = o.dom->attach(c.xml, r.flags); !ok) return roll_back(*o.dom, r, ok.error());
    c.done = true;
  }
  return r;
}

Result<DomainReport> detach(Libvirt& lib, const Inventory& inv, const GroupMap& groups,
                            const DomainRequest& req) {
  std::set<PciAddress> wanted(req.devices.begin(), req.devices.end());
  if (req.with_group)
    for (const PciAddress& a : req.devices)
      if (const Device* d = inv.find(a); d && d->iommu_group)
        if (const IommuGroup* g = groups.find(*d->iommu_group))
          for (const Device* e : g->endpoints()) wanted.insert(e->address);
  Opened o = TRY(open_domain(lib, req.uri, req.domain));
  DomainReport r{req.uri, req.domain, o.state, TRY(effective_flags(req, o.state)),
                 {},      {},         {},      req.dry_run};
  std::vector<Hostdev> found;
  for (Affect a : affected(r.flags)) {
    DomainPci d = TRY(read_definition(*o.dom, a));
    for (const PciAddress& addr : wanted) {
      const DomainHostdev* h = find_hostdev(d, addr);
      if (!h && (!req.with_group || std::count(req.devices.begin(), req.devices.end(), addr)))
        return Error::not_found(
            fmt::format("{} is not in domain {} ({} definition)", addr.str(), req.domain,
                        affect_name(a)),
            fmt::format("see its devices with `virsh -c {} dumpxml {}{}`", req.uri, req.domain,
                        a == Affect::kConfig ? " --inactive" : ""));
      if (h && std::none_of(found.begin(), found.end(),
                            [&](const Hostdev& f) { return f.host == addr; }))
        found.push_back({addr, 0, h->managed, false, {}, h->guest});
    }
  }
  for (const Hostdev& h : attach_order(found)) {
    Hostdev bare = h;
    bare.guest.reset();  // libvirt finds a hostdev by its source address
    r.calls.push_back({h.host, libvirt_xml({bare}), false});
  }
  if (req.dry_run) return r;
  for (DeviceCall& c : r.calls) {
    if (auto ok = o.dom->detach(c.xml, r.flags); !ok) return with_diagnosis(ok.error());
    c.done = true;
  }
  return r;
}

Result<SlotBudget> domain_budget(Libvirt& lib, const std::string& uri, const std::string& domain,
                                 int cards) {
  Opened o = TRY(open_domain(lib, uri, domain));
  Affect a = runs(o.state) ? Affect::kLive : Affect::kConfig;
  DomainPci d = TRY(read_definition(*o.dom, a));
  return slot_budget(d, a, cards);
}

std::optional<std::string> diagnose_libvirt_error(std::string_view m) {
  struct Known {
    std::string_view needle, diagnosis;
  };
  static const Known known[] = {
      {"cannot hot unplug multifunction PCI device",
       "libvirt does not hot-unplug a multifunction card: detach with --config and restart the "
       "guest"},
      {"Failed to connect socket",
       "libvirtd (or virtqemud) is not running or not reachable: systemctl start libvirtd, or "
       "pass --connect"},
      {"authentication failed",
       "the user may not manage this connection: run as root or join the libvirt group"},
  };
  for (const Known& k : known)
    if (m.find(k.needle) != std::string_view::npos) return std::string(k.diagnosis);
  return std::nullopt;
}

}  // namespace pcipass::vm
