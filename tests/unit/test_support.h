// Helpers shared by the unit tests: files, external tools, and decoded events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "binary/elf_image.h"
#include "event/event.h"
#include "event/process_identity.h"

namespace tlstap::test {

std::string read_text_file(const std::string& path);
std::vector<std::byte> read_binary_file(const std::string& path);
void write_text_file(const std::string& path, std::string_view text);

// A host process, and one gone before /proc could be read.
inline const ProcessIdentity kCurlProcess{.exe = "/usr/bin/curl"};
inline const ProcessIdentity kGoneProcess{};
// A container of a Kubernetes pod, every member set.
inline const ProcessIdentity kPodProcess{
    .exe = "/usr/bin/python3.11",
    .cgroup = "/kubepods/besteffort/pod8c6b2f1e-5a4d-4c3b-9a8f-7e6d5c4b3a21/" + std::string(64, 'c'),
    .container_id = std::string(64, 'c'),
    .pod_uid = "8c6b2f1e-5a4d-4c3b-9a8f-7e6d5c4b3a21",
    .pod_namespace = "shop",
    .pod_name = "api-7d9f8c6b5-x2x9q",
    .container_name = "api",
    .netns = 4026532301};

inline std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

// A fresh directory, removed with its contents at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(std::string_view name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

// Where Debian keeps the system's OpenSSL; tests using it skip when it is absent.
inline constexpr const char* kSystemLibssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

// Opens an ELF file the test cannot do without; throws (failing the test) otherwise.
ElfImage open_elf(const std::string& path);

// Standard output of a shell command; empty when it fails.
std::string run_command(const std::string& command);

// What binutils says about a file, independently of our ELF reader.
struct ToolSymbol {
  uint64_t address = 0;
  uint64_t size = 0;
  char type = 0;  // nm's letter: T/t text, R/r read-only data, B/b bss...
};
// `nm -S` (or `nm -D -S` for the dynamic table), defined symbols only.
std::optional<ToolSymbol> nm_symbol(const std::string& path, std::string_view name, bool dynamic);
// The same, when the symbol is in a text section.
std::optional<ToolSymbol> nm_function(const std::string& path, std::string_view name, bool dynamic);
// Maps a virtual address to a file offset with the PT_LOAD rows of `readelf -lW`.
std::optional<uint64_t> readelf_file_offset(const std::string& path, uint64_t address);
// Address and size of a section, from `readelf -SW`.
std::optional<ToolSymbol> readelf_section(const std::string& path, std::string_view name);
struct ToolInstruction {
  uint64_t address = 0;
  std::string mnemonic;
  std::vector<std::string> operands;  // AT&T syntax, as objdump prints them
};
// The instructions of `function`, from `objdump -d`.
std::vector<ToolInstruction> objdump_function(const std::string& path, std::string_view function);

struct ToolBranch {
  uint64_t address = 0;  // of the call or jmp instruction
  uint64_t target = 0;
  bool is_call = false;
};
// Every instruction of the file's functions, in address order.
std::vector<ToolInstruction> objdump_instructions(const std::string& path);
// The direct calls and jumps in `function`.
std::vector<ToolBranch> objdump_branches(const std::string& path, std::string_view function);
// The direct calls and jumps to `target` anywhere in the file, by address.
std::vector<ToolBranch> objdump_branches_to(const std::string& path, uint64_t target);

Endpoint ipv4_endpoint(std::string_view address, uint16_t port);
Endpoint ipv6_endpoint(std::string_view address, uint16_t port);

// A decoded data event with every field set to a distinct non-default value.
DataEvent sample_data_event(std::span<const std::byte> payload);

}  // namespace tlstap::test
