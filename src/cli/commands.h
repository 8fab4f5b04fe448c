// One function pair per subcommand; the table in commands.cc ties them to names.
#pragma once

#include "cli/app.h"

namespace pcipass::cli {

#define PCIPASS_COMMAND(name)                 \
  void setup_##name(CLI::App& app, Args& a); \
  int run_##name(Context& ctx, const Args& a);

PCIPASS_COMMAND(list)
PCIPASS_COMMAND(groups)
PCIPASS_COMMAND(show)
PCIPASS_COMMAND(tree)
PCIPASS_COMMAND(check)
PCIPASS_COMMAND(snapshot)

#undef PCIPASS_COMMAND

}  // namespace pcipass::cli
