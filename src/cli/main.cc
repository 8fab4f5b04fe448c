// pcipass: the thin executable over the library. The only place that reads the process's
// environment: it hands it to the command line as a ProcessContext.
#include <link.h>
#include <unistd.h>

#include <climits>
#include <iostream>
#include <string>

#include "cli/app.h"
#include "host/context.h"

// Defined by the linker in a dynamically linked executable only.
#pragma weak _DYNAMIC

namespace {

// glibc's dlopen from a static executable gives what it loads no thread-local storage, and
// libvirt.so.0 (its libssh, glib) dies in it: the static pcipass runs the commands that reach
// libvirt in its dynamically linked twin, beside it (build tree, test guest) or in
// ../libexec/pcipass/ (installed). Nothing has been read or written yet. Without a twin the
// library says what to install.
void run_libvirt_twin(int argc, char** argv) {
  if (_DYNAMIC != nullptr || !pcipass::cli::needs_libvirt(argc, argv)) return;
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  std::string dir(self, static_cast<size_t>(n));
  dir.erase(dir.rfind('/') + 1);
  for (const char* twin : {"pcipass-libvirt", "../libexec/pcipass/pcipass-libvirt"}) {
    std::string path = dir + twin;
    if (::access(path.c_str(), X_OK) == 0) ::execv(path.c_str(), argv);
  }
}

}  // namespace

int main(int argc, char** argv) {
  run_libvirt_twin(argc, argv);
  pcipass::cli::Injected process_only;
  process_only.process = [](bool live) { return pcipass::make_process_context(environ, live); };
  return pcipass::cli::run(argc, argv, std::cout, std::cerr, &process_only);
}
