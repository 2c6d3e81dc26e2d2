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

// Where a *tls.Conn's socket descriptor is: tls.Conn.conn (a net.Conn, an
// interface: type word, data word) -> *net.TCPConn, whose conn.fd -> *netFD,
// whose pfd (poll.FD) holds Sysfd. Byte offsets.
struct GoConnLayout {
  uint64_t conn_data = 0;     // tls.Conn.conn's data word in tls.Conn
  uint64_t tcpconn_fd = 0;    // net.conn.fd in net.TCPConn (which embeds net.conn first)
  uint64_t sysfd = 0;         // pfd.Sysfd in net.netFD
  uint64_t netfd_family = 0;  // net.netFD.family (sotype follows); 0: unknown, not checked
  std::string source;         // where the offsets come from, for the log
};

// The layout from the binary's DWARF when it has the four types, else from
// tlstap's table of Go releases (the same from go1.9 to go1.22, checked
// against their sources); a release after the table is assumed to keep the
// last layout, and says so. Error: a release before the table, without DWARF.
Result<GoConnLayout> go_conn_layout(std::span<const std::byte> elf_file, const GoVersion& version);

}  // namespace tlstap
