// Diagnostics on stderr, one line each, prefixed "tlstap: ".
#pragma once

#include <fmt/format.h>

#include <cstdio>

namespace tlstap::log {

enum class Level { quiet, normal, verbose };
inline Level level = Level::normal;

template <class... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  if (level == Level::quiet) return;
  fmt::print(stderr, "tlstap: {}\n", fmt::format(format, std::forward<Args>(args)...));
}

template <class... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(stderr, "tlstap: warning: {}\n", fmt::format(format, std::forward<Args>(args)...));
}

template <class... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (level != Level::verbose) return;
  fmt::print(stderr, "tlstap: {}\n", fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tlstap::log
