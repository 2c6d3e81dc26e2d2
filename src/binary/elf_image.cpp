#include "binary/elf_image.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "common/unique_fd.h"

namespace tlstap {

struct ElfImage::State {
  void* mapping = nullptr;  // owned when the image was opened from a file
  size_t mapping_size = 0;
  std::span<const std::byte> bytes;
  Elf* elf = nullptr;

  ~State() {
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
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Error::from_errno("stat " + path);
  if (!S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr)))
    return Error{path + ": not a regular ELF file"};
  // MAP_SHARED: uprobes skip shared mappings, so probes (ours or another
  // tracer's) never show up as int3 in the bytes we decode.
  void* mapping = mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (mapping == MAP_FAILED) return Error::from_errno("mmap " + path);
  std::span<const std::byte> bytes(static_cast<const std::byte*>(mapping), st.st_size);
  auto image = parse(bytes);
  if (!image) {
    munmap(mapping, st.st_size);
    return Error{path + ": " + image.error().message};
  }
  image->state_->mapping = mapping;
  image->state_->mapping_size = st.st_size;
  return image;
}

ElfMachine ElfImage::machine() const {
  GElf_Ehdr ehdr;
  if (!gelf_getehdr(state_->elf, &ehdr)) return ElfMachine::other;
  if (ehdr.e_machine == EM_X86_64) return ElfMachine::x86_64;
  if (ehdr.e_machine == EM_AARCH64) return ElfMachine::aarch64;
  return ElfMachine::other;
}

std::vector<ElfSymbol> ElfImage::find_functions(std::span<const std::string_view> names) const {
  std::vector<ElfSymbol> found;
  auto wanted = [&](std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end() &&
           std::none_of(found.begin(), found.end(), [&](const ElfSymbol& s) { return s.name == name; });
  };
  for (Elf64_Word table : {SHT_DYNSYM, SHT_SYMTAB}) {
    for_each_section(state_->elf, [&](Elf_Scn* scn, const GElf_Shdr& shdr) {
      if (shdr.sh_type != table || shdr.sh_entsize == 0) return;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) return;
      size_t count = shdr.sh_size / shdr.sh_entsize;
      for (size_t i = 0; i < count; ++i) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym)) break;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
        const char* name = elf_strptr(state_->elf, shdr.sh_link, sym.st_name);
        if (!name || !wanted(name)) continue;
        auto offset = file_offset_of(state_->elf, sym.st_value);
        if (!offset) continue;
        found.push_back({name, sym.st_value, sym.st_size, *offset});
      }
    });
  }
  return found;
}

std::optional<ElfSymbol> ElfImage::find_function(std::string_view name) const {
  auto found = find_functions(std::span<const std::string_view>(&name, 1));
  if (found.empty()) return std::nullopt;
  return found.front();
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
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(state_->elf, &shstrndx) != 0) return std::nullopt;
  for_each_section(state_->elf, [&](Elf_Scn*, const GElf_Shdr& shdr) {
    if (result || shdr.sh_type != SHT_PROGBITS || (shdr.sh_flags & (SHF_WRITE | SHF_EXECINSTR))) return;
    const char* name = elf_strptr(state_->elf, shstrndx, shdr.sh_name);
    if (!name || std::strncmp(name, ".rodata", 7) != 0) return;
    if (shdr.sh_offset > state_->bytes.size() || shdr.sh_size > state_->bytes.size() - shdr.sh_offset) return;
    std::string_view section(reinterpret_cast<const char*>(state_->bytes.data()) + shdr.sh_offset,
                             shdr.sh_size);
    for (size_t at = section.find(prefix); at != std::string_view::npos; at = section.find(prefix, at + 1)) {
      // Must start a string: preceded by NUL (or the section start).
      if (at != 0 && section[at - 1] != '\0') continue;
      size_t end = section.find('\0', at);
      if (end == std::string_view::npos) return;
      std::string_view candidate = section.substr(at, end - at);
      if (accept && !accept(candidate)) continue;
      result = std::string(candidate);
      return;
    }
  });
  return result;
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
    if (found || !(shdr.sh_flags & SHF_EXECINSTR) || address < shdr.sh_addr ||
        address >= shdr.sh_addr + shdr.sh_size)
      return;
    const char* name = elf_strptr(state_->elf, shstrndx, shdr.sh_name);
    found = name && !std::string_view(name).starts_with(".plt");
  });
  return found;
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
