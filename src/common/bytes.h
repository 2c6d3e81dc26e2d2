// The same bytes seen as text or as bytes: payloads arrive as std::byte, the
// parsers and formatters read text. No copy either way.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace tlstap {

inline std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

inline std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace tlstap
