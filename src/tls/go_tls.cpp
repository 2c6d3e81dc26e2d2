#include "tls/go_tls.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "binary/go_binary.h"
#include "binary/instruction.h"

extern "C" {
#include "events.h"
}

namespace tlstap {
namespace {

constexpr std::string_view kWrite = "crypto/tls.(*Conn).Write";
constexpr std::string_view kRead = "crypto/tls.(*Conn).Read";
constexpr std::string_view kClose = "crypto/tls.(*Conn).Close";
constexpr std::string_view kMemmove = "runtime.memmove";  // what Read copies the plaintext out with
constexpr std::array<std::string_view, 4> kNames = {kWrite, kRead, kClose, kMemmove};

// Symbols when the binary kept them, else the runtime's own function table.
Result<std::vector<GoFunction>> locate_functions(const ElfImage& image) {
  std::vector<GoFunction> functions;
  for (const auto& symbol : image.find_functions(kNames))
    if (symbol.size) functions.push_back({symbol.name, symbol.address, symbol.address + symbol.size});
  if (functions.size() == kNames.size()) return functions;
  auto pclntab = image.section(".gopclntab");
  if (!pclntab || pclntab->bytes.empty()) return Error{"no symbols and no .gopclntab section"};
  return find_go_functions(pclntab->bytes, kNames);
}

const GoFunction* find_function(const std::vector<GoFunction>& functions, std::string_view name) {
  auto it =
      std::find_if(functions.begin(), functions.end(), [&](const GoFunction& f) { return f.name == name; });
  return it == functions.end() ? nullptr : &*it;
}

// Register-based arguments: amd64 since Go 1.17, arm64 since 1.18.
bool uses_register_abi(const GoVersion& version, ElfMachine machine) {
  int first_minor = machine == ElfMachine::aarch64 ? 18 : 17;
  return version.major > 1 || version.minor >= first_minor;
}

// How the probes of this binary read arguments, g and the connection's fd:
// the cookie flags every Go probe carries, and the convention that decides
// the cheapest entry.
struct GoAbi {
  CallingConvention convention = CallingConvention::go;
  uint64_t cookie_flags = 0;
};

// The layout's offsets in the cookie (events.h), when they fit its fields.
Result<uint64_t> layout_cookie_flags(const GoConnLayout& layout) {
  if (layout.conn_data > 0xff || layout.tcpconn_fd > 0x3f || layout.sysfd > 0xff ||
      layout.netfd_family % 8 != 0 || layout.netfd_family / 8 > 0xff)
    return Error{fmt::format("tls.Conn -> fd offsets ({}, {}, {}, from {}) do not fit tlstap's probe cookie",
                             layout.conn_data, layout.tcpconn_fd, layout.sysfd, layout.source)};
  return layout.conn_data << TLSTAP_GO_CONN_DATA_SHIFT | layout.tcpconn_fd << TLSTAP_GO_TCPCONN_FD_SHIFT |
         layout.sysfd << TLSTAP_GO_SYSFD_SHIFT | (layout.netfd_family / 8) << TLSTAP_GO_NETFD_FAMILY_SHIFT;
}

// ABI0 on amd64 keeps g in thread-local storage: its offset is read from
// one probed function's prologue, the same in every function of the binary.
Result<GoAbi> go_abi(const ElfImage& image, const GoVersion& version, const GoFunction& probed) {
  if (uses_register_abi(version, image.machine())) return GoAbi{};
  GoAbi abi{CallingConvention::go_stack, TLSTAP_GO_ABI0};
  if (image.machine() != ElfMachine::x86_64) return abi;  // arm64: g is in R28 under both conventions
  auto prologue = image.bytes_at_address(probed.entry, probed.end - probed.entry);
  auto offset = go_tls_g_offset(prologue, image.machine(), probed.entry);
  if (!offset)
    return Error{
        fmt::format("{} passes arguments on the stack (ABI0), and {} does not begin by loading g "
                    "from the fs segment (position-independent code?): cannot tell goroutines apart",
                    version.text, probed.name)};
  if (*offset < INT16_MIN || *offset > INT16_MAX)
    return Error{
        fmt::format("{}: g at {} from the thread pointer is out of tlstap's reach", version.text, *offset)};
  abi.cookie_flags |= static_cast<uint64_t>(static_cast<uint16_t>(*offset)) << TLSTAP_GO_TLS_G_SHIFT;
  return abi;
}

// The one call to runtime.memmove in Read (bytes.Reader.Read, inlined): the
// plaintext Read returns is its source and length.
std::optional<uint64_t> read_copy_call(std::span<const std::byte> code, ElfMachine machine, uint64_t entry,
                                       const GoFunction* memmove) {
  if (!memmove) return std::nullopt;
  std::optional<uint64_t> found;
  for (const auto& branch : find_direct_branches(code, machine, entry)) {
    if (!branch.is_call || branch.target != memmove->entry) continue;
    if (found) return std::nullopt;  // more than one: not the code we know
    found = branch.address;
  }
  return found;
}

// The probe sites of one function of crypto/tls.Conn:
// - every entry on the prologue's stack-check branch when it is recognised
//   (the cookie says so; the program skips the pass that grows the stack);
// - Write: captured whole there, nothing else;
// - Read: its runtime.memmove call, or else every return instruction;
// - Close: the entry, which ends the connection.
class SiteBuilder {
 public:
  SiteBuilder(const ElfImage& image, const GoFunction& function, const GoAbi& abi, ProbePlan& plan)
      : image_(image),
        function_(function),
        abi_(abi),
        plan_(plan),
        code_(image.bytes_at_address(function.entry, function.end - function.entry)) {}

  // memmove: null where no probe may sit on a call (its returns are probed instead).
  Result<void> build(const GoFunction* memmove, const PlanOptions& options) {
    if (code_.empty()) return Error{fmt::format("code of {} is not in the file", function_.name)};
    uint64_t entry =
        cheapest_entry(code_, image_.machine(), function_.entry, abi_.convention, 4, options.probe_calls);
    bool on_stack_check = is_go_stack_check(code_, image_.machine(), function_.entry, entry);
    uint64_t check_flag = on_stack_check ? TLSTAP_GO_SITE_STACK_CHECK : 0;
    if (function_.name == kClose) return add(entry, UprobeProgram::go_tls_close, function_.name, check_flag);
    bool is_write = function_.name == kWrite;
    uint64_t id = is_write ? TLSTAP_FN_GO_WRITE : TLSTAP_FN_GO_READ;
    if (auto added = add(entry, UprobeProgram::go_tls_enter, function_.name, id | check_flag); !added)
      return added;
    if (on_stack_check && is_write) return {};
    if (auto copy = read_copy_call(code_, image_.machine(), function_.entry, memmove); copy && !is_write)
      return add(*copy, UprobeProgram::go_tls_read_copy, function_.name + " copy", id);
    auto returns = find_returns(code_, image_.machine(), function_.entry);
    if (returns.empty()) return Error{fmt::format("no return instruction found in {}", function_.name)};
    for (uint64_t ret : returns) {
      if (auto added = add(ret, UprobeProgram::go_tls_return, function_.name + " return", id); !added)
        return added;
    }
    return {};
  }

 private:
  Result<void> add(uint64_t address, UprobeProgram program, std::string name, uint64_t cookie) {
    if (!add_site_at(plan_, image_, std::move(name), address, program, false, cookie | abi_.cookie_flags))
      return Error{fmt::format("{}: address {:#x} is not in the file", function_.name, address)};
    return {};
  }

  const ElfImage& image_;
  const GoFunction& function_;
  const GoAbi& abi_;
  ProbePlan& plan_;
  std::span<const std::byte> code_;
};

}  // namespace

Result<std::optional<ProbePlan>> plan_go_probes(const ElfImage& image, const PlanOptions& options) {
  auto buildinfo = image.section(".go.buildinfo");
  if (!buildinfo) return std::optional<ProbePlan>();
  auto version = parse_go_buildinfo(buildinfo->bytes, [&](uint64_t address, uint64_t size) {
    return image.bytes_at_address(address, size);
  });
  if (!version) return Error{"Go executable: " + version.error().message};
  auto functions = locate_functions(image);
  if (!functions) return Error{fmt::format("{}: {}", version->text, functions.error().message)};
  const GoFunction* first = find_function(*functions, kWrite);
  if (!first) first = find_function(*functions, kRead);
  if (!first) return std::optional<ProbePlan>();  // a Go program that does not use crypto/tls
  auto abi = go_abi(image, *version, *first);
  if (!abi) return abi.error();
  // DWARF is read (from a private copy of the file) only when it is there.
  const bool has_dwarf = image.section(".debug_info") || image.section(".zdebug_info");
  auto layout =
      go_conn_layout(has_dwarf ? image.file_bytes(0, UINT64_MAX) : std::span<const std::byte>(), *version);
  if (!layout) return layout.error();
  auto layout_flags = layout_cookie_flags(*layout);
  if (!layout_flags) return Error{fmt::format("{}: {}", version->text, layout_flags.error().message)};
  abi->cookie_flags |= *layout_flags;

  ProbePlan plan;
  plan.description = fmt::format("{} crypto/tls, fd offsets from {}", version->text, layout->source);
  const GoFunction* memmove = find_function(*functions, kMemmove);
  for (const auto& function : *functions) {
    if (function.name == kMemmove) continue;
    if (auto built =
            SiteBuilder(image, function, *abi, plan).build(options.probe_calls ? memmove : nullptr, options);
        !built)
      return Error{fmt::format("{}: {}", version->text, built.error().message)};
  }
  return std::optional<ProbePlan>(std::move(plan));
}

}  // namespace tlstap
