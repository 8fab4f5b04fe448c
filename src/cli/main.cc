// pcipass: the thin executable over the library. The only place that reads the process's
// environment: it hands it to the command line as a ProcessContext.
#include <unistd.h>

#include <iostream>

#include "cli/app.h"
#include "host/context.h"

int main(int argc, char** argv) {
  pcipass::cli::Injected process_only;
  process_only.process = [](bool live) { return pcipass::make_process_context(environ, live); };
  return pcipass::cli::run(argc, argv, std::cout, std::cerr, &process_only);
}
