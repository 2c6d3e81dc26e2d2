// `tlstap replay FILE`: a JSON-lines capture written earlier goes through
// the protocol layer and the sinks as if it were live.
#pragma once

#include "cli/options.h"

namespace tlstap {

int run_replay(const Options& options);

}  // namespace tlstap
