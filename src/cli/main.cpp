#include <fmt/format.h>

#include "cli/capture.h"
#include "cli/options.h"
#include "cli/replay.h"

int main(int argc, char** argv) {
  auto options = tlstap::parse_options(argc, argv);
  if (!options) {
    fmt::print(stderr, "tlstap: {}\n", options.error().message);
    return tlstap::kExitUsage;
  }
  if (options->early_exit_text) {
    fmt::print("{}", *options->early_exit_text);
    return tlstap::kExitOk;
  }
  if (options->command == tlstap::Command::replay) return tlstap::run_replay(*options);
  return tlstap::run_capture(*options);
}
