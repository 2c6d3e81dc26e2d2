// UTF-8 checks for text the traced processes send (WebSocket text messages):
// whether it can be written as text at all, and where a limit cut it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tlstap {

// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong form,
// no surrogate, nothing past U+10FFFF) `text` starts with; 0 when it starts
// with none (or is empty).
inline size_t utf8_sequence_length(std::string_view text) {
  if (text.empty()) return 0;
  auto lead = static_cast<uint8_t>(text[0]);
  if (lead < 0x80) return 1;
  size_t more = lead >= 0xc2 && lead <= 0xdf   ? 1
                : lead >= 0xe0 && lead <= 0xef ? 2
                : lead >= 0xf0 && lead <= 0xf4 ? 3
                                               : 0;
  if (more == 0 || text.size() <= more) return 0;
  uint32_t code = lead & (0x3f >> more);
  for (size_t k = 1; k <= more; ++k) {
    auto next = static_cast<uint8_t>(text[k]);
    if ((next & 0xc0) != 0x80) return 0;
    code = code << 6 | (next & 0x3f);
  }
  bool overlong_or_surrogate = more == 2 ? code < 0x800 || (code >= 0xd800 && code <= 0xdfff) : false;
  if (overlong_or_surrogate || (more == 3 && (code < 0x10000 || code > 0x10ffff))) return 0;
  return more + 1;
}

inline bool is_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t length = utf8_sequence_length(text.substr(i));
    if (length == 0) return false;
    i += length;
  }
  return true;
}

// `text` without a multi-byte sequence its end cut short, as keeping only the
// first N bytes of a message does.
inline std::string_view without_cut_sequence(std::string_view text) {
  for (size_t back = 1; back <= 4 && back <= text.size(); ++back) {
    auto byte = static_cast<uint8_t>(text[text.size() - back]);
    if ((byte & 0xc0) == 0x80) continue;  // a continuation byte: the lead is further back
    size_t length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return length > back ? text.substr(0, text.size() - back) : text;
  }
  return text;
}

}  // namespace tlstap
