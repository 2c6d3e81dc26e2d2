#include "sink/base64.h"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tlstap {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Both output characters of every 12-bit group, in output order: one lookup
// per two characters. OpenSSL's EVP_EncodeBlock, one character at a time,
// ran at 1.6 GB/s here; no faster encoder is packaged in Debian 12.
constexpr auto kPairs = [] {
  std::array<std::array<char, 2>, 4096> pairs{};
  for (size_t v = 0; v < pairs.size(); ++v) pairs[v] = {kAlphabet[v >> 6], kAlphabet[v & 63]};
  return pairs;
}();

uint64_t load_big_endian(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return std::endian::native == std::endian::little ? __builtin_bswap64(v) : v;
}

void put_pair(char*& out, uint32_t twelve_bits) {
  std::memcpy(out, kPairs[twelve_bits].data(), 2);
  out += 2;
}

// Encodes whole 3-byte groups and the padded tail of from[0, left).
void encode_scalar(char* to, const std::byte* from, size_t left) {
  // 6 input bytes per step from one 8-byte load (2 bytes of slack read, not used)
  for (; left >= 8; from += 6, left -= 6) {
    uint64_t v = load_big_endian(from);
    put_pair(to, static_cast<uint32_t>(v >> 52));
    put_pair(to, static_cast<uint32_t>(v >> 40) & 0xfff);
    put_pair(to, static_cast<uint32_t>(v >> 28) & 0xfff);
    put_pair(to, static_cast<uint32_t>(v >> 16) & 0xfff);
  }
  for (; left >= 3; from += 3, left -= 3) {
    uint32_t v = std::to_integer<uint32_t>(from[0]) << 16 | std::to_integer<uint32_t>(from[1]) << 8 |
                 std::to_integer<uint32_t>(from[2]);
    put_pair(to, v >> 12);
    put_pair(to, v & 0xfff);
  }
  if (left == 0) return;
  uint32_t v =
      std::to_integer<uint32_t>(from[0]) << 16 | (left == 2 ? std::to_integer<uint32_t>(from[1]) << 8 : 0);
  put_pair(to, v >> 12);
  *to++ = left == 2 ? kAlphabet[(v >> 6) & 63] : '=';
  *to = '=';
}

#if defined(__x86_64__)
// 24 input bytes to 32 characters per step, 12 in each 128-bit lane (the
// vector method of Muła and Lemire, arXiv:1704.00605): a shuffle lays each
// 3-byte group out as 4 bytes, two multiplies move its 6-bit fields into
// place, and one more shuffle adds each field's offset into the alphabet.
// Returns the input bytes consumed; reads 4 bytes past them (left >= 28).
__attribute__((target("avx2"))) size_t encode_avx2(char* to, const std::byte* from, size_t left) {
  const __m256i spread = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,  //
                                          1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
  // Offset to add to a field, by class: 0 for a-z, 1-10 for 0-9, 11 '+', 12 '/', 13 A-Z.
  const __m256i offsets = _mm256_setr_epi8(
      'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
      '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0, 'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
      '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
  size_t done = 0;
  for (; left - done >= 28; done += 24, to += 32) {
    __m128i low = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + done));
    __m128i high = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + done + 12));
    __m256i in = _mm256_shuffle_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(low), high, 1), spread);
    __m256i first_third = _mm256_mulhi_epu16(_mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00)),
                                             _mm256_set1_epi32(0x04000040));
    __m256i second_fourth = _mm256_mullo_epi16(_mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0)),
                                               _mm256_set1_epi32(0x01000010));
    __m256i fields = _mm256_or_si256(first_third, second_fourth);
    __m256i classes = _mm256_subs_epu8(fields, _mm256_set1_epi8(51));
    __m256i upper = _mm256_cmpgt_epi8(_mm256_set1_epi8(26), fields);
    classes = _mm256_or_si256(classes, _mm256_and_si256(upper, _mm256_set1_epi8(13)));
    __m256i text = _mm256_add_epi8(fields, _mm256_shuffle_epi8(offsets, classes));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(to), text);
  }
  return done;
}

bool have_avx2() {
  static const bool have = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
  return have;
}
#endif

char* grow(std::string& out, size_t input_bytes) {
  const size_t start = out.size();
  out.resize(start + 4 * ((input_bytes + 2) / 3));
  return out.data() + start;
}

}  // namespace

void append_base64_portable(std::string& out, std::span<const std::byte> bytes) {
  encode_scalar(grow(out, bytes.size()), bytes.data(), bytes.size());
}

void append_base64(std::string& out, std::span<const std::byte> bytes) {
  char* to = grow(out, bytes.size());
  size_t done = 0;
#if defined(__x86_64__)
  if (bytes.size() >= 28 && have_avx2()) done = encode_avx2(to, bytes.data(), bytes.size());
#endif
  encode_scalar(to + done / 3 * 4, bytes.data() + done, bytes.size() - done);
}

}  // namespace tlstap
