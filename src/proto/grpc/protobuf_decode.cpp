#include "proto/grpc/protobuf_decode.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace tlstap::proto {

namespace {

using nlohmann::ordered_json;

enum WireType : uint8_t { kVarint = 0, kI64 = 1, kLen = 2, kI32 = 5 };
constexpr uint64_t kMaxFieldNumber = (1u << 29) - 1;

// Reads one base-128 varint (at most 10 bytes) from the front of `in`.
std::optional<uint64_t> read_varint(std::span<const std::byte>& in) {
  uint64_t value = 0;
  for (size_t i = 0; i < 10 && i < in.size(); ++i) {
    auto b = std::to_integer<uint64_t>(in[i]);
    value |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (i == 9 && b > 1) return std::nullopt;  // beyond 64 bits
      in = in.subspan(i + 1);
      return value;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> read_fixed(std::span<const std::byte>& in, size_t size) {
  if (in.size() < size) return std::nullopt;
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value |= std::to_integer<uint64_t>(in[i]) << (8 * i);
  in = in.subspan(size);
  return value;
}

// Length of the UTF-8 sequence starting with `lead`, 0 when it cannot lead one.
size_t utf8_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

// The range the second byte of a sequence led by `lead` must fall in (RFC 3629),
// which rules out overlong forms, surrogates and code points past U+10FFFF.
std::pair<uint8_t, uint8_t> second_byte_range(uint8_t lead) {
  switch (lead) {
    case 0xe0:
      return {0xa0, 0xbf};
    case 0xed:
      return {0x80, 0x9f};
    case 0xf0:
      return {0x90, 0xbf};
    case 0xf4:
      return {0x80, 0x8f};
    default:
      return {0x80, 0xbf};
  }
}

// Valid UTF-8 without control characters other than tab and line breaks.
bool is_printable_text(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    auto lead = static_cast<uint8_t>(text[i]);
    size_t n = utf8_length(lead);
    if (n == 0 || i + n > text.size()) return false;
    if (n == 1 && (lead == 0x7f || (lead < 0x20 && lead != '\t' && lead != '\n' && lead != '\r')))
      return false;
    if (n > 1) {
      auto [low, high] = second_byte_range(lead);
      auto second = static_cast<uint8_t>(text[i + 1]);
      if (second < low || second > high) return false;
    }
    for (size_t k = 2; k < n; ++k) {
      if ((static_cast<uint8_t>(text[i + k]) & 0xc0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

std::string to_hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    out += kDigits[std::to_integer<uint8_t>(b) >> 4];
    out += kDigits[std::to_integer<uint8_t>(b) & 0xf];
  }
  return out;
}

class Decoder {
 public:
  std::optional<ordered_json> message(std::span<const std::byte> in, int depth) {
    ordered_json fields = ordered_json::array();
    while (!in.empty()) {
      auto field = next_field(in, depth);
      if (!field) return std::nullopt;
      fields.push_back(std::move(*field));
    }
    return fields;
  }

 private:
  std::optional<ordered_json> next_field(std::span<const std::byte>& in, int depth) {
    if (++fields_ > kProtobufMaxFields) return std::nullopt;
    auto tag = read_varint(in);
    if (!tag || (*tag >> 3) == 0 || (*tag >> 3) > kMaxFieldNumber) return std::nullopt;
    ordered_json field = {{"field", *tag >> 3}};
    std::optional<uint64_t> value;
    switch (*tag & 7) {
      case kVarint:
        field["wire"] = "varint";
        value = read_varint(in);
        break;
      case kI64:
        field["wire"] = "i64";
        value = read_fixed(in, 8);
        break;
      case kI32:
        field["wire"] = "i32";
        value = read_fixed(in, 4);
        break;
      case kLen:
        field["wire"] = "len";
        if (!length_delimited(in, depth, field)) return std::nullopt;
        return field;
      default:
        return std::nullopt;  // groups and undefined wire types
    }
    if (!value) return std::nullopt;
    field["value"] = *value;
    return field;
  }

  bool length_delimited(std::span<const std::byte>& in, int depth, ordered_json& field) {
    auto length = read_varint(in);
    if (!length || *length > in.size()) return false;
    auto content = in.first(*length);
    in = in.subspan(*length);
    std::string_view text(reinterpret_cast<const char*>(content.data()), content.size());
    if (is_printable_text(text)) {
      field["string"] = text;
      return true;
    }
    if (depth + 1 < kProtobufMaxDepth) {
      size_t fields_before = fields_;
      if (auto nested = message(content, depth + 1)) {
        field["message"] = std::move(*nested);
        return true;
      }
      fields_ = fields_before;  // a failed attempt does not use the budget
    }
    field["hex"] = to_hex(content);
    return true;
  }

  size_t fields_ = 0;
};

}  // namespace

std::optional<nlohmann::ordered_json> decode_protobuf(std::span<const std::byte> bytes) {
  return Decoder().message(bytes, 0);
}

}  // namespace tlstap::proto
