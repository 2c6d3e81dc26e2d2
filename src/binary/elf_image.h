// Reads what tlstap needs from an ELF file: function symbols (.dynsym and
// .symtab) with their file offsets, the soname, strings in read-only data,
// and, for files stripped of symbols, functions bounded by their call frames.
// Parsing works on bytes in memory, so malformed files are an Error, never a
// crash, and the parser can be fuzzed without touching the file system.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tlstap {

struct ElfSymbol {
  std::string name;
  uint64_t address = 0;  // virtual address in the ELF
  uint64_t size = 0;
  uint64_t file_offset = 0;  // what uprobes attach to
};

enum class ElfMachine { x86_64, aarch64, other };

// The architecture tlstap runs on: only its binaries can be probed.
constexpr ElfMachine host_elf_machine() {
#if defined(__x86_64__)
  return ElfMachine::x86_64;
#elif defined(__aarch64__)
  return ElfMachine::aarch64;
#else
  return ElfMachine::other;
#endif
}

// GNU_PROPERTY_X86_FEATURE_1_AND's bits (IBT, SHSTK) in the notes of a 64-bit
// file (8-byte aligned, as in its PT_GNU_PROPERTY segment); 0 when the notes
// do not carry it, or are cut short.
uint32_t x86_feature_bits(std::span<const std::byte> property_notes);

// The symbol called `name` among `symbols`, or nullptr.
const ElfSymbol* find_symbol(const std::vector<ElfSymbol>& symbols, std::string_view name);

class ElfImage {
 public:
  // Maps the file read-only and parses its headers.
  static Result<ElfImage> open(const std::string& path);
  // The same for a file already open; errors do not name it (the caller knows
  // what it opened). The mapping outlives `fd`.
  static Result<ElfImage> map(int fd);
  // Parses an image already in memory; `bytes` must outlive the ElfImage.
  static Result<ElfImage> parse(std::span<const std::byte> bytes);

  ElfImage(ElfImage&&) noexcept;
  ElfImage& operator=(ElfImage&&) noexcept;
  ~ElfImage();

  ElfMachine machine() const;
  // Defined function symbols with one of these names (dynamic symbols first).
  std::vector<ElfSymbol> find_functions(std::span<const std::string_view> names) const;
  std::optional<ElfSymbol> find_function(std::string_view name) const;
  // A data object's symbol; its file_offset is 0 when it has no bytes in the file (.bss).
  std::optional<ElfSymbol> find_object(std::string_view name) const;
  std::optional<std::string> soname() const;
  // First NUL-terminated string in a read-only data section that starts with
  // prefix and, when given, is accepted by `accept`.
  std::optional<std::string> find_rodata_string(std::string_view prefix,
                                                bool (*accept)(std::string_view) = nullptr) const;
  // Virtual addresses of the strings in read-only data that end with `text`:
  // of `text` itself in them (the address code loads when the linker merged
  // a string into another's tail), or of their starts.
  enum class StringAddress { of_text, of_string };
  std::vector<uint64_t> rodata_strings_ending_with(std::string_view text, StringAddress which) const;
  // The function around `address` as its call-frame entry (.eh_frame) bounds
  // it, named `name`: how a file without symbols is read. nullopt when no
  // entry covers it, or the entry does not begin as a called function does
  // (the return address just pushed): a part the compiler split off a function.
  std::optional<ElfSymbol> function_from_call_frames(uint64_t address, std::string name) const;
  // Where each call-frame entry starts, sorted: the functions, and parts
  // split off them. Empty without .eh_frame_hdr's search table.
  const std::vector<uint64_t>& call_frame_entry_starts() const;
  // Code bytes of a function, empty if they are not in the file.
  std::span<const std::byte> function_bytes(const ElfSymbol& symbol) const;
  // A section's address and bytes (empty for SHT_NOBITS or out-of-file data).
  struct Section {
    uint64_t address = 0;
    std::span<const std::byte> bytes;
  };
  std::optional<Section> section(std::string_view name) const;
  // The file's own code sections (executable, not PLT stubs).
  std::vector<Section> code_sections() const;
  // Bytes of the file backing [address, address + size), empty if not all in the file.
  std::span<const std::byte> bytes_at_address(uint64_t address, uint64_t size) const;
  // File offset of a virtual address in a loaded segment.
  std::optional<uint64_t> file_offset(uint64_t address) const;
  // Whether address is code of the file itself (not a PLT stub, not data).
  bool is_own_code(uint64_t address) const;
  // Up to `size` bytes at a file offset (fewer at the end of the file).
  std::span<const std::byte> file_bytes(uint64_t offset, uint64_t size) const;
  // Whether the file says its code keeps to shadow stacks (x86-64 SHSTK, in
  // its GNU property note): the dynamic loader turns them on only for a
  // program whose files all say so. Read where glibc reads it (the
  // PT_GNU_PROPERTY segment, else 8-byte aligned PT_NOTE segments), else from
  // the .note.gnu.property section: where unsure, marked.
  bool marked_for_shadow_stack() const;

 private:
  struct State;
  explicit ElfImage(std::unique_ptr<State> state);
  void read_call_frames() const;  // once, when first needed
  std::unique_ptr<State> state_;
};

}  // namespace tlstap
