// Readers for what every Go executable carries, stripped or not: its Go
// version (.go.buildinfo) and its function table (.gopclntab, which the
// runtime needs and `-ldflags=-s -w` keeps). Pure functions over bytes: a
// malformed table is an Error, never a crash.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tlstap {

struct GoVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string text;  // "go1.19.8"
  auto operator<=>(const GoVersion& other) const {
    return std::tie(major, minor) <=> std::tie(other.major, other.minor);
  }
  bool operator==(const GoVersion& other) const { return major == other.major && minor == other.minor; }
};

// "go1.19.8", "go1.21rc2", "devel go1.22-..." -> version; nullopt if not a Go version.
std::optional<GoVersion> parse_go_version(std::string_view text);

// Reads `size` bytes at a virtual address of the binary; empty when unmapped.
using AddressReader = std::function<std::span<const std::byte>(uint64_t address, uint64_t size)>;

// The Go version recorded in a .go.buildinfo section (Go 1.13+ formats).
Result<GoVersion> parse_go_buildinfo(std::span<const std::byte> section, const AddressReader& read);

struct GoFunction {
  std::string name;
  uint64_t entry = 0;  // virtual address
  uint64_t end = 0;    // first address after the function
};

// Functions with these names from a .gopclntab section (the Go 1.2, 1.16
// and 1.18+ layouts), with their entry and end addresses.
Result<std::vector<GoFunction>> find_go_functions(std::span<const std::byte> pclntab,
                                                  std::span<const std::string_view> names);

}  // namespace tlstap
