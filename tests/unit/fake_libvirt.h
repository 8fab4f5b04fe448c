// A libvirt for unit tests: named domains with their live and inactive XML and a state, errors
// scripted by call (libvirt's message verbatim), and every call recorded in order.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vm/libvirt_port.h"

namespace pcipass::test {

struct FakeDomainData {
  std::string live_xml, config_xml;
  vm::DomainState state = vm::DomainState::kRunning;
};

class FakeLibvirt final : public vm::Libvirt {
 public:
  std::map<std::string, FakeDomainData> domains;
  // Call ("open", "attach", "detach"...) -> libvirt's message for its nth (from 1) occurrence.
  std::map<std::string, std::map<int, std::string>> errors;
  std::vector<std::string> calls;  // "open URI", "lookup NAME", "xml NAME live", "attach ..."

  // Calls that change a domain (attach, detach).
  std::vector<std::string> changes() const {
    std::vector<std::string> out;
    for (const auto& c : calls)
      if (c.rfind("attach ", 0) == 0 || c.rfind("detach ", 0) == 0) out.push_back(c);
    return out;
  }

  // The scripted error of this occurrence of `call`, if any.
  std::optional<std::string> scripted(const std::string& call) {
    int n = ++counts_[call];
    auto it = errors.find(call);
    if (it == errors.end()) return std::nullopt;
    auto e = it->second.find(n);
    if (e == it->second.end()) return std::nullopt;
    return e->second;
  }

  Result<std::unique_ptr<vm::LibvirtConnection>> open(const std::string& uri) override;

 private:
  std::map<std::string, int> counts_;
};

class FakeDomain final : public vm::LibvirtDomain {
 public:
  FakeDomain(FakeLibvirt& lib, std::string name) : lib_(lib), name_(std::move(name)) {}
  Result<std::string> xml(bool inactive) override {
    lib_.calls.push_back("xml " + name_ + (inactive ? " config" : " live"));
    if (auto e = lib_.scripted("xml")) return vm::libvirt_error("reading XML", *e, false);
    auto& d = lib_.domains.at(name_);
    return inactive ? d.config_xml : d.live_xml;
  }
  Result<vm::DomainState> state() override {
    lib_.calls.push_back("state " + name_);
    return lib_.domains.at(name_).state;
  }
  Status attach(const std::string& xml, vm::AffectFlags f) override {
    return change("attach", xml, f);
  }
  Status detach(const std::string& xml, vm::AffectFlags f) override {
    return change("detach", xml, f);
  }

 private:
  Status change(const std::string& verb, const std::string& xml, vm::AffectFlags f) {
    std::string flags = f.live && f.config ? "live|config" : f.live ? "live" : "config";
    lib_.calls.push_back(verb + " " + name_ + " " + flags + "\n" + xml);
    if (auto e = lib_.scripted(verb))
      return vm::libvirt_error(verb + "ing to domain " + name_, *e, false);
    return {};
  }
  FakeLibvirt& lib_;
  std::string name_;
};

class FakeConnection final : public vm::LibvirtConnection {
 public:
  explicit FakeConnection(FakeLibvirt& lib) : lib_(lib) {}
  Result<std::unique_ptr<vm::LibvirtDomain>> domain(const std::string& name) override {
    lib_.calls.push_back("lookup " + name);
    if (!lib_.domains.count(name))
      return vm::libvirt_error("looking up domain " + name,
                               "Domain not found: no domain with matching name '" + name + "'",
                               true);
    return std::unique_ptr<vm::LibvirtDomain>(std::make_unique<FakeDomain>(lib_, name));
  }

 private:
  FakeLibvirt& lib_;
};

inline Result<std::unique_ptr<vm::LibvirtConnection>> FakeLibvirt::open(const std::string& uri) {
  calls.push_back("open " + uri);
  if (auto e = scripted("open")) return vm::libvirt_error("connecting to " + uri, *e, false);
  return std::unique_ptr<vm::LibvirtConnection>(std::make_unique<FakeConnection>(*this));
}

}  // namespace pcipass::test
