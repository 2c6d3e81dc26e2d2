// Our encoder against RFC 4648's vectors and, byte for byte, OpenSSL's.
#include "sink/base64.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <string_view>
#include <vector>

namespace tlstap {
namespace {

std::string encode(std::string_view text) {
  std::string out = "prefix:";
  append_base64(out, {reinterpret_cast<const std::byte*>(text.data()), text.size()});
  return out;
}

std::string openssl_encode(const std::vector<std::byte>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(n);
  return out;
}

TEST(Base64, Rfc4648VectorsAppendedBehindWhatIsThere) {
  EXPECT_EQ(encode(""), "prefix:");
  EXPECT_EQ(encode("f"), "prefix:Zg==");
  EXPECT_EQ(encode("fo"), "prefix:Zm8=");
  EXPECT_EQ(encode("foo"), "prefix:Zm9v");
  EXPECT_EQ(encode("foob"), "prefix:Zm9vYg==");
  EXPECT_EQ(encode("fooba"), "prefix:Zm9vYmE=");
  EXPECT_EQ(encode("foobar"), "prefix:Zm9vYmFy");
  EXPECT_EQ(encode("foobarfoobar\xff\xfe"), "prefix:Zm9vYmFyZm9vYmFy//4=");
}

using Encoder = void (*)(std::string&, std::span<const std::byte>);

class EveryEncoder : public testing::TestWithParam<Encoder> {};

// Every length through the vector loop (24 bytes a step, 28 readable), the
// 8-byte loop, the 3-byte loop and both paddings, and large buffers; under
// ASan in this build, so no read past the input. On a CPU without AVX2 both
// encoders are the portable one.
TEST_P(EveryEncoder, SameAsOpensslForEveryLengthAndByte) {
  const Encoder append = GetParam();
  std::mt19937 random(7);
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 200; ++n) lengths.push_back(n);
  lengths.push_back(16384);
  lengths.push_back(1 << 20);
  for (size_t n : lengths) {
    std::vector<std::byte> bytes(n);
    for (auto& b : bytes) b = static_cast<std::byte>(random());
    std::string ours = "x";
    append(ours, bytes);
    ASSERT_EQ(ours, "x" + openssl_encode(bytes)) << n << " bytes";
  }
  // Every byte value in every position of a 3-byte group, and every 6-bit field.
  std::vector<std::byte> all(3 * 256 + 64);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::byte>(i % 256);
  std::string ours;
  append(ours, all);
  EXPECT_EQ(ours, openssl_encode(all));
}

INSTANTIATE_TEST_SUITE_P(Base64, EveryEncoder, testing::Values(&append_base64, &append_base64_portable),
                         [](const testing::TestParamInfo<Encoder>& param) {
                           return param.index == 0 ? std::string("Dispatched") : std::string("Portable");
                         });

}  // namespace
}  // namespace tlstap
