#include "binary/dwarf_types.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <libelf.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

namespace tlstap {
namespace {

struct ElfCloser {
  void operator()(Elf* elf) const { elf_end(elf); }
};
struct DwarfCloser {
  void operator()(Dwarf* dwarf) const { dwarf_end(dwarf); }
};

std::optional<uint64_t> member_offset(Dwarf_Die& member) {
  Dwarf_Attribute attribute;
  Dwarf_Word offset = 0;
  if (!dwarf_attr(&member, DW_AT_data_member_location, &attribute) ||
      dwarf_formudata(&attribute, &offset) != 0)
    return std::nullopt;
  return offset;
}

// Records the wanted members of one structure type.
void read_members(Dwarf_Die& structure, std::string_view type, std::span<const StructMember> wanted,
                  std::map<StructMember, uint64_t>& found) {
  Dwarf_Die member;
  if (dwarf_child(&structure, &member) != 0) return;
  do {
    const char* name = dwarf_diename(&member);
    if (dwarf_tag(&member) != DW_TAG_member || !name) continue;
    auto it = std::find(wanted.begin(), wanted.end(), StructMember{type, name});
    if (it == wanted.end() || found.contains(*it)) continue;
    if (auto offset = member_offset(member)) found[*it] = *offset;
  } while (dwarf_siblingof(&member, &member) == 0);
}

}  // namespace

Result<std::map<StructMember, uint64_t>> dwarf_member_offsets(std::span<const std::byte> elf_file,
                                                              std::span<const StructMember> wanted) {
  elf_version(EV_CURRENT);
  // libdw decompresses compressed debug sections (Go's) in place: its own copy.
  std::vector<char> copy(reinterpret_cast<const char*>(elf_file.data()),
                         reinterpret_cast<const char*>(elf_file.data()) + elf_file.size());
  std::unique_ptr<Elf, ElfCloser> elf(elf_memory(copy.data(), copy.size()));
  if (!elf) return Error{std::string("not an ELF file: ") + elf_errmsg(-1)};
  std::unique_ptr<Dwarf, DwarfCloser> dwarf(dwarf_begin_elf(elf.get(), DWARF_C_READ, nullptr));
  if (!dwarf) return Error{std::string("no DWARF: ") + dwarf_errmsg(-1)};
  std::map<StructMember, uint64_t> found;
  Dwarf_Off offset = 0, next = 0;
  size_t header_size = 0;
  while (found.size() < wanted.size() &&
         dwarf_nextcu(dwarf.get(), offset, &next, &header_size, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die unit, child;
    if (dwarf_offdie(dwarf.get(), offset + header_size, &unit) && dwarf_child(&unit, &child) == 0) {
      do {
        const char* name = dwarf_diename(&child);
        if (dwarf_tag(&child) != DW_TAG_structure_type || !name) continue;
        bool is_wanted =
            std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) { return w.type == name; });
        if (is_wanted) read_members(child, name, wanted, found);
      } while (dwarf_siblingof(&child, &child) == 0);
    }
    offset = next;
  }
  return found;
}

}  // namespace tlstap
