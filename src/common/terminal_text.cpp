#include "common/terminal_text.h"

#include <fmt/format.h>

#include "common/utf8.h"

namespace tlstap {
namespace {

bool is_c0_or_del(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

// U+0080-U+009F, encoded C2 80..C2 9F.
bool is_c1(std::string_view sequence) {
  return sequence.size() == 2 && static_cast<unsigned char>(sequence[0]) == 0xc2 &&
         static_cast<unsigned char>(sequence[1]) < 0xa0;
}

// Calls keep(sequence) or escape(byte) for each piece of `text`, in order.
template <class Keep, class Escape>
void split_for_terminal(std::string_view text, bool keep_line_breaks, Keep keep, Escape escape) {
  for (size_t i = 0; i < text.size();) {
    size_t length = utf8_sequence_length(text.substr(i));
    std::string_view sequence = text.substr(i, length);
    auto c = static_cast<unsigned char>(text[i]);
    bool line_break = c == '\n' || c == '\r' || c == '\t';
    if (length == 0 || is_c1(sequence) || (is_c0_or_del(c) && !(keep_line_breaks && line_break))) {
      escape(c);
      ++i;  // a C1 sequence's second byte, now alone, is escaped on the next turn
      continue;
    }
    keep(sequence);
    i += length;
  }
}

}  // namespace

bool is_terminal_safe_text(std::string_view text) {
  bool safe = true;
  split_for_terminal(
      text, true, [](std::string_view) {}, [&](unsigned char) { safe = false; });
  return safe;
}

std::string terminal_field(std::string_view text) {
  bool plain = true;
  for (char c : text) plain = plain && c >= 0x20 && c < 0x7f;
  if (plain) return std::string(text);  // most are ASCII
  std::string out;
  out.reserve(text.size());
  split_for_terminal(
      text, false, [&](std::string_view sequence) { out += sequence; },
      [&](unsigned char c) { fmt::format_to(std::back_inserter(out), "\\x{:02x}", c); });
  return out;
}

}  // namespace tlstap
