// The live capture: probe the kernel, load, attach, stream events to the
// chosen sink until SIGINT/SIGTERM, then detach and print a summary.
#pragma once

#include "cli/options.h"

namespace tlstap {

int run_capture(const Options& options);

}  // namespace tlstap
