// pcipass: the thin executable over the library.
#include <iostream>

#include "cli/app.h"

int main(int argc, char** argv) {
  return pcipass::cli::run(argc, argv, std::cout, std::cerr);
}
