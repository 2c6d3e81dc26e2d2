// libFuzzer target: whatever bytes arrive, tlstap's readers of untrusted
// binaries (ELF, DWARF, .gopclntab, .go.buildinfo) and the planners built on them
// return a value or an Error; they never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "binary/elf_image.h"
#include "binary/go_binary.h"
#include "tls/boringssl.h"
#include "tls/gnutls.h"
#include "tls/go_tls.h"
#include "tls/nss.h"
#include "tls/openssl.h"

namespace {

void read_raw_tables(std::span<const std::byte> bytes) {
  constexpr std::string_view names[] = {"crypto/tls.(*Conn).Write", "runtime.main"};
  (void)tlstap::find_go_functions(bytes, names);
  auto no_memory = [](uint64_t, uint64_t) { return std::span<const std::byte>(); };
  (void)tlstap::parse_go_buildinfo(bytes, no_memory);
}

void read_elf(std::span<const std::byte> bytes) {
  auto image = tlstap::ElfImage::parse(bytes);
  if (!image) return;
  (void)image->soname();
  (void)tlstap::openssl_version(*image);
  (void)tlstap::plan_openssl_probes(*image);
  (void)tlstap::plan_go_probes(*image);
  (void)tlstap::go_conn_layout(bytes, tlstap::GoVersion{1, 19, 0, "go1.19"});  // its DWARF
  (void)tlstap::plan_boringssl_probes(*image);
  (void)tlstap::plan_gnutls_probes(*image);
  (void)tlstap::plan_nss_probes(*image);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the reader, so one corpus covers both.
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  if (data[0] & 1) read_raw_tables(bytes);
  else read_elf(bytes);
  return 0;
}
