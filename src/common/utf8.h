// UTF-8 checks for text the traced processes send (WebSocket text messages):
// whether it can be written as text at all, and where a limit cut it.
#pragma once

#include <cstdint>
#include <string_view>

namespace tlstap {

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
inline bool is_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    auto lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t more = lead >= 0xc2 && lead <= 0xdf   ? 1
                  : lead >= 0xe0 && lead <= 0xef ? 2
                  : lead >= 0xf0 && lead <= 0xf4 ? 3
                                                 : 0;
    if (more == 0 || text.size() - i <= more) return false;
    uint32_t code = lead & (0x3f >> more);
    for (size_t k = 1; k <= more; ++k) {
      auto next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = code << 6 | (next & 0x3f);
    }
    bool overlong_or_surrogate = more == 2 ? code < 0x800 || (code >= 0xd800 && code <= 0xdfff) : false;
    if (overlong_or_surrogate || (more == 3 && (code < 0x10000 || code > 0x10ffff))) return false;
    i += more + 1;
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
