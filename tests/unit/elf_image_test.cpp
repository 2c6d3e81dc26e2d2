// ElfImage on fixtures built at test time, checked against binutils and
// against the code the dynamic loader actually maps.
#include "binary/elf_image.h"

#include <dlfcn.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <random>

#include "test_support.h"

namespace tlstap {
namespace {

using test::kSystemLibssl;
using test::nm_function;
using test::open_elf;
using test::readelf_file_offset;

constexpr std::array<std::string_view, 4> kSslFunctions = {"SSL_write", "SSL_read", "SSL_write_ex",
                                                           "SSL_read_ex"};

// Holds bytes right before an inaccessible page, read-only, like the mapping
// ElfImage::open makes: any read past the end or any write faults, even inside
// libelf, which the sanitizers do not instrument.
class GuardedBytes {
 public:
  explicit GuardedBytes(std::span<const std::byte> bytes) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t data_size = (bytes.size() + page - 1) / page * page;
    size_ = data_size + page;
    base_ = static_cast<std::byte*>(
        mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED) throw std::runtime_error("mmap failed");
    std::byte* data = base_ + data_size - bytes.size();
    if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
    mprotect(base_, data_size, PROT_READ);
    mprotect(base_ + data_size, page, PROT_NONE);
    bytes_ = {data, bytes.size()};
  }
  ~GuardedBytes() { munmap(base_, size_); }
  GuardedBytes(const GuardedBytes&) = delete;
  GuardedBytes& operator=(const GuardedBytes&) = delete;

  std::span<const std::byte> bytes() const { return bytes_; }

 private:
  std::byte* base_ = nullptr;
  size_t size_ = 0;
  std::span<const std::byte> bytes_;
};

// Runs every query a caller may make and reads every byte handed back: on a
// malformed image none of this may crash or read outside the image.
void query_everything(const ElfImage& image) {
  (void)image.machine();
  (void)image.soname();
  (void)image.find_rodata_string("OpenSSL ");
  unsigned sum = 0;
  for (const auto& symbol : image.find_functions(kSslFunctions)) {
    for (std::byte b : image.function_bytes(symbol)) sum += static_cast<unsigned>(b);
    (void)image.is_own_code(symbol.address);
    (void)image.file_offset(symbol.address + symbol.size);
    for (std::byte b : image.file_bytes(symbol.file_offset, 64)) sum += static_cast<unsigned>(b);
    if (auto bounded = image.function_from_call_frames(symbol.address + 1, symbol.name))
      for (std::byte b : image.function_bytes(*bounded)) sum += static_cast<unsigned>(b);
  }
  for (const auto& section : image.code_sections())
    for (std::byte b : section.bytes) sum += static_cast<unsigned>(b);
  for (auto which : {ElfImage::StringAddress::of_text, ElfImage::StringAddress::of_string})
    sum += image.rodata_strings_ending_with("fixture", which).size();
  (void)sum;
}

// --- Symbols against binutils, on each way the fixture is built ---------------

struct SymbolCase {
  const char* name;
  const char* path;
  bool in_dynsym;  // where nm must find the functions
};

// Names the case in test listings instead of dumping its bytes.
void PrintTo(const SymbolCase& c, std::ostream* out) {
  *out << c.name;
}

class FixtureSymbols : public testing::TestWithParam<SymbolCase> {};

TEST_P(FixtureSymbols, MatchNmAndProgramHeaders) {
  const SymbolCase& c = GetParam();
  ElfImage image = open_elf(c.path);
  for (std::string_view name : kSslFunctions) {
    SCOPED_TRACE(name);
    auto expected = nm_function(c.path, name, c.in_dynsym);
    ASSERT_TRUE(expected) << "nm does not list " << name << " in " << c.path;
    auto offset = readelf_file_offset(c.path, expected->address);
    ASSERT_TRUE(offset);

    auto symbol = image.find_function(name);
    ASSERT_TRUE(symbol);
    EXPECT_EQ(symbol->name, name);
    EXPECT_EQ(symbol->address, expected->address);
    EXPECT_EQ(symbol->size, expected->size);
    EXPECT_GT(symbol->size, 0u);
    EXPECT_EQ(symbol->file_offset, *offset);
    EXPECT_EQ(image.function_bytes(*symbol).size(), symbol->size);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureSymbols,
                         testing::Values(SymbolCase{"Dynsym", FIXTURE_LIBSSL, true},
                                         SymbolCase{"Stripped", FIXTURE_LIBSSL_STRIPPED, true},
                                         SymbolCase{"SymtabOnly", FIXTURE_LIBSSL_HIDDEN, false}),
                         [](const testing::TestParamInfo<SymbolCase>& p) {
                           return std::string(p.param.name);
                         });

// The fixtures must be what the cases above claim, or they prove nothing.
TEST(ElfFixtures, AreBuiltAsIntended) {
  EXPECT_FALSE(nm_function(FIXTURE_LIBSSL_STRIPPED, "SSL_write", false)) << "stripped copy kept .symtab";
  EXPECT_FALSE(nm_function(FIXTURE_LIBSSL_HIDDEN, "SSL_write", true)) << "hidden copy exports SSL_write";
  EXPECT_FALSE(nm_function(FIXTURE_LIBSSL_HIDDEN_STRIPPED, "SSL_write", true));
  EXPECT_FALSE(nm_function(FIXTURE_LIBSSL_HIDDEN_STRIPPED, "SSL_write", false));
  // Linked at a non-zero base: an address used as an offset would be caught.
  auto write = nm_function(FIXTURE_LIBSSL, "SSL_write", true);
  ASSERT_TRUE(write);
  EXPECT_NE(readelf_file_offset(FIXTURE_LIBSSL, write->address), write->address);
}

TEST(ElfImage, FileOffsetPointsAtTheCodeTheLoaderMaps) {
  ElfImage image = open_elf(FIXTURE_LIBSSL);
  void* handle = dlopen(FIXTURE_LIBSSL, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  link_map* map = nullptr;
  ASSERT_EQ(dlinfo(handle, RTLD_DI_LINKMAP, &map), 0);
  for (std::string_view name : kSslFunctions) {
    SCOPED_TRACE(name);
    auto symbol = image.find_function(name);
    ASSERT_TRUE(symbol);
    void* loaded = dlsym(handle, std::string(name).c_str());
    ASSERT_NE(loaded, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(loaded), map->l_addr + symbol->address);
    auto code = image.function_bytes(*symbol);
    ASSERT_EQ(code.size(), symbol->size);
    EXPECT_EQ(std::memcmp(loaded, code.data(), code.size()), 0);
  }
  dlclose(handle);
}

TEST(ElfImage, FindFunctionsReportsEachNameOnce) {
  // SSL_write is in both .dynsym and .symtab of this fixture.
  ElfImage image = open_elf(FIXTURE_LIBSSL);
  auto found = image.find_functions(kSslFunctions);
  std::vector<std::string> names;
  for (const auto& symbol : found) names.push_back(symbol.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"SSL_read", "SSL_read_ex", "SSL_write", "SSL_write_ex"}));
}

TEST(ElfImage, IgnoresMissingNamesAndDataObjects) {
  ElfImage image = open_elf(FIXTURE_LIBSSL);
  EXPECT_FALSE(image.find_function("SSL_shutdown"));
  EXPECT_FALSE(image.find_function("fake_openssl_strings"));  // an STT_OBJECT
  EXPECT_FALSE(image.find_function(""));
}

TEST(ElfImage, ReadsSonameRodataAndMachine) {
  for (const char* path : {FIXTURE_LIBSSL, FIXTURE_LIBSSL_STRIPPED, FIXTURE_LIBSSL_HIDDEN}) {
    SCOPED_TRACE(path);
    ElfImage image = open_elf(path);
    EXPECT_EQ(image.soname(), "libssl.so.3");
    EXPECT_EQ(image.find_rodata_string("OpenSSL 3.9"), "OpenSSL 3.9.9 fixture");
    EXPECT_EQ(image.machine(), host_elf_machine());
  }
  ElfImage basic = open_elf(FIXTURE_LIBSSL_BASIC);
  EXPECT_EQ(basic.soname(), "libssl.so.1.1");
  EXPECT_EQ(basic.find_rodata_string("OpenSSL "), std::nullopt);
}

TEST(ElfImage, RodataStringsInOrderUnlessRejected) {
  // The fixture lays out "OpenSSL default" before "OpenSSL 3.9.9 fixture".
  ElfImage image = open_elf(FIXTURE_LIBSSL);
  EXPECT_EQ(image.find_rodata_string("OpenSSL "), "OpenSSL default");
  auto digit_follows = [](std::string_view s) { return s.size() > 8 && s[8] >= '0' && s[8] <= '9'; };
  EXPECT_EQ(image.find_rodata_string("OpenSSL ", digit_follows), "OpenSSL 3.9.9 fixture");
  EXPECT_EQ(image.find_rodata_string("OpenSSL ", [](std::string_view) { return false; }), std::nullopt);
}

TEST(ElfImage, RodataStringMustStartAString) {
  // "3.9.9 fixture" is inside the banner, not at the start of a string.
  ElfImage image = open_elf(FIXTURE_LIBSSL);
  EXPECT_EQ(image.find_rodata_string("3.9.9"), std::nullopt);
  EXPECT_EQ(image.find_rodata_string("OpenSSL 4"), std::nullopt);
}

TEST(ElfImage, StringsEndingWithText) {
  ElfImage image = open_elf(FIXTURE_LIBSSL);
  auto banner = image.rodata_strings_ending_with("OpenSSL 3.9.9 fixture", ElfImage::StringAddress::of_string);
  ASSERT_EQ(banner.size(), 1u);
  // The tail of a string: where it lies, or where its string starts.
  EXPECT_EQ(image.rodata_strings_ending_with("3.9.9 fixture", ElfImage::StringAddress::of_text),
            std::vector<uint64_t>{banner[0] + 8});
  EXPECT_EQ(image.rodata_strings_ending_with("3.9.9 fixture", ElfImage::StringAddress::of_string), banner);
  // Not at a string's end.
  EXPECT_EQ(image.rodata_strings_ending_with("OpenSSL 3.9.9", ElfImage::StringAddress::of_text),
            std::vector<uint64_t>{});
  auto bytes = image.bytes_at_address(banner[0], 22);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
            std::string_view("OpenSSL 3.9.9 fixture\0", 22));
}

TEST(ElfImage, FunctionsBoundedByTheirCallFrames) {
  // What a file stripped of symbols still tells: the same bounds nm gives.
  const std::string path = FIXTURE_LIBSSL_HIDDEN_STRIPPED, symbols = FIXTURE_LIBSSL_HIDDEN;
  ElfImage image = open_elf(path);
  for (std::string_view name : kSslFunctions) {
    SCOPED_TRACE(name);
    auto expected = nm_function(symbols, name, false);
    ASSERT_TRUE(expected);
    for (uint64_t inside : {expected->address, expected->address + expected->size / 2}) {
      auto found = image.function_from_call_frames(inside, "found");
      ASSERT_TRUE(found) << std::hex << inside;
      EXPECT_EQ(found->name, "found");
      EXPECT_EQ(found->address, expected->address);
      EXPECT_EQ(found->size, expected->size);
      EXPECT_EQ(found->file_offset, readelf_file_offset(path, expected->address));
    }
  }
  // Data has no call frames.
  auto rodata = test::readelf_section(path, ".rodata");
  ASSERT_TRUE(rodata);
  EXPECT_EQ(image.function_from_call_frames(rodata->address, "data"), std::nullopt);
}

TEST(ElfImage, FileOffsetOfAddresses) {
  const std::string path = FIXTURE_LIBSSL;
  ElfImage image = open_elf(path);
  auto write = nm_function(path, "SSL_write", true);
  ASSERT_TRUE(write);
  EXPECT_EQ(image.file_offset(write->address), readelf_file_offset(path, write->address));
  EXPECT_EQ(image.file_offset(write->address + 3), readelf_file_offset(path, write->address + 3));
  // Below the first segment, and in .bss (memory only, nothing in the file).
  EXPECT_EQ(image.file_offset(0x10), std::nullopt);
  auto bss = test::nm_symbol(path, "calls", false);
  ASSERT_TRUE(bss);
  ASSERT_EQ(bss->type, 'b');
  EXPECT_EQ(image.file_offset(bss->address), std::nullopt);
}

TEST(ElfImage, IsOwnCode) {
  const std::string path = FIXTURE_LIBSSL;
  ElfImage image = open_elf(path);
  auto text = test::readelf_section(path, ".text");
  auto rodata = test::readelf_section(path, ".rodata");
  ASSERT_TRUE(text && rodata);
  EXPECT_TRUE(image.is_own_code(text->address));
  EXPECT_TRUE(image.is_own_code(text->address + text->size - 1));
  EXPECT_TRUE(image.is_own_code(image.find_function("SSL_read_ex")->address));
  EXPECT_FALSE(image.is_own_code(rodata->address));
  EXPECT_FALSE(image.is_own_code(0));
}

TEST(ElfImage, PltStubsAreNotOwnCode) {
  // libssl calls libcrypto through its PLT.
  if (access(kSystemLibssl, R_OK) != 0) GTEST_SKIP() << kSystemLibssl << " is not installed";
  ElfImage image = open_elf(kSystemLibssl);
  int plt_sections = 0;
  for (const char* name : {".plt", ".plt.sec", ".plt.got"}) {
    auto plt = test::readelf_section(kSystemLibssl, name);
    if (!plt) continue;
    ++plt_sections;
    EXPECT_FALSE(image.is_own_code(plt->address)) << name;
    EXPECT_FALSE(image.is_own_code(plt->address + plt->size - 1)) << name;
  }
  EXPECT_GT(plt_sections, 0);
  EXPECT_TRUE(image.is_own_code(image.find_function("SSL_write")->address));
}

TEST(ElfImage, FileBytesAreClippedToTheFile) {
  const auto bytes = test::read_binary_file(FIXTURE_LIBSSL);
  ElfImage image = open_elf(FIXTURE_LIBSSL);
  auto header = image.file_bytes(0, 4);
  EXPECT_TRUE(std::ranges::equal(header, std::span(bytes).first(4)));
  EXPECT_EQ(image.file_bytes(bytes.size() - 3, 16).size(), 3u);
  EXPECT_TRUE(image.file_bytes(bytes.size(), 1).empty());
  EXPECT_TRUE(image.file_bytes(UINT64_MAX, UINT64_MAX).empty());
  auto write = image.find_function("SSL_write");
  ASSERT_TRUE(write);
  EXPECT_TRUE(
      std::ranges::equal(image.file_bytes(write->file_offset, write->size), image.function_bytes(*write)));
}

TEST(ElfImage, MachineFollowsTheHeader) {
  auto bytes = test::read_binary_file(FIXTURE_LIBSSL);
  auto with_machine = [&](uint16_t machine) {
    std::memcpy(bytes.data() + offsetof(Elf64_Ehdr, e_machine), &machine, sizeof(machine));
    auto image = ElfImage::parse(bytes);
    if (!image) throw std::runtime_error(image.error().message);
    return image->machine();
  };
  EXPECT_EQ(with_machine(EM_X86_64), ElfMachine::x86_64);
  EXPECT_EQ(with_machine(EM_AARCH64), ElfMachine::aarch64);
  EXPECT_EQ(with_machine(EM_RISCV), ElfMachine::other);
}

TEST(ElfImage, ParseAndOpenAgree) {
  auto bytes = test::read_binary_file(FIXTURE_LIBSSL);
  auto parsed = ElfImage::parse(bytes);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ElfImage opened = open_elf(FIXTURE_LIBSSL);
  auto a = parsed->find_function("SSL_read_ex");
  auto b = opened.find_function("SSL_read_ex");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->address, b->address);
  EXPECT_EQ(a->file_offset, b->file_offset);
  EXPECT_TRUE(std::ranges::equal(parsed->function_bytes(*a), opened.function_bytes(*b)));
}

TEST(ElfImage, ReadsTheSystemLibssl) {
  if (access(kSystemLibssl, R_OK) != 0) GTEST_SKIP() << kSystemLibssl << " is not installed";
  ElfImage image = open_elf(kSystemLibssl);
  EXPECT_EQ(image.soname(), "libssl.so.3");
  for (std::string_view name : kSslFunctions) {
    SCOPED_TRACE(name);
    auto expected = nm_function(kSystemLibssl, name, true);
    ASSERT_TRUE(expected);
    auto symbol = image.find_function(name);
    ASSERT_TRUE(symbol);
    EXPECT_EQ(symbol->address, expected->address);
    EXPECT_EQ(symbol->size, expected->size);
    EXPECT_EQ(symbol->file_offset, readelf_file_offset(kSystemLibssl, expected->address));
  }
}

// --- Malformed input ---------------------------------------------------------

TEST(ElfImageMalformed, OpenReportsUnusableFiles) {
  test::TempDir dir;
  auto missing = ElfImage::open(dir.path("missing.so"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().errno_value, ENOENT);
  EXPECT_NE(missing.error().message.find("missing.so"), std::string::npos);

  EXPECT_FALSE(ElfImage::open(dir.path("")));  // a directory

  test::write_text_file(dir.path("empty.so"), "");
  EXPECT_FALSE(ElfImage::open(dir.path("empty.so")));

  test::write_text_file(dir.path("text.so"), std::string(200, 'x'));
  auto text = ElfImage::open(dir.path("text.so"));
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message.find("text.so"), std::string::npos);
}

TEST(ElfImageMalformed, EmptyAndRandomBytesAreErrors) {
  EXPECT_FALSE(ElfImage::parse({}));
  std::mt19937 rng(1234);
  for (size_t size : {1, 4, 63, 64, 65, 1000, 8192}) {
    std::vector<std::byte> bytes(size);
    for (auto& b : bytes) b = static_cast<std::byte>(rng());
    GuardedBytes guarded(bytes);
    EXPECT_FALSE(ElfImage::parse(guarded.bytes())) << size << " random bytes";
  }
}

TEST(ElfImageMalformed, TruncatedImagesNeverInventSymbols) {
  const auto full_bytes = test::read_binary_file(FIXTURE_LIBSSL);
  ElfImage full = open_elf(FIXTURE_LIBSSL);
  const auto reference = full.find_functions(kSslFunctions);
  for (size_t size : {1ul, 4ul, 16ul, 63ul}) {
    GuardedBytes guarded{std::span(full_bytes).first(size)};
    EXPECT_FALSE(ElfImage::parse(guarded.bytes())) << "header cut at " << size;
  }
  // Longer prefixes may parse; what they report must be true of the full file.
  for (size_t size = 64; size < full_bytes.size(); size += 97) {
    SCOPED_TRACE(size);
    GuardedBytes guarded{std::span(full_bytes).first(size)};
    auto image = ElfImage::parse(guarded.bytes());
    if (!image) continue;
    query_everything(*image);
    for (const auto& symbol : image->find_functions(kSslFunctions)) {
      auto same =
          std::find_if(reference.begin(), reference.end(), [&](auto& r) { return r.name == symbol.name; });
      ASSERT_NE(same, reference.end());
      EXPECT_EQ(symbol.address, same->address);
      EXPECT_EQ(symbol.file_offset, same->file_offset);
    }
    auto banner = image->find_rodata_string("OpenSSL ");
    if (banner) {
      EXPECT_EQ(*banner, "OpenSSL 3.9.9 fixture");
    }
  }
}

TEST(ElfImageMalformed, ForeignByteOrderDoesNotCrash) {
  // libelf converts big-endian structures; the image is mapped read-only.
  auto bytes = test::read_binary_file(FIXTURE_LIBSSL);
  bytes[EI_DATA] = std::byte{ELFDATA2MSB};
  GuardedBytes guarded(bytes);
  auto image = ElfImage::parse(guarded.bytes());
  if (image) query_everything(*image);

  test::TempDir dir;
  test::write_text_file(dir.path("msb.so"),
                        std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  auto opened = ElfImage::open(dir.path("msb.so"));
  if (opened) query_everything(*opened);
}

TEST(ElfImageMalformed, CorruptedHeadersDoNotCrash) {
  const auto original = test::read_binary_file(FIXTURE_LIBSSL);
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, original.data(), sizeof(ehdr));
  // Aim at the structures the reader trusts: ELF header, program and section headers.
  const std::array<std::pair<size_t, size_t>, 3> regions = {{
      {0, sizeof(Elf64_Ehdr)},
      {ehdr.e_phoff, size_t{ehdr.e_phnum} * ehdr.e_phentsize},
      {ehdr.e_shoff, size_t{ehdr.e_shnum} * ehdr.e_shentsize},
  }};
  std::mt19937 rng(42);
  for (int round = 0; round < 600; ++round) {
    auto bytes = original;
    auto [start, length] = regions[round % regions.size()];
    for (int flips = 1 + round % 4; flips > 0; --flips)
      bytes[start + rng() % length] = static_cast<std::byte>(rng());
    GuardedBytes guarded(bytes);
    auto image = ElfImage::parse(guarded.bytes());
    if (image) query_everything(*image);
  }
}

}  // namespace
}  // namespace tlstap
