// Diagnostics on stderr, one line each, prefixed "tlstap: ". They name
// files and processes of the host, whose names anyone may choose: whatever a
// terminal could obey is escaped (common/terminal_text.h).
#pragma once

#include <fmt/format.h>

#include <cstdio>

#include "common/terminal_text.h"

namespace tlstap::log {

// silent: a full-screen view owns the terminal and shows problems itself.
enum class Level { silent, quiet, normal, verbose };
inline Level level = Level::normal;

template <class... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  if (level <= Level::quiet) return;
  fmt::print(stderr, "tlstap: {}\n", terminal_field(fmt::format(format, std::forward<Args>(args)...)));
}

template <class... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  if (level == Level::silent) return;
  fmt::print(stderr, "tlstap: warning: {}\n",
             terminal_field(fmt::format(format, std::forward<Args>(args)...)));
}

template <class... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (level != Level::verbose) return;
  fmt::print(stderr, "tlstap: {}\n", terminal_field(fmt::format(format, std::forward<Args>(args)...)));
}

}  // namespace tlstap::log
