#include "binary/go_binary.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <tuple>

#include "binary/dwarf_types.h"

namespace tlstap {
namespace {

// Little-endian reads with bounds checks; every Go target we support is LE.
std::optional<uint64_t> read_uint(std::span<const std::byte> bytes, uint64_t offset, size_t size) {
  if (offset > bytes.size() || size > bytes.size() - offset) return std::nullopt;
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value |= static_cast<uint64_t>(bytes[offset + i]) << (8 * i);
  return value;
}

std::optional<std::string_view> read_cstring(std::span<const std::byte> bytes, uint64_t offset) {
  if (offset >= bytes.size()) return std::nullopt;
  const char* start = reinterpret_cast<const char*>(bytes.data()) + offset;
  size_t max = bytes.size() - offset;
  size_t len = strnlen(start, max);
  if (len == max) return std::nullopt;
  return std::string_view(start, len);
}

// Go's unsigned varint (encoding/binary.Uvarint).
std::optional<uint64_t> read_uvarint(std::span<const std::byte> bytes, uint64_t& offset) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64 && offset < bytes.size(); shift += 7) {
    auto b = static_cast<uint8_t>(bytes[offset++]);
    value |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return value;
  }
  return std::nullopt;
}

// The pclntab layouts differ in where the tables start and how entries are
// encoded; everything else (names as C strings, sorted entries) is common.
enum class PclnLayout { go12, go116, go118 };

struct PclnHeader {
  PclnLayout layout;
  uint32_t ptr_size;
  uint64_t nfunc;
  uint64_t text_start;     // go118: function entries are offsets from it
  uint64_t funcname_base;  // offset of function names (go12: pclntab start)
  uint64_t functab;        // offset of the function table
};

Result<PclnHeader> parse_pcln_header(std::span<const std::byte> t) {
  auto magic = read_uint(t, 0, 4);
  auto ptr_size = read_uint(t, 7, 1);
  if (!magic || !ptr_size) return Error{"pclntab too short"};
  if (*ptr_size != 4 && *ptr_size != 8) return Error{fmt::format("pclntab: bad pointer size {}", *ptr_size)};
  uint32_t ps = static_cast<uint32_t>(*ptr_size);
  auto word = [&](int index) { return read_uint(t, 8 + index * ps, ps); };
  PclnHeader h{PclnLayout::go12, ps, 0, 0, 0, 0};
  switch (*magic) {
    case 0xfffffffb: {  // Go 1.2 - 1.15
      auto nfunc = word(0);
      if (!nfunc) return Error{"pclntab header truncated"};
      h = {PclnLayout::go12, ps, *nfunc, 0, 0, 8 + ps};
      break;
    }
    case 0xfffffffa: {  // Go 1.16 - 1.17
      auto nfunc = word(0), funcnames = word(2), pcln = word(6);
      if (!nfunc || !funcnames || !pcln) return Error{"pclntab header truncated"};
      h = {PclnLayout::go116, ps, *nfunc, 0, *funcnames, *pcln};
      break;
    }
    case 0xfffffff0:    // Go 1.18 - 1.19
    case 0xfffffff1: {  // Go 1.20+
      auto nfunc = word(0), text = word(2), funcnames = word(3), pcln = word(7);
      if (!nfunc || !text || !funcnames || !pcln) return Error{"pclntab header truncated"};
      h = {PclnLayout::go118, ps, *nfunc, *text, *funcnames, *pcln};
      break;
    }
    default:
      return Error{
          fmt::format("unknown pclntab magic {:#x} (a Go release newer than tlstap knows?)", *magic)};
  }
  if (h.nfunc > t.size()) return Error{"pclntab: function count larger than the table"};
  return h;
}

// Entry address and _func offset of function i, relative to the function table.
struct FuncTabEntry {
  uint64_t entry;
  uint64_t func_offset;
};

std::optional<FuncTabEntry> functab_entry(std::span<const std::byte> t, const PclnHeader& h, uint64_t i) {
  if (h.layout == PclnLayout::go118) {
    auto entry = read_uint(t, h.functab + i * 8, 4);
    auto func = read_uint(t, h.functab + i * 8 + 4, 4);
    if (!entry || !func) return std::nullopt;
    return FuncTabEntry{h.text_start + *entry, *func};
  }
  auto entry = read_uint(t, h.functab + i * 2 * h.ptr_size, h.ptr_size);
  auto func = read_uint(t, h.functab + i * 2 * h.ptr_size + h.ptr_size, h.ptr_size);
  if (!entry || !func) return std::nullopt;
  return FuncTabEntry{*entry, *func};
}

std::optional<std::string_view> function_name(std::span<const std::byte> t, const PclnHeader& h,
                                              uint64_t func_offset) {
  // _func starts with the entry (uint32 offset since 1.18, a pointer before), then nameoff (int32).
  uint64_t func = (h.layout == PclnLayout::go12 ? 0 : h.functab) + func_offset;
  uint64_t name_field = func + (h.layout == PclnLayout::go118 ? 4 : h.ptr_size);
  auto name_offset = read_uint(t, name_field, 4);
  if (!name_offset) return std::nullopt;
  return read_cstring(t, h.funcname_base + *name_offset);
}

}  // namespace

std::optional<GoVersion> parse_go_version(std::string_view text) {
  size_t at = text.find("go1.");
  if (at == std::string_view::npos) return std::nullopt;
  GoVersion v;
  v.major = 1;
  const char* p = text.data() + at + 4;
  const char* end = text.data() + text.size();
  auto [after_minor, ec] = std::from_chars(p, end, v.minor);
  if (ec != std::errc()) return std::nullopt;
  if (after_minor < end && *after_minor == '.') std::from_chars(after_minor + 1, end, v.patch);
  size_t stop = text.find_first_of(" \t\n", at);
  v.text = std::string(text.substr(at, stop == std::string_view::npos ? std::string_view::npos : stop - at));
  return v;
}

Result<GoVersion> parse_go_buildinfo(std::span<const std::byte> s, const AddressReader& read) {
  static constexpr char kMagic[] = "\xff Go buildinf:";
  if (s.size() < 32 || std::memcmp(s.data(), kMagic, 14) != 0) return Error{"no Go build information"};
  auto ptr_size = static_cast<uint8_t>(s[14]);
  auto flags = static_cast<uint8_t>(s[15]);
  std::optional<std::string_view> version;
  if (flags & 2) {  // Go 1.18+: length-prefixed strings inline after the header
    uint64_t offset = 32;
    auto len = read_uvarint(s, offset);
    if (!len || offset > s.size() || *len > s.size() - offset) return Error{"truncated Go build information"};
    version = std::string_view(reinterpret_cast<const char*>(s.data()) + offset, *len);
  } else {  // before: pointers to Go string headers {data, len}
    if (ptr_size != 4 && ptr_size != 8) return Error{"bad pointer size in Go build information"};
    auto header_address = read_uint(s, 16, ptr_size);
    if (!header_address) return Error{"truncated Go build information"};
    auto header = read(*header_address, 2 * ptr_size);
    auto data = read_uint(header, 0, ptr_size);
    auto len = read_uint(header, ptr_size, ptr_size);
    if (!data || !len || *len > 256) return Error{"unreadable Go version string"};
    auto bytes = read(*data, *len);
    if (bytes.size() != *len) return Error{"unreadable Go version string"};
    version = std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  auto parsed = parse_go_version(*version);
  if (!parsed) return Error{fmt::format("unrecognised Go version string '{}'", *version)};
  return *parsed;
}

Result<std::vector<GoFunction>> find_go_functions(std::span<const std::byte> pclntab,
                                                  std::span<const std::string_view> names) {
  auto header = parse_pcln_header(pclntab);
  if (!header) return header.error();
  std::vector<GoFunction> found;
  for (uint64_t i = 0; i < header->nfunc && found.size() < names.size(); ++i) {
    auto entry = functab_entry(pclntab, *header, i);
    if (!entry) return Error{fmt::format("pclntab: function {} of {} out of bounds", i, header->nfunc)};
    auto name = function_name(pclntab, *header, entry->func_offset);
    if (!name) return Error{fmt::format("pclntab: name of function {} out of bounds (truncated table?)", i)};
    if (std::find(names.begin(), names.end(), *name) == names.end()) continue;
    // The table ends with a sentinel entry: the next entry is this function's end.
    auto next = functab_entry(pclntab, *header, i + 1);
    if (!next || next->entry <= entry->entry) return Error{fmt::format("pclntab: bad bounds for {}", *name)};
    found.push_back({std::string(*name), entry->entry, next->entry});
  }
  return found;
}

namespace {

constexpr StructMember kTlsConnConn{"crypto/tls.Conn", "conn"};
constexpr StructMember kNetConnFd{"net.conn", "fd"};
constexpr StructMember kNetFdPfd{"net.netFD", "pfd"};
constexpr StructMember kPollFdSysfd{"internal/poll.FD", "Sysfd"};
constexpr StructMember kNetFdFamily{"net.netFD", "family"};
constexpr std::array kLayoutMembers = {kTlsConnConn, kNetConnFd, kNetFdPfd, kPollFdSysfd, kNetFdFamily};
constexpr uint64_t kInterfaceDataWord = 8;  // after the type (itab) word

// The releases whose layout tlstap's table vouches for.
constexpr int kFirstTableMinor = 9, kLastTableMinor = 22;

std::optional<GoConnLayout> layout_from_dwarf(std::span<const std::byte> elf_file) {
  auto offsets = dwarf_member_offsets(elf_file, kLayoutMembers);
  if (!offsets || offsets->size() != kLayoutMembers.size()) return std::nullopt;
  auto& o = *offsets;
  return GoConnLayout{o[kTlsConnConn] + kInterfaceDataWord, o[kNetConnFd], o[kNetFdPfd] + o[kPollFdSysfd],
                      o[kNetFdFamily], "DWARF"};
}

}  // namespace

Result<GoConnLayout> go_conn_layout(std::span<const std::byte> elf_file, const GoVersion& version) {
  if (auto layout = layout_from_dwarf(elf_file)) return *layout;
  // tls.Conn starts with conn; net.conn is only fd; netFD starts with pfd,
  // whose fdMutex (16 bytes) precedes Sysfd.
  GoConnLayout table{kInterfaceDataWord, 0, 16, 0,
                     fmt::format("the go1.{}-1.{} table", kFirstTableMinor, kLastTableMinor)};
  if (version.major == 1 && version.minor < kFirstTableMinor)
    return Error{fmt::format("{}: no DWARF, and tlstap knows tls.Conn's layout only from go1.{} on",
                             version.text, kFirstTableMinor)};
  if (version.major > 1 || version.minor > kLastTableMinor)
    table.source =
        fmt::format("the go1.{} layout, assumed (no DWARF, newer than tlstap's table)", kLastTableMinor);
  return table;
}

}  // namespace tlstap
