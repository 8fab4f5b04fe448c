#include "host/module_loader.h"

#include <cerrno>

#include "host/kmod_lib.h"

namespace pcipass {

std::string module_for_driver(const std::string& driver) {
  std::string m = driver;
  for (char& c : m)
    if (c == '-') c = '_';
  return m;
}

namespace {

class KmodLoader : public ModuleLoader {
 public:
  Status load(const std::string& module) override {
    const KmodLib& L = *TRY(kmod_lib());
    kmod_ctx* ctx = L.kmod_new(nullptr, nullptr);
    if (!ctx) return Error::io("kmod_new", "/lib/modules", ENOMEM);
    L.kmod_load_resources(ctx);
    kmod_list* list = nullptr;
    int rc = L.kmod_module_new_from_lookup(ctx, module.c_str(), &list);
    Status out;
    if (rc < 0 || !list) {
      out = Error::not_found(
          "kernel module " + module + " was not found for the running kernel",
          "install the kernel's modules package (linux-image-*), or build " + module);
    } else {
      for (kmod_list* it = list; it; it = L.kmod_list_next(list, it)) {
        kmod_module* mod = L.kmod_module_get_module(it);
        int err = L.kmod_module_probe_insert_module(mod, KMOD_PROBE_APPLY_BLACKLIST_ALIAS_ONLY,
                                                    nullptr, nullptr, nullptr, nullptr);
        L.kmod_module_unref(mod);
        if (err < 0) {
          out = Error::io("load module", module, -err,
                          "run `modprobe " + module + "` to see the kernel's reason");
          break;
        }
      }
      L.kmod_module_unref_list(list);
    }
    L.kmod_unref(ctx);
    return out;
  }
};

class RefusingLoader : public ModuleLoader {
 public:
  explicit RefusingLoader(std::string root) : root_(std::move(root)) {}
  Status load(const std::string& module) override {
    return Error::state("module " + module + " is not loaded in the tree at " + root_ +
                            ", and pcipass loads modules only on the live host",
                        "load it in the tree's kernel, or run without --root");
  }

 private:
  std::string root_;
};

}  // namespace

std::unique_ptr<ModuleLoader> make_kmod_loader(const ProcessContext& process, const HostFs& fs) {
  if (!process.live) return std::make_unique<RefusingLoader>(fs.root());
  return std::make_unique<KmodLoader>();
}

}  // namespace pcipass
