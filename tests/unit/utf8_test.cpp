// UTF-8 well-formedness (RFC 3629's table) and trimming a sequence cut short.
#include "common/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace tlstap {
namespace {

using namespace std::string_literals;

TEST(IsUtf8, WellFormedText) {
  for (std::string text : {""s, "plain ascii"s, "h\xc3\xa9llo"s, "\xe2\x82\xac"s, "\xf0\x9f\x98\x80"s,
                           "\xf4\x8f\xbf\xbf"s, "nul \0 inside"s})
    EXPECT_TRUE(is_utf8(text)) << text;
}

TEST(IsUtf8, IllFormedBytes) {
  for (std::string text : {"\x80"s,  // a lone continuation byte
                           "\x9b"
                           "2J"s,                // a raw 8-bit C1 control
                           "\xc0\xaf"s,          // overlong '/'
                           "\xe0\x80\xaf"s,      // overlong, three bytes
                           "\xed\xa0\x80"s,      // a surrogate
                           "\xf4\x90\x80\x80"s,  // past U+10FFFF
                           "\xf5\x80\x80\x80"s,  // a lead byte that never occurs
                           "ok \xe2\x82"s,       // cut short
                           "\xc3(x"s})           // a lead without its continuation
    EXPECT_FALSE(is_utf8(text)) << text;
}

TEST(Utf8SequenceLength, TheLeadingCharactersBytesOrZero) {
  EXPECT_EQ(utf8_sequence_length(""), 0u);
  EXPECT_EQ(utf8_sequence_length("ab"), 1u);
  EXPECT_EQ(utf8_sequence_length("\xc3\xa9x"), 2u);
  EXPECT_EQ(utf8_sequence_length("\xe2\x82\xac"), 3u);
  EXPECT_EQ(utf8_sequence_length("\xf0\x9f\x98\x80"), 4u);
  EXPECT_EQ(utf8_sequence_length("\xe2\x82"), 0u);
  EXPECT_EQ(utf8_sequence_length("\x80"), 0u);
  EXPECT_EQ(utf8_sequence_length("\xed\xa0\x80"), 0u);
}

TEST(WithoutCutSequence, DropsOnlyAnIncompleteLastCharacter) {
  EXPECT_EQ(without_cut_sequence("abc"), "abc");
  EXPECT_EQ(without_cut_sequence("h\xc3\xa9"), "h\xc3\xa9");
  EXPECT_EQ(without_cut_sequence("h\xc3"), "h");
  EXPECT_EQ(without_cut_sequence("x\xe2\x82"), "x");
  EXPECT_EQ(without_cut_sequence("x\xf0\x9f\x98"), "x");
  EXPECT_EQ(without_cut_sequence("x\xf0\x9f\x98\x80"), "x\xf0\x9f\x98\x80");
  EXPECT_EQ(without_cut_sequence(""), "");
}

}  // namespace
}  // namespace tlstap
