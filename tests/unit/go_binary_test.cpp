// The Go readers (.go.buildinfo, .gopclntab) and the Go probe plan, on the Go
// test programs built for amd64 and arm64, with and without symbols (see
// tests/unit/CMakeLists.txt). The truth comes from Go's own tools (go version,
// go tool objdump) and binutils (nm, readelf) run on the unstripped build.
// Malformed tables must be an Error, never a crash.
#include "binary/go_binary.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <sstream>
#include <tuple>

#include "binary/instruction.h"
#include "test_support.h"
#include "tls/go_tls.h"

namespace tlstap {
namespace {

using test::open_elf;
using test::read_binary_file;
using test::readelf_file_offset;
using test::run_command;

constexpr std::string_view kWrite = "crypto/tls.(*Conn).Write";
constexpr std::string_view kRead = "crypto/tls.(*Conn).Read";
constexpr std::string_view kClose = "crypto/tls.(*Conn).Close";
constexpr std::array kTlsFunctions = {kWrite, kRead};

#ifdef GO_FIXTURE_DIR
constexpr const char* kFixtureDir = GO_FIXTURE_DIR;
#else
constexpr const char* kFixtureDir = nullptr;
#endif

// --------------------------------------------------------------- witnesses

#ifdef GO_ABI0_FIXTURES
constexpr bool kAbi0Fixtures = true;
#else
constexpr bool kAbi0Fixtures = false;
#endif

// Go minor versions of the fixtures: Debian 12's toolchain (register-based
// ABIInternal) and Debian 11's (stack-based ABI0).
constexpr int kGoRegisterAbi = 19;
constexpr int kGoStackAbi = 15;

// A Go test program built for one architecture (stripped or not) by one toolchain.
std::string fixture(std::string_view program, std::string_view arch, bool stripped,
                    int go_minor = kGoRegisterAbi) {
  return fmt::format("{}/{}{}-{}/{}", kFixtureDir, go_minor == kGoStackAbi ? "go1.15-" : "", arch,
                     stripped ? "stripped" : "plain", program);
}

// What `go version FILE` says the file was built with, e.g. "go1.19.8".
std::string go_version_of(const std::string& path) {
  std::string out = run_command(std::string(TOOL_GO " version '") + path + "'");
  size_t colon = out.rfind(": ");
  if (colon == std::string::npos) return "(go version failed: " + out + ")";
  out = out.substr(colon + 2);
  return out.substr(0, out.find_first_of(" \n"));
}

struct GoInstruction {
  uint64_t address = 0;
  size_t size = 0;
  std::string mnemonic;
  std::string operands;  // Go assembler syntax: the destination comes last
};

// `go tool objdump` of (*Conn).Write and (*Conn).Read, keyed by function name.
std::map<std::string, std::vector<GoInstruction>> go_objdump(const std::string& path) {
  std::istringstream lines(run_command(std::string(TOOL_GO " tool objdump -s ") +
                                       R"('^crypto/tls\.\(\*Conn\)\.(Write|Read|Close)$' ')" + path + "'"));
  std::map<std::string, std::vector<GoInstruction>> functions;
  std::vector<GoInstruction>* current = nullptr;
  for (std::string line; std::getline(lines, line);) {
    // "TEXT crypto/tls.(*Conn).Write(SB) /usr/lib/go-1.19/src/crypto/tls/conn.go"
    if (line.starts_with("TEXT ")) {
      current = &functions[line.substr(5, line.find("(SB)") - 5)];
      continue;
    }
    // "  conn.go:1133\t\t0x594640\t\t4c8d642498\t\tLEAQ -0x68(SP), R12\t\t\t"
    std::vector<std::string> fields;
    std::istringstream split(line);
    for (std::string field; std::getline(split, field, '\t');)
      if (!field.empty()) fields.push_back(field);
    if (!current || fields.size() < 4 || !fields[1].starts_with("0x")) continue;
    const std::string& text = fields[3];
    size_t space = text.find(' ');
    current->push_back({std::stoull(fields[1], nullptr, 16), fields[2].size() / 2, text.substr(0, space),
                        space == std::string::npos ? "" : text.substr(space + 1)});
  }
  return functions;
}

// Where the next function after `address` starts, from `nm -n`.
uint64_t nm_next_function(const std::string& path, uint64_t address) {
  std::istringstream lines(run_command(std::string(TOOL_NM " -n --defined-only '") + path + "'"));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string value, type;
    if (!(fields >> value >> type) || (type != "T" && type != "t")) continue;
    if (uint64_t next = std::stoull(value, nullptr, 16); next > address) return next;
  }
  return 0;
}

uint64_t offset_of(const std::string& path, uint64_t address) {
  auto offset = readelf_file_offset(path, address);
  if (!offset)
    throw std::runtime_error(fmt::format("readelf maps no segment over {:#x} in {}", address, path));
  return *offset;
}

std::string describe(const ProbeSite& site) {
  std::string_view program = site.program == UprobeProgram::go_tls_enter    ? "go_tls_enter"
                             : site.program == UprobeProgram::go_tls_return ? "go_tls_return"
                                                                            : "another program";
  return fmt::format("{} {:#x} {} {} cookie={}", site.symbol, site.file_offset, program,
                     site.is_return ? "uretprobe" : "uprobe", site.cookie);
}

AddressReader reader_of(const ElfImage& image) {
  return [&image](uint64_t address, uint64_t size) { return image.bytes_at_address(address, size); };
}

// ---------------------------------------------------------------- parse_go_version

TEST(ParseGoVersion, ReleasesCandidatesAndDevelopmentBuilds) {
  struct Case {
    std::string_view input;
    int minor, patch;
    std::string_view text;
  };
  for (const Case& c : {Case{"go1.19.8", 19, 8, "go1.19.8"}, Case{"go1.20", 20, 0, "go1.20"},
                        Case{"go1.21rc2", 21, 0, "go1.21rc2"},
                        Case{"devel go1.22-3a6b7c9 Tue Nov 1 10:00:00 2023 +0000", 22, 0, "go1.22-3a6b7c9"},
                        Case{"go1.25-20250209-RC00", 25, 0, "go1.25-20250209-RC00"}}) {
    auto version = parse_go_version(c.input);
    ASSERT_TRUE(version) << c.input;
    EXPECT_EQ(std::tie(version->major, version->minor, version->patch), std::make_tuple(1, c.minor, c.patch))
        << c.input;
    EXPECT_EQ(version->text, c.text);
  }
}

TEST(ParseGoVersion, RejectsWhatIsNotAGoVersion) {
  for (std::string_view input : {"", "go", "go1", "go1.", "go1.x", "1.19.8", "gofmt", "python3.11"})
    EXPECT_FALSE(parse_go_version(input)) << input;
}

TEST(ParseGoVersion, OrdersByMinorReleaseOnly) {
  // The calling convention changes with minor releases, never with patches.
  EXPECT_LT(*parse_go_version("go1.17.13"), *parse_go_version("go1.18"));
  EXPECT_EQ(*parse_go_version("go1.19.1"), *parse_go_version("go1.19.8"));
}

// ---------------------------------------------------------------- synthetic build information

// The 32-byte header: magic, pointer size, flags (2: strings inline, Go 1.18+).
std::vector<std::byte> buildinfo_header(uint8_t pointer_size, uint8_t flags) {
  std::vector<std::byte> header(32);
  std::memcpy(header.data(), "\xff Go buildinf:", 14);
  header[14] = std::byte{pointer_size};
  header[15] = std::byte{flags};
  return header;
}

void append(std::vector<std::byte>& bytes, std::string_view text) {
  auto view = test::as_bytes(text);
  bytes.insert(bytes.end(), view.begin(), view.end());
}

const AddressReader kNothingMapped = [](uint64_t, uint64_t) { return std::span<const std::byte>(); };

TEST(ParseGoBuildinfo, InlineVersionOfGo118AndLater) {
  auto section = buildinfo_header(8, 2);
  append(section, "\x08go1.21.5");
  auto version = parse_go_buildinfo(section, kNothingMapped);
  ASSERT_TRUE(version) << version.error().message;
  EXPECT_EQ(version->text, "go1.21.5");
}

TEST(ParseGoBuildinfo, PointerToVersionBeforeGo118) {
  // Go 1.13-1.17: the header points at a Go string {data, len} in the binary.
  constexpr uint64_t kStringHeader = 0x4b0000, kStringData = 0x4a0000;
  auto section = buildinfo_header(8, 0);
  for (int i = 0; i < 8; ++i) section[16 + i] = std::byte((kStringHeader >> (8 * i)) & 0xff);
  std::array<std::byte, 16> string_header{};
  for (int i = 0; i < 8; ++i) {
    string_header[i] = std::byte((kStringData >> (8 * i)) & 0xff);
    string_header[8 + i] = std::byte(i == 0 ? 8 : 0);  // len("go1.15.3")
  }
  const std::string_view data = "go1.15.3";
  AddressReader memory = [&](uint64_t address, uint64_t size) -> std::span<const std::byte> {
    if (address == kStringHeader && size <= string_header.size()) return std::span(string_header).first(size);
    if (address == kStringData && size <= data.size()) return test::as_bytes(data).first(size);
    return {};
  };
  auto version = parse_go_buildinfo(section, memory);
  ASSERT_TRUE(version) << version.error().message;
  EXPECT_EQ(version->text, "go1.15.3");
  EXPECT_FALSE(parse_go_buildinfo(section, kNothingMapped)) << "a pointer to nowhere";
}

TEST(ParseGoBuildinfo, MalformedSectionsAreErrors) {
  auto bad_magic = buildinfo_header(8, 2);
  bad_magic[1] = std::byte{'g'};
  append(bad_magic, "\x08go1.21.5");
  auto too_long = buildinfo_header(8, 2);
  append(too_long, "\x7fgo1.21.5");  // says 127 bytes
  auto unterminated_length = buildinfo_header(8, 2);
  append(unterminated_length, "\xff\xff\xff");
  auto not_go = buildinfo_header(8, 2);
  append(not_go, "\x06rust-1");
  auto bad_pointer_size = buildinfo_header(3, 0);
  std::vector<std::byte> truncated = buildinfo_header(8, 2);
  truncated.resize(20);
  for (const auto& [what, section] : {std::pair{"empty", std::vector<std::byte>()},
                                      {"bad magic", bad_magic},
                                      {"length past the end", too_long},
                                      {"unterminated length", unterminated_length},
                                      {"not a Go version", not_go},
                                      {"bad pointer size", bad_pointer_size},
                                      {"truncated header", truncated}}) {
    auto version = parse_go_buildinfo(section, kNothingMapped);
    EXPECT_FALSE(version) << what << ": parsed as " << version->text;
  }
}

// ---------------------------------------------------------------- real executables

struct GoFixtureParam {
  std::string program;
  std::string arch;  // GOARCH
  bool stripped;
  int go_minor;  // kGoRegisterAbi or kGoStackAbi
};

void PrintTo(const GoFixtureParam& param, std::ostream* out) {
  *out << param.program << " for " << param.arch << (param.stripped ? ", stripped" : "") << ", Go 1."
       << param.go_minor;
}

std::string fixture_name(const testing::TestParamInfo<GoFixtureParam>& info) {
  return fmt::format("{}_{}{}_go1{}", info.param.program, info.param.arch,
                     info.param.stripped ? "_stripped" : "", info.param.go_minor);
}

class GoExecutable : public testing::TestWithParam<GoFixtureParam> {
 protected:
  void SetUp() override {
    if (!kFixtureDir) GTEST_SKIP() << "tlstap was configured without a Go toolchain: no Go fixtures";
    if (GetParam().go_minor == kGoStackAbi && !kAbi0Fixtures)
      GTEST_SKIP() << "tlstap was configured without Go 1.15 (scripts/install-deps.sh): no ABI0 fixtures";
  }
  const GoFixtureParam& param() const { return GetParam(); }
  std::string path() const {
    return fixture(param().program, param().arch, param().stripped, param().go_minor);
  }
  // Go's tools and nm need symbols: the unstripped build of the same program.
  std::string symbols() const { return fixture(param().program, param().arch, false, param().go_minor); }
  bool abi0() const { return param().go_minor == kGoStackAbi; }
  ElfMachine machine() const { return GetParam().arch == "arm64" ? ElfMachine::aarch64 : ElfMachine::x86_64; }

  // The stripped build has the unstripped one's code layout, so what the
  // tools say about the latter holds for both. Checked, not assumed.
  void expect_same_layout() const {
    if (!GetParam().stripped) return;
    auto ours = test::readelf_section(path(), ".text"), theirs = test::readelf_section(symbols(), ".text");
    ASSERT_TRUE(ours && theirs);
    EXPECT_EQ(std::tie(ours->address, ours->size), std::tie(theirs->address, theirs->size));
  }
};

TEST_P(GoExecutable, BuildinfoNamesTheGoVersion) {
  ElfImage image = open_elf(path());
  EXPECT_EQ(image.machine(), machine());
  auto section = image.section(".go.buildinfo");
  ASSERT_TRUE(section);
  auto version = parse_go_buildinfo(section->bytes, reader_of(image));
  ASSERT_TRUE(version) << version.error().message;
  EXPECT_EQ(version->text, go_version_of(path()));
  EXPECT_EQ(std::tie(version->major, version->minor), std::make_tuple(1, GetParam().go_minor));
}

TEST_P(GoExecutable, PclntabFunctionsMatchNm) {
  expect_same_layout();
  ElfImage image = open_elf(path());
  auto pclntab = image.section(".gopclntab");
  ASSERT_TRUE(pclntab);
  constexpr std::array<std::string_view, 4> kNames = {kWrite, kRead, "main.main", "runtime.main"};
  auto functions = find_go_functions(pclntab->bytes, kNames);
  ASSERT_TRUE(functions) << functions.error().message;
  ASSERT_EQ(functions->size(), kNames.size());
  for (const GoFunction& function : *functions) {
    auto nm = test::nm_function(symbols(), function.name, false);
    ASSERT_TRUE(nm) << function.name;
    EXPECT_EQ(function.entry, nm->address) << function.name;
    // The table's end is where the next function starts, past any alignment padding.
    EXPECT_EQ(function.end, nm_next_function(symbols(), nm->address)) << function.name;
    EXPECT_GE(function.end, nm->address + nm->size) << function.name;
  }
}

// What every probe's cookie carries for the calling convention: nothing
// under ABIInternal; under ABI0 the flag and, on amd64, where g is in
// thread-local storage, which Go's disassembler shows as the prologue's first
// load ("MOVQ FS:0xfffffff8, CX").
uint64_t abi_cookie_flags(bool abi0, bool x86, bool stripped, const GoInstruction& first) {
  // tls.Conn.conn's data word at 8, net.conn.fd at 0, Sysfd at 16 in netFD (go1.9 to go1.22);
  // with DWARF also netFD.family, at 56 (7 words) in go1.15 and go1.19.
  const uint64_t kLayout = 8 << TLSTAP_GO_CONN_DATA_SHIFT | 16 << TLSTAP_GO_SYSFD_SHIFT |
                           (stripped ? 0 : uint64_t{7} << TLSTAP_GO_NETFD_FAMILY_SHIFT);
  if (!abi0) return kLayout;
  if (!x86) return kLayout | TLSTAP_GO_ABI0;
  EXPECT_EQ(first.mnemonic, "MOVQ");
  EXPECT_TRUE(first.operands.starts_with("FS:0x")) << first.operands;
  auto offset = static_cast<int32_t>(std::stoull(first.operands.substr(3), nullptr, 16));
  return kLayout | TLSTAP_GO_ABI0 | uint64_t{static_cast<uint16_t>(offset)} << TLSTAP_GO_TLS_G_SHIFT;
}

// The plan probes (*Conn).Write, Read and Close, as Go's disassembler shows
// them in the unstripped build `symbols`, on the prologue's stack-bound check
// (JBE / BLS: the first instruction the kernel emulates, before which no
// argument register of Go's ABIInternal, AX, BX, CX / R0-R2, is written, or
// under ABI0 the stack pointer), with the cookie saying so, and Read on its
// call to runtime.memmove (Write is captured whole at the check); in a
// stripped `path`, the same instructions are at the same place.
void expect_sites_of_disassembly(const std::string& path, const std::string& symbols, ElfMachine machine,
                                 bool abi0, const ProbePlan& plan) {
  const bool x86 = machine == ElfMachine::x86_64;
  const std::string_view check = x86 ? "JBE" : "BLS";
  const std::vector<std::string_view> arguments = abi0  ? std::vector<std::string_view>{x86 ? "SP" : "RSP"}
                                                  : x86 ? std::vector<std::string_view>{"AX", "BX", "CX"}
                                                        : std::vector<std::string_view>{"R0", "R1", "R2"};
  const auto disassembly = go_objdump(symbols);
  const auto file = read_binary_file(path), witness = read_binary_file(symbols);
  std::vector<std::string> expected;
  auto expect_site = [&](const GoInstruction& insn, std::string symbol, UprobeProgram program,
                         uint64_t cookie) {
    const uint64_t offset = offset_of(path, insn.address), witness_offset = offset_of(symbols, insn.address);
    ASSERT_LE(offset + insn.size, file.size());
    EXPECT_TRUE(std::equal(file.begin() + offset, file.begin() + offset + insn.size,
                           witness.begin() + witness_offset))
        << symbol << ": the instruction at " << std::hex << insn.address
        << " differs from the unstripped build";
    expected.push_back(describe({std::move(symbol), offset, program, false, cookie}));
  };
  constexpr tlstap_function kNoData{};
  for (auto [name, cookie] : {std::pair{kWrite, TLSTAP_FN_GO_WRITE}, std::pair{kRead, TLSTAP_FN_GO_READ},
                              std::pair{kClose, kNoData}}) {
    auto found = disassembly.find(std::string(name));
    ASSERT_NE(found, disassembly.end()) << "go tool objdump shows no " << name;
    const auto& insns = found->second;
    ASSERT_FALSE(insns.empty()) << name;
    const uint64_t flags = abi_cookie_flags(abi0, x86, path != symbols, insns.front());
    auto entry =
        std::find_if(insns.begin(), insns.end(), [&](const auto& insn) { return insn.mnemonic == check; });
    ASSERT_NE(entry, insns.end()) << name << " has no " << check;
    for (auto insn = insns.begin(); insn != entry; ++insn) {
      if (insn->mnemonic.starts_with("CMP")) continue;  // writes only the flags
      std::string_view destination = std::string_view(insn->operands).substr(insn->operands.rfind(' ') + 1);
      EXPECT_EQ(std::find(arguments.begin(), arguments.end(), destination), arguments.end())
          << name << ": " << insn->mnemonic << " " << insn->operands << " before the stack check";
    }
    expect_site(*entry, std::string(name),
                cookie == kNoData ? UprobeProgram::go_tls_close : UprobeProgram::go_tls_enter,
                cookie | TLSTAP_GO_SITE_STACK_CHECK | flags);
    if (cookie != TLSTAP_FN_GO_READ) continue;  // Write is captured at the check, Close ends a connection
    // Read: its one call to runtime.memmove (bytes.Reader.Read, inlined) copies the plaintext out.
    auto is_copy = [](const GoInstruction& insn) {
      return insn.mnemonic == "CALL" && insn.operands == "runtime.memmove(SB)";
    };
    ASSERT_EQ(std::count_if(insns.begin(), insns.end(), is_copy), 1) << name;
    auto copy = std::find_if(insns.begin(), insns.end(), is_copy);
    expect_site(*copy, std::string(name) + " copy", UprobeProgram::go_tls_read_copy, cookie | flags);
  }
  std::vector<std::string> actual;
  for (const auto& site : plan.sites) actual.push_back(describe(site));
  std::sort(actual.begin(), actual.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(actual, expected);
}

TEST_P(GoExecutable, ProbesTheStackCheckAndEveryReturn) {
  expect_same_layout();
  ElfImage image = open_elf(path());
  auto plan = plan_go_probes(image);
  if (!plan && machine() == ElfMachine::aarch64 &&
      plan.error().message.find("no return instruction found") != std::string::npos)
    GTEST_SKIP() << "tlstap bug: Capstone 4 cannot decode ARMv8.1 atomics (CASALW in (*Conn).Write at "
                    "conn.go:1140), find_returns stops decoding there and finds no RET: "
                 << plan.error().message;
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_TRUE(*plan) << "not recognised as Go with crypto/tls";
  EXPECT_EQ((*plan)->description, go_version_of(path()) + " crypto/tls, fd offsets from " +
                                      (param().stripped ? "the go1.9-1.22 table" : "DWARF"));
  expect_sites_of_disassembly(path(), symbols(), machine(), abi0(), **plan);
}

// Where no probe may sit on a call (a file a process with a shadow stack may
// run, on a kernel that would not push on it): Read's returns instead of its
// runtime.memmove call, and no entry on a call either.
TEST_P(GoExecutable, NoProbeOnACallWhereCallsMayNotBeProbed) {
  ElfImage image = open_elf(path());
  auto plan = plan_go_probes(image, {.probe_calls = false});
  if (!plan && machine() == ElfMachine::aarch64 &&
      plan.error().message.find("no return instruction found") != std::string::npos)
    GTEST_SKIP() << "tlstap bug (as above): " << plan.error().message;
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_TRUE(*plan);
  size_t read_returns = 0;
  for (const auto& site : (*plan)->sites) {
    auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), 0);
    ASSERT_TRUE(insn) << describe(site);
    EXPECT_FALSE(insn->text.starts_with("call") || insn->text.starts_with("bl ")) << describe(site);
    EXPECT_FALSE(site.symbol.ends_with(" copy")) << describe(site);
    read_returns += site.symbol == "crypto/tls.(*Conn).Read return";
  }
  EXPECT_GT(read_returns, 0u);
}

// The offsets on the way from a *tls.Conn to its fd: read from DWARF when
// the binary has it (-w drops it), from the table otherwise; the same here.
TEST_P(GoExecutable, ConnLayoutFromDwarfOrTheTable) {
  auto file = read_binary_file(path());
  auto version = parse_go_version(go_version_of(path()));
  ASSERT_TRUE(version);
  auto layout = go_conn_layout(std::as_bytes(std::span(file)), *version);
  ASSERT_TRUE(layout) << layout.error().message;
  EXPECT_EQ(std::tie(layout->conn_data, layout->tcpconn_fd, layout->sysfd), std::make_tuple(8u, 0u, 16u));
  // netFD.family, which the probes check a netFD by, is known from DWARF only.
  EXPECT_EQ(layout->netfd_family, param().stripped ? 0u : 56u);
  EXPECT_EQ(layout->source, param().stripped ? "the go1.9-1.22 table" : "DWARF");
}

TEST(GoConnLayout, WithoutDwarfOnlyTheTableDecides) {
  std::vector<std::byte> no_elf(64);
  auto older = go_conn_layout(no_elf, *parse_go_version("go1.8.7"));
  EXPECT_FALSE(older);
  auto newer = go_conn_layout(no_elf, *parse_go_version("go1.27.1"));
  ASSERT_TRUE(newer) << newer.error().message;
  EXPECT_EQ(newer->sysfd, 16u);
  EXPECT_NE(newer->source.find("assumed"), std::string::npos) << newer->source;
}

std::vector<GoFixtureParam> tls_fixtures() {
  std::vector<GoFixtureParam> all;
  for (int go_minor : {kGoRegisterAbi, kGoStackAbi})
    for (const char* program : {"httpsclient", "httpsserver", "tlsclient"})
      for (const char* arch : {"amd64", "arm64"})
        for (bool stripped : {false, true}) all.push_back({program, arch, stripped, go_minor});
  return all;
}

INSTANTIATE_TEST_SUITE_P(TestPrograms, GoExecutable, testing::ValuesIn(tls_fixtures()), fixture_name);

// ---------------------------------------------------------------- what is not probed

class GoFixtureFiles : public testing::Test {
 protected:
  void SetUp() override {
    if (!kFixtureDir) GTEST_SKIP() << "tlstap was configured without a Go toolchain: no Go fixtures";
  }
};

TEST_F(GoFixtureFiles, GoWithoutCryptoTlsAndNonGoAreLeftAlone) {
  for (const char* arch : {"amd64", "arm64"})
    for (bool stripped : {false, true}) {
      auto plan = plan_go_probes(open_elf(fixture("notls", arch, stripped)));
      ASSERT_TRUE(plan) << plan.error().message;
      EXPECT_FALSE(*plan) << arch << (stripped ? " stripped" : "");
    }
  auto plan = plan_go_probes(open_elf(FIXTURE_LIBSSL));
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_FALSE(*plan);
}

// A copy of a stripped executable with `size` bytes at a section's start replaced.
std::vector<std::byte> with_section_overwritten(const std::string& path, std::string_view section,
                                                std::string_view replacement) {
  auto bytes = read_binary_file(path);
  auto found = test::readelf_section(path, section);
  if (!found) throw std::runtime_error(fmt::format("no {} in {}", section, path));
  const uint64_t offset = offset_of(path, found->address);
  std::memcpy(bytes.data() + offset, replacement.data(), replacement.size());
  return bytes;
}

TEST_F(GoFixtureFiles, CorruptTablesInAnExecutableAreErrors) {
  // Recognised as Go (it has .go.buildinfo), so tlstap must say why it cannot probe it.
  const std::string path = fixture("httpsclient", "amd64", true);
  for (auto [section, garbage] :
       {std::pair{".gopclntab", "\x01\x02\x03\x04"}, {".go.buildinfo", "\xff Go buildbad"}}) {
    auto bytes = with_section_overwritten(path, section, garbage);
    auto image = ElfImage::parse(bytes);
    ASSERT_TRUE(image) << image.error().message;
    auto plan = plan_go_probes(*image);
    EXPECT_FALSE(plan) << section << ": planned anyway";
  }
}

// --------------------------------------------------------------- malformed function tables

class MalformedPclntab : public GoFixtureFiles {
 protected:
  void SetUp() override {
    GoFixtureFiles::SetUp();
    if (IsSkipped()) return;
    const std::string path = fixture("httpsclient", "amd64", true);
    auto section = test::readelf_section(path, ".gopclntab");
    ASSERT_TRUE(section);
    auto file = read_binary_file(path);
    const uint64_t offset = offset_of(path, section->address);
    table_.assign(file.begin() + offset, file.begin() + offset + section->size);
  }

  // Header word i (Go 1.18+ layout: 8-byte words after 8 bytes of magic and sizes).
  uint64_t word(int i) const {
    uint64_t value = 0;
    std::memcpy(&value, table_.data() + 8 + 8 * i, 8);
    return value;
  }
  uint64_t nfunc() const { return word(0); }
  uint64_t functab() const { return word(7); }

  Result<std::vector<GoFunction>> find(std::span<const std::byte> table) const {
    return find_go_functions(table, kTlsFunctions);
  }

  std::vector<std::byte> table_;
};

TEST_F(MalformedPclntab, TheIntactTableWorks) {
  auto functions = find(table_);
  ASSERT_TRUE(functions) << functions.error().message;
  EXPECT_EQ(functions->size(), 2u);
}

TEST_F(MalformedPclntab, BadMagicOrPointerSizeIsAnError) {
  auto bad_magic = table_;
  bad_magic[0] = std::byte{0x42};
  auto result = find(bad_magic);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("magic"), std::string::npos) << result.error().message;
  auto bad_pointer_size = table_;
  bad_pointer_size[7] = std::byte{3};
  EXPECT_FALSE(find(bad_pointer_size));
  EXPECT_FALSE(find({}));
}

TEST_F(MalformedPclntab, TooManyFunctionsIsAnError) {
  auto lying = table_;
  const uint64_t huge = uint64_t{1} << 40;
  std::memcpy(lying.data() + 8, &huge, 8);
  EXPECT_FALSE(find(lying));
}

TEST_F(MalformedPclntab, TruncatedHeaderOrFunctionTableIsAnError) {
  // The functions tlstap wants sit far past the table's tenth entry.
  for (uint64_t size : {uint64_t{0}, uint64_t{7}, uint64_t{40}, uint64_t{71}, functab() + 8 * 10 + 3}) {
    auto result = find(std::span(table_).first(size));
    EXPECT_FALSE(result) << "cut at " << size << ": found " << result->size() << " functions";
  }
}

TEST_F(MalformedPclntab, TruncatedFunctionRecordsAreAnError) {
  // Cut after the function table, among the _func records that hold the names:
  // "no such function here" would be a wrong answer (tlstap would take the
  // executable for Go without crypto/tls and silently leave it alone).
  const uint64_t functab_end = functab() + 8 * (nfunc() + 1);
  std::vector<std::string> accepted;
  for (uint64_t size : {functab_end + 64, (functab_end + table_.size()) / 2}) {
    auto result = find(std::span(table_).first(size));
    if (result)
      accepted.push_back(
          fmt::format("cut at {} of {}: found {} functions", size, table_.size(), result->size()));
  }
  if (!accepted.empty())
    GTEST_SKIP() << "tlstap bug: find_go_functions skips functions whose _func record is out of bounds "
                    "instead of returning an Error: "
                 << fmt::format("{}", fmt::join(accepted, "; "));
}

TEST_F(MalformedPclntab, NoCutCrashes) {
  // The sanitizers watch: every read stays inside the span, whatever its length.
  for (uint64_t size = 0; size < table_.size(); size += table_.size() / 509 + 1)
    (void)find(std::span(table_).first(size));
}

}  // namespace
}  // namespace tlstap
