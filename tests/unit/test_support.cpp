#include "test_support.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace tlstap::test {

namespace {

std::vector<std::string> split(const std::string& line) {
  std::istringstream fields(line);
  std::vector<std::string> result;
  for (std::string field; fields >> field;) result.push_back(field);
  return result;
}

}  // namespace

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::byte> read_binary_file(const std::string& path) {
  std::string text = read_text_file(path);
  auto bytes = as_bytes(text);
  return {bytes.begin(), bytes.end()};
}

void write_text_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "tlstap-unit-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

ElfImage open_elf(const std::string& path) {
  auto image = ElfImage::open(path);
  if (!image) throw std::runtime_error(path + ": " + image.error().message);
  return std::move(image).value();
}

std::string run_command(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return {};
  std::string output;
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe.get())) output.append(buffer.data(), n);
  return output;
}

std::optional<ToolSymbol> nm_symbol(const std::string& path, std::string_view name, bool dynamic) {
  std::istringstream lines(run_command(std::string(TOOL_NM " -S --defined-only ") + (dynamic ? "-D " : "") +
                                       "'" + path + "' 2>/dev/null"));
  for (std::string line; std::getline(lines, line);) {
    // "<address> [<size>] <type> <name>[@version]": the size is absent for some symbols.
    std::vector<std::string> f = split(line);
    if (f.size() < 3 || f.size() > 4 || f.back().substr(0, f.back().find('@')) != name) continue;
    ToolSymbol result;
    result.address = std::stoull(f[0], nullptr, 16);
    if (f.size() == 4) result.size = std::stoull(f[1], nullptr, 16);
    result.type = f[f.size() - 2][0];
    return result;
  }
  return std::nullopt;
}

std::optional<ToolSymbol> nm_function(const std::string& path, std::string_view name, bool dynamic) {
  auto symbol = nm_symbol(path, name, dynamic);
  if (!symbol || std::string_view("TtWwi").find(symbol->type) == std::string_view::npos) return std::nullopt;
  return symbol;
}

std::optional<uint64_t> readelf_file_offset(const std::string& path, uint64_t address) {
  std::istringstream lines(run_command(TOOL_READELF " -lW '" + path + "' 2>/dev/null"));
  for (std::string line; std::getline(lines, line);) {
    // "LOAD <offset> <vaddr> <paddr> <filesz> <memsz> <flags> <align>"
    std::istringstream fields(line);
    std::string type, offset, vaddr, paddr, filesz;
    if (!(fields >> type >> offset >> vaddr >> paddr >> filesz) || type != "LOAD") continue;
    uint64_t start = std::stoull(vaddr, nullptr, 16);
    if (address >= start && address < start + std::stoull(filesz, nullptr, 16))
      return address - start + std::stoull(offset, nullptr, 16);
  }
  return std::nullopt;
}

std::optional<ToolSymbol> readelf_section(const std::string& path, std::string_view name) {
  std::istringstream lines(run_command(TOOL_READELF " -SW '" + path + "' 2>/dev/null"));
  for (std::string line; std::getline(lines, line);) {
    // "[Nr] Name Type Address Off Size ...", with "[ 1]" split in two for small numbers.
    std::vector<std::string> f = split(line.substr(std::min(line.find(']') + 1, line.size())));
    if (f.size() < 5 || f[0] != name) continue;
    return ToolSymbol{std::stoull(f[2], nullptr, 16), std::stoull(f[4], nullptr, 16), 0};
  }
  return std::nullopt;
}

namespace {

using Functions = std::map<std::string, std::vector<ToolInstruction>, std::less<>>;

// `objdump -d` of a file, by function. Each file is disassembled and parsed
// once (a static OpenSSL takes seconds).
const Functions& disassembly(const std::string& path) {
  static std::map<std::string, Functions> files;
  auto [file, added] = files.try_emplace(path);
  if (added) {
    std::istringstream lines(run_command(TOOL_OBJDUMP " -d --no-show-raw-insn '" + path + "' 2>/dev/null"));
    std::vector<ToolInstruction>* current = nullptr;
    for (std::string line; std::getline(lines, line);) {
      std::vector<std::string> f = split(line);
      // "0000000000201130 <SSL_write@@VERSION>:" starts a function; "<SSL_write@plt>:" is a stub.
      if (f.size() == 2 && f[1].starts_with('<') && f[1].ends_with(">:")) {
        std::string label = f[1].substr(1, f[1].size() - 3);
        current = label.ends_with("@plt") ? nullptr : &file->second[label.substr(0, label.find('@'))];
        continue;
      }
      // "  20114f:  call   201100 <ssl_write_internal>"
      if (!current || f.size() < 2 || !f[0].ends_with(':')) continue;
      current->push_back({std::stoull(f[0], nullptr, 16), f[1], {f.begin() + 2, f.end()}});
    }
  }
  return file->second;
}

void add_direct_branches(const std::vector<ToolInstruction>& instructions,
                         std::vector<ToolBranch>& branches) {
  for (const auto& insn : instructions) {
    if ((insn.mnemonic != "call" && insn.mnemonic != "jmp") || insn.operands.empty()) continue;
    const std::string& target = insn.operands[0];
    if (target.find_first_not_of("0123456789abcdef") != std::string::npos) continue;  // indirect
    branches.push_back({insn.address, std::stoull(target, nullptr, 16), insn.mnemonic == "call"});
  }
}

}  // namespace

std::vector<ToolInstruction> objdump_function(const std::string& path, std::string_view function) {
  const Functions& functions = disassembly(path);
  auto it = functions.find(function);
  return it == functions.end() ? std::vector<ToolInstruction>{} : it->second;
}

std::vector<ToolInstruction> objdump_instructions(const std::string& path) {
  std::vector<ToolInstruction> all;
  for (const auto& [name, instructions] : disassembly(path))
    all.insert(all.end(), instructions.begin(), instructions.end());
  std::sort(all.begin(), all.end(),
            [](const ToolInstruction& a, const ToolInstruction& b) { return a.address < b.address; });
  return all;
}

std::vector<ToolBranch> objdump_branches(const std::string& path, std::string_view function) {
  std::vector<ToolBranch> branches;
  add_direct_branches(objdump_function(path, function), branches);
  return branches;
}

std::vector<ToolBranch> objdump_branches_to(const std::string& path, uint64_t target) {
  std::vector<ToolBranch> branches;
  for (const auto& [name, instructions] : disassembly(path)) add_direct_branches(instructions, branches);
  std::erase_if(branches, [&](const ToolBranch& branch) { return branch.target != target; });
  std::sort(branches.begin(), branches.end(),
            [](const ToolBranch& a, const ToolBranch& b) { return a.address < b.address; });
  return branches;
}

Endpoint ipv4_endpoint(std::string_view address, uint16_t port) {
  Endpoint e{AF_INET, {}, port};
  if (inet_pton(AF_INET, std::string(address).c_str(), e.address.data()) != 1)
    throw std::invalid_argument("bad IPv4 address");
  return e;
}

Endpoint ipv6_endpoint(std::string_view address, uint16_t port) {
  Endpoint e{AF_INET6, {}, port};
  if (inet_pton(AF_INET6, std::string(address).c_str(), e.address.data()) != 1)
    throw std::invalid_argument("bad IPv6 address");
  return e;
}

DataEvent sample_data_event(std::span<const std::byte> payload) {
  DataEvent e;
  e.pid = 4242;
  e.tid = 4243;
  e.library = Library::openssl;
  e.function = TlsFunction::ssl_read_ex;
  e.direction = Direction::ingress;
  e.boot_time_ns = 987654321;
  e.conn_id = 0x7f12deadbeefULL;
  e.conn_uid = 0x100000000000002aULL;
  e.sock_id = 0xffff8881c0ffee00ULL;
  e.stream_offset = 1000;
  e.call_len = static_cast<uint32_t>(payload.size());
  e.chunk_offset = 0;
  e.comm = "curl";
  e.local = ipv4_endpoint("10.1.2.3", 51000);
  e.remote = ipv4_endpoint("93.184.216.34", 443);
  e.role = Role::client;
  e.payload = payload;
  return e;
}

}  // namespace tlstap::test
