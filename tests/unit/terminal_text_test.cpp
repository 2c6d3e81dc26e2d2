// What of a process's or a peer's bytes may reach a terminal as it is.
#include "common/terminal_text.h"

#include <gtest/gtest.h>

namespace tlstap {
namespace {

TEST(TerminalField, PlainTextAndUtf8AsTheyAre) {
  EXPECT_EQ(terminal_field(""), "");
  EXPECT_EQ(terminal_field("GET /index.html?q=1"), "GET /index.html?q=1");
  EXPECT_EQ(terminal_field("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
            "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(TerminalField, ControlsLineBreaksAndNonUtf8Escaped) {
  EXPECT_EQ(terminal_field("\x1b[2J"), "\\x1b[2J");
  EXPECT_EQ(terminal_field("a\r\nb\tc"), "a\\x0d\\x0ab\\x09c");
  EXPECT_EQ(terminal_field(std::string("nul\0", 4)), "nul\\x00");
  EXPECT_EQ(terminal_field("del\x7f"), "del\\x7f");
  EXPECT_EQ(terminal_field("csi\xc2\x9b"
                           "2J"),
            "csi\\xc2\\x9b2J");  // U+009B, C1's ESC [
  EXPECT_EQ(terminal_field("latin1 \x9b"
                           "2J"),
            "latin1 \\x9b2J");  // CSI to an 8-bit terminal
  EXPECT_EQ(terminal_field("cut \xe2\x82"), "cut \\xe2\\x82");
  EXPECT_EQ(terminal_field("overlong \xc0\xaf"), "overlong \\xc0\\xaf");
  EXPECT_EQ(terminal_field("\xc2\xa0nbsp"), "\xc2\xa0nbsp") << "U+00A0 is past the C1 block";
}

TEST(IsTerminalSafeText, LineBreaksAndTabsAllowedControlsNot) {
  EXPECT_TRUE(is_terminal_safe_text("one\ntwo\r\n\tthree h\xc3\xa9"));
  EXPECT_FALSE(is_terminal_safe_text("\x1b[31mred"));
  EXPECT_FALSE(is_terminal_safe_text("\x7f"));
  EXPECT_FALSE(is_terminal_safe_text("\xc2\x85"));  // NEL
  EXPECT_FALSE(is_terminal_safe_text("\xff"));
}

}  // namespace
}  // namespace tlstap
