#include "binary/elf_image.h"

#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/unique_fd.h"

namespace tlstap {

struct ElfImage::State {
  void* mapping = nullptr;  // owned when the image was opened from a file
  size_t mapping_size = 0;
  std::span<const std::byte> bytes;
  Elf* elf = nullptr;
  // Read on first use: only files without symbols need their call frames.
  std::optional<Dwarf_CFI*> call_frames;
  std::vector<uint64_t> frame_starts;  // sorted, from .eh_frame_hdr

  ~State() {
    if (call_frames && *call_frames) dwarf_cfi_end(*call_frames);
    if (elf) elf_end(elf);
    if (mapping) munmap(mapping, mapping_size);
  }
};

namespace {

bool libelf_ready() {
  static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
  return ready;
}

std::optional<uint64_t> file_offset_of(Elf* elf, uint64_t address) {
  size_t count = 0;
  if (elf_getphdrnum(elf, &count) != 0) return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    if (!gelf_getphdr(elf, static_cast<int>(i), &phdr) || phdr.p_type != PT_LOAD) continue;
    if (address >= phdr.p_vaddr && address < phdr.p_vaddr + phdr.p_filesz)
      return address - phdr.p_vaddr + phdr.p_offset;
  }
  return std::nullopt;
}

template <class Visit>
void for_each_section(Elf* elf, Visit&& visit) {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr)) visit(scn, shdr);
  }
}

// The defined symbols of `type` (STT_FUNC, STT_OBJECT) called by one of
// `names`, each once, the dynamic symbol table first. A function must be in
// the file (uprobes attach to its offset); an object in .bss has offset 0.
std::vector<ElfSymbol> find_symbols(Elf* elf, std::span<const std::string_view> names, unsigned type) {
  std::vector<ElfSymbol> found;
  auto wanted = [&](std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end() &&
           std::none_of(found.begin(), found.end(), [&](const ElfSymbol& s) { return s.name == name; });
  };
  for (Elf64_Word table : {SHT_DYNSYM, SHT_SYMTAB}) {
    for_each_section(elf, [&](Elf_Scn* scn, const GElf_Shdr& shdr) {
      if (shdr.sh_type != table || shdr.sh_entsize == 0) return;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) return;
      size_t count = shdr.sh_size / shdr.sh_entsize;
      for (size_t i = 0; i < count; ++i) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym)) break;
        if (GELF_ST_TYPE(sym.st_info) != type || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
        const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
        if (!name || !wanted(name)) continue;
        auto offset = file_offset_of(elf, sym.st_value);
        if (!offset && type == STT_FUNC) continue;
        found.push_back({name, sym.st_value, sym.st_size, offset.value_or(0)});
      }
    });
  }
  return found;
}

std::optional<ElfSymbol> find_one_symbol(Elf* elf, std::string_view name, unsigned type) {
  auto found = find_symbols(elf, std::span<const std::string_view>(&name, 1), type);
  if (found.empty()) return std::nullopt;
  return found.front();
}

// Calls visit(address, bytes) for each read-only data section (.rodata*) in the file.
template <class Visit>
void for_each_rodata(Elf* elf, std::span<const std::byte> file, Visit&& visit) {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return;
  for_each_section(elf, [&](Elf_Scn*, const GElf_Shdr& shdr) {
    if (shdr.sh_type != SHT_PROGBITS || (shdr.sh_flags & (SHF_WRITE | SHF_EXECINSTR))) return;
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (!name || std::strncmp(name, ".rodata", 7) != 0) return;
    if (shdr.sh_offset > file.size() || shdr.sh_size > file.size() - shdr.sh_offset) return;
    visit(shdr.sh_addr,
          std::string_view(reinterpret_cast<const char*>(file.data()) + shdr.sh_offset, shdr.sh_size));
  });
}

// Executable and not the PLT's stubs.
bool is_own_code_section(Elf* elf, size_t shstrndx, const GElf_Shdr& shdr) {
  if (!(shdr.sh_flags & SHF_EXECINSTR)) return false;
  const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
  return name && !std::string_view(name).starts_with(".plt");
}

// Whether the canonical frame address at a frame's start is the stack pointer
// just past the return address: where a called function begins.
bool begins_as_called(Dwarf_Frame* frame, uint16_t machine) {
  Dwarf_Op* ops = nullptr;
  size_t count = 0;
  if (dwarf_frame_cfa(frame, &ops, &count) != 0 || count != 1 || ops[0].atom != DW_OP_bregx) return false;
  // DWARF register numbers: rsp is 7 on x86-64, sp 31 on arm64 (the return address stays in x30).
  if (machine == EM_X86_64) return ops[0].number == 7 && ops[0].number2 == 8;
  if (machine == EM_AARCH64) return ops[0].number == 31 && ops[0].number2 == 0;
  return false;
}

using FramePtr = std::unique_ptr<Dwarf_Frame, decltype(&free)>;

// The call-frame row that covers `address`; null when no entry covers it.
FramePtr frame_at(Dwarf_CFI* cfi, uint64_t address) {
  Dwarf_Frame* frame = nullptr;
  if (dwarf_cfi_addrframe(cfi, address, &frame) != 0) frame = nullptr;
  return FramePtr(frame, &free);
}

// The start of every function with a call-frame entry, from the search table
// of .eh_frame_hdr (LSB: version 1, then the encodings of the .eh_frame
// pointer, the count and the table). Every linker writes the pointer pc-
// relative, the count as 4 bytes, and the table as 4-byte offsets from the
// header, sorted; anything else gives no starts.
std::vector<uint64_t> call_frame_starts(const ElfImage::Section& header) {
  constexpr uint8_t kPcrelSdata4 = 0x1b, kUdata4 = 0x03, kDatarelSdata4 = 0x3b;
  const auto* bytes = reinterpret_cast<const uint8_t*>(header.bytes.data());
  size_t size = header.bytes.size();
  if (size < 12 || bytes[0] != 1 || bytes[1] != kPcrelSdata4 || bytes[2] != kUdata4 ||
      bytes[3] != kDatarelSdata4)
    return {};
  uint32_t count;
  std::memcpy(&count, bytes + 8, sizeof(count));
  if (count > (size - 12) / 8) return {};
  std::vector<uint64_t> starts(count);
  for (uint32_t i = 0; i < count; ++i) {
    int32_t relative;
    std::memcpy(&relative, bytes + 12 + 8 * i, sizeof(relative));
    starts[i] = header.address + static_cast<int64_t>(relative);
  }
  if (!std::is_sorted(starts.begin(), starts.end())) return {};
  return starts;
}

}  // namespace

const ElfSymbol* find_symbol(const std::vector<ElfSymbol>& symbols, std::string_view name) {
  auto it = std::find_if(symbols.begin(), symbols.end(), [&](const ElfSymbol& s) { return s.name == name; });
  return it == symbols.end() ? nullptr : &*it;
}

ElfImage::ElfImage(std::unique_ptr<State> state) : state_(std::move(state)) {}
ElfImage::ElfImage(ElfImage&&) noexcept = default;
ElfImage& ElfImage::operator=(ElfImage&&) noexcept = default;
ElfImage::~ElfImage() = default;

Result<ElfImage> ElfImage::parse(std::span<const std::byte> bytes) {
  if (!libelf_ready()) return Error{"libelf: version mismatch"};
  auto state = std::make_unique<State>();
  state->bytes = bytes;
  // libelf only reads through this pointer in ELF_C_READ mode.
  state->elf = elf_memory(reinterpret_cast<char*>(const_cast<std::byte*>(bytes.data())), bytes.size());
  if (!state->elf || elf_kind(state->elf) != ELF_K_ELF) return Error{"not an ELF file"};
  GElf_Ehdr ehdr;
  if (!gelf_getehdr(state->elf, &ehdr)) return Error{std::string("bad ELF header: ") + elf_errmsg(-1)};
  return ElfImage(std::move(state));
}

Result<ElfImage> ElfImage::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::from_errno("open " + path);
  auto image = map(fd.get());
  if (!image) return Error{path + ": " + image.error().message, image.error().errno_value};
  return image;
}

Result<ElfImage> ElfImage::map(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Error::from_errno("stat");
  if (!S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr)))
    return Error{"not a regular ELF file"};
  // MAP_SHARED: uprobes skip shared mappings, so probes (ours or another
  // tracer's) never show up as int3 in the bytes we decode.
  void* mapping = mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) return Error::from_errno("mmap");
  std::span<const std::byte> bytes(static_cast<const std::byte*>(mapping), st.st_size);
  auto image = parse(bytes);
  if (!image) {
    munmap(mapping, st.st_size);
    return image.error();
  }
  image->state_->mapping = mapping;
  image->state_->mapping_size = st.st_size;
  return image;
}

uint32_t x86_feature_bits(std::span<const std::byte> notes) {
  auto word = [&](size_t at) {
    uint32_t value = 0;
    std::memcpy(&value, notes.data() + at, sizeof(value));
    return value;
  };
  auto align8 = [](uint64_t n) { return (n + 7) & ~uint64_t{7}; };
  constexpr size_t kHeader = 12;  // namesz, descsz, type
  for (size_t at = 0; at + kHeader <= notes.size();) {
    uint64_t name_size = word(at), desc_size = word(at + 4);
    uint32_t type = word(at + 8);
    uint64_t desc = at + kHeader + ((name_size + 3) & ~uint64_t{3});
    if (desc + desc_size > notes.size()) return 0;
    bool gnu = name_size == 4 && std::memcmp(notes.data() + at + kHeader, "GNU", 4) == 0;
    if (gnu && type == NT_GNU_PROPERTY_TYPE_0) {
      for (uint64_t p = desc; p + 8 <= desc + desc_size;) {  // pr_type, pr_datasz, data
        uint32_t property = word(p), data_size = word(p + 4);
        if (p + 8 + data_size > desc + desc_size) return 0;
        if (property == GNU_PROPERTY_X86_FEATURE_1_AND && data_size == 4) return word(p + 8);
        p += 8 + align8(data_size);
      }
    }
    at = align8(desc + desc_size);
  }
  return 0;
}

bool ElfImage::marked_for_shadow_stack() const {
  if (machine() != ElfMachine::x86_64 || gelf_getclass(state_->elf) != ELFCLASS64) return false;
  auto marked = [](std::span<const std::byte> notes) {
    return (x86_feature_bits(notes) & GNU_PROPERTY_X86_FEATURE_1_SHSTK) != 0;
  };
  std::vector<GElf_Phdr> notes;
  size_t count = 0;
  if (elf_getphdrnum(state_->elf, &count) == 0) {
    for (size_t i = 0; i < count; ++i) {
      GElf_Phdr phdr;
      if (!gelf_getphdr(state_->elf, static_cast<int>(i), &phdr)) continue;
      if (phdr.p_type == PT_GNU_PROPERTY) return marked(file_bytes(phdr.p_offset, phdr.p_filesz));
      if (phdr.p_type == PT_NOTE && phdr.p_align == 8) notes.push_back(phdr);
    }
  }
  for (const auto& phdr : notes)
    if (marked(file_bytes(phdr.p_offset, phdr.p_filesz))) return true;
  auto section_notes = section(".note.gnu.property");
  return section_notes && marked(section_notes->bytes);
}

ElfMachine ElfImage::machine() const {
  GElf_Ehdr ehdr;
  if (!gelf_getehdr(state_->elf, &ehdr)) return ElfMachine::other;
  if (ehdr.e_machine == EM_X86_64) return ElfMachine::x86_64;
  if (ehdr.e_machine == EM_AARCH64) return ElfMachine::aarch64;
  return ElfMachine::other;
}

std::vector<ElfSymbol> ElfImage::find_functions(std::span<const std::string_view> names) const {
  return find_symbols(state_->elf, names, STT_FUNC);
}

std::optional<ElfSymbol> ElfImage::find_function(std::string_view name) const {
  return find_one_symbol(state_->elf, name, STT_FUNC);
}

std::optional<ElfSymbol> ElfImage::find_object(std::string_view name) const {
  return find_one_symbol(state_->elf, name, STT_OBJECT);
}

std::optional<std::string> ElfImage::soname() const {
  std::optional<std::string> result;
  for_each_section(state_->elf, [&](Elf_Scn* scn, const GElf_Shdr& shdr) {
    if (shdr.sh_type != SHT_DYNAMIC || shdr.sh_entsize == 0 || result) return;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data) return;
    for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; ++i) {
      GElf_Dyn dyn;
      if (!gelf_getdyn(data, static_cast<int>(i), &dyn)) break;
      if (dyn.d_tag != DT_SONAME) continue;
      if (const char* name = elf_strptr(state_->elf, shdr.sh_link, dyn.d_un.d_val)) result = name;
      return;
    }
  });
  return result;
}

std::optional<std::string> ElfImage::find_rodata_string(std::string_view prefix,
                                                        bool (*accept)(std::string_view)) const {
  std::optional<std::string> result;
  for_each_rodata(state_->elf, state_->bytes, [&](uint64_t, std::string_view section) {
    for (size_t at = section.find(prefix); !result && at != std::string_view::npos;
         at = section.find(prefix, at + 1)) {
      // Must start a string: preceded by NUL (or the section start).
      if (at != 0 && section[at - 1] != '\0') continue;
      size_t end = section.find('\0', at);
      if (end == std::string_view::npos) return;
      std::string_view candidate = section.substr(at, end - at);
      if (!accept || accept(candidate)) result = std::string(candidate);
    }
  });
  return result;
}

std::vector<uint64_t> ElfImage::rodata_strings_ending_with(std::string_view text, StringAddress which) const {
  std::vector<uint64_t> found;
  std::string terminated(text);
  terminated.push_back('\0');
  for_each_rodata(state_->elf, state_->bytes, [&](uint64_t address, std::string_view section) {
    for (size_t at = section.find(terminated); at != std::string_view::npos;
         at = section.find(terminated, at + 1)) {
      size_t start = at;
      // npos + 1 is 0: the section's first string.
      if (which == StringAddress::of_string) start = at == 0 ? 0 : section.find_last_of('\0', at - 1) + 1;
      found.push_back(address + start);
    }
  });
  return found;
}

void ElfImage::read_call_frames() const {
  if (state_->call_frames) return;
  state_->call_frames = dwarf_getcfi_elf(state_->elf);
  if (auto header = section(".eh_frame_hdr")) state_->frame_starts = call_frame_starts(*header);
}

const std::vector<uint64_t>& ElfImage::call_frame_entry_starts() const {
  read_call_frames();
  return state_->frame_starts;
}

std::optional<ElfSymbol> ElfImage::function_from_call_frames(uint64_t address, std::string name) const {
  read_call_frames();
  Dwarf_CFI* cfi = *state_->call_frames;
  const auto& starts = state_->frame_starts;
  auto next = std::upper_bound(starts.begin(), starts.end(), address);
  if (!cfi || next == starts.begin()) return std::nullopt;
  uint64_t start = *std::prev(next);
  uint64_t limit = next == starts.end() ? UINT64_MAX : *next;
  // libdw gives the rows of an entry's table, not the entry's own range: the
  // function ends where its rows do (padding before the next entry included).
  uint64_t end = start;
  for (FramePtr row = frame_at(cfi, start); row && end < limit; row = frame_at(cfi, end)) {
    Dwarf_Addr row_start = 0, row_end = 0;
    if (dwarf_frame_info(row.get(), &row_start, &row_end, nullptr) < 0 || row_end <= end) break;
    end = std::min<uint64_t>(row_end, limit);
  }
  GElf_Ehdr ehdr;
  FramePtr entry = frame_at(cfi, start);
  if (address >= end || !entry || !gelf_getehdr(state_->elf, &ehdr) ||
      !begins_as_called(entry.get(), ehdr.e_machine))
    return std::nullopt;
  auto offset = file_offset(start);
  if (!offset) return std::nullopt;
  return ElfSymbol{std::move(name), start, end - start, *offset};
}

std::optional<ElfImage::Section> ElfImage::section(std::string_view wanted) const {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(state_->elf, &shstrndx) != 0) return std::nullopt;
  std::optional<Section> result;
  for_each_section(state_->elf, [&](Elf_Scn*, const GElf_Shdr& shdr) {
    const char* name = elf_strptr(state_->elf, shstrndx, shdr.sh_name);
    if (result || !name || wanted != name) return;
    result = Section{shdr.sh_addr, {}};
    if (shdr.sh_type != SHT_NOBITS && shdr.sh_offset <= state_->bytes.size() &&
        shdr.sh_size <= state_->bytes.size() - shdr.sh_offset)
      result->bytes = state_->bytes.subspan(shdr.sh_offset, shdr.sh_size);
  });
  return result;
}

std::span<const std::byte> ElfImage::bytes_at_address(uint64_t address, uint64_t size) const {
  auto offset = file_offset(address);
  if (!offset || size == 0) return {};
  auto last = file_offset(address + size - 1);
  if (!last || *last - *offset != size - 1) return {};  // spans segments or file-less bytes
  return file_bytes(*offset, size);
}

std::optional<uint64_t> ElfImage::file_offset(uint64_t address) const {
  return file_offset_of(state_->elf, address);
}

bool ElfImage::is_own_code(uint64_t address) const {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(state_->elf, &shstrndx) != 0) return false;
  bool found = false;
  for_each_section(state_->elf, [&](Elf_Scn*, const GElf_Shdr& shdr) {
    found = found || (address >= shdr.sh_addr && address - shdr.sh_addr < shdr.sh_size &&
                      is_own_code_section(state_->elf, shstrndx, shdr));
  });
  return found;
}

std::vector<ElfImage::Section> ElfImage::code_sections() const {
  std::vector<Section> sections;
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(state_->elf, &shstrndx) != 0) return sections;
  for_each_section(state_->elf, [&](Elf_Scn*, const GElf_Shdr& shdr) {
    if (shdr.sh_type == SHT_PROGBITS && is_own_code_section(state_->elf, shstrndx, shdr) &&
        shdr.sh_offset <= state_->bytes.size() && shdr.sh_size <= state_->bytes.size() - shdr.sh_offset)
      sections.push_back({shdr.sh_addr, state_->bytes.subspan(shdr.sh_offset, shdr.sh_size)});
  });
  return sections;
}

std::span<const std::byte> ElfImage::file_bytes(uint64_t offset, uint64_t size) const {
  if (offset >= state_->bytes.size()) return {};
  return state_->bytes.subspan(offset, std::min<uint64_t>(size, state_->bytes.size() - offset));
}

std::span<const std::byte> ElfImage::function_bytes(const ElfSymbol& symbol) const {
  if (symbol.file_offset > state_->bytes.size() || symbol.size > state_->bytes.size() - symbol.file_offset)
    return {};
  return state_->bytes.subspan(symbol.file_offset, symbol.size);
}

}  // namespace tlstap
