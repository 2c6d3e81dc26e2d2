// Member offsets of named structure types, read from an ELF file's DWARF
// with libdw: how tlstap learns the layout of a program's own types (Go's
// tls.Conn -> netFD path) instead of assuming it. Works on bytes in memory.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace tlstap {

struct StructMember {
  std::string_view type;  // e.g. "crypto/tls.Conn"
  std::string_view member;
  auto operator<=>(const StructMember&) const = default;
};

// The byte offset of each wanted member found in the file's top-level
// structure types; members not found are absent. Error: no DWARF at all.
Result<std::map<StructMember, uint64_t>> dwarf_member_offsets(std::span<const std::byte> elf_file,
                                                              std::span<const StructMember> wanted);

}  // namespace tlstap
