#include "proto/http2/frame.h"

#include <algorithm>

namespace tlstap::proto::http2 {

namespace {

uint32_t read_be(std::span<const std::byte> bytes) {
  uint32_t value = 0;
  for (std::byte b : bytes) value = (value << 8) | std::to_integer<uint32_t>(b);
  return value;
}

constexpr uint8_t kAllowedFlags[] = {
    flag::end_stream | flag::padded,                                       // DATA
    flag::end_stream | flag::end_headers | flag::padded | flag::priority,  // HEADERS
    0,                                                                     // PRIORITY
    0,                                                                     // RST_STREAM
    flag::ack,                                                             // SETTINGS
    flag::end_headers | flag::padded,                                      // PUSH_PROMISE
    flag::ack,                                                             // PING
    0,                                                                     // GOAWAY
    0,                                                                     // WINDOW_UPDATE
    flag::end_headers,                                                     // CONTINUATION
};

// Connection-level frames travel on stream 0, the others never do.
bool on_stream_zero(FrameType type) {
  return type == FrameType::settings || type == FrameType::ping || type == FrameType::goaway;
}

bool length_fits_type(const FrameHeader& h) {
  switch (static_cast<FrameType>(h.type)) {
    case FrameType::priority:
      return h.length == 5;
    case FrameType::rst_stream:
    case FrameType::window_update:
      return h.length == 4;
    case FrameType::ping:
      return h.length == 8;
    case FrameType::goaway:
      return h.length >= 8;
    case FrameType::settings:
      return h.length % 6 == 0 && (!h.has(flag::ack) || h.length == 0);
    default:
      return h.length >= frame_fixed_prefix(h) + (frame_is_padded(h) ? 1 : 0);
  }
}

}  // namespace

FrameHeader parse_frame_header(std::span<const std::byte, kFrameHeaderSize> bytes) {
  FrameHeader header;
  header.length = read_be(bytes.first(3));
  header.type = std::to_integer<uint8_t>(bytes[3]);
  header.flags = std::to_integer<uint8_t>(bytes[4]);
  header.stream_id = read_be(bytes.subspan(5, 4)) & 0x7fffffffu;
  return header;
}

size_t frame_fixed_prefix(const FrameHeader& header) {
  if (header.is(FrameType::headers) && header.has(flag::priority)) return 5;
  if (header.is(FrameType::push_promise)) return 4;
  return 0;
}

bool frame_is_padded(const FrameHeader& header) {
  bool may_pad =
      header.is(FrameType::data) || header.is(FrameType::headers) || header.is(FrameType::push_promise);
  return may_pad && header.has(flag::padded);
}

bool is_plausible_frame_header(const FrameHeader& header) {
  if (header.type > static_cast<uint8_t>(FrameType::continuation)) return false;
  if ((header.flags & ~kAllowedFlags[header.type]) != 0) return false;
  if (header.length > kDefaultMaxFrameSize) return false;
  auto type = static_cast<FrameType>(header.type);
  // WINDOW_UPDATE is the one frame valid on both stream 0 and a stream.
  if (type != FrameType::window_update && on_stream_zero(type) != (header.stream_id == 0)) return false;
  return length_fits_type(header);
}

bool starts_with_http2_preface(std::string_view start) {
  return start.starts_with(kClientPreface);
}

bool looks_like_http2_frames(std::string_view start) {
  auto bytes = std::as_bytes(std::span(start.data(), start.size()));
  if (bytes.size() < kFrameHeaderSize) return false;
  size_t offset = 0;
  while (offset + kFrameHeaderSize <= bytes.size()) {
    auto header = parse_frame_header(bytes.subspan(offset).first<kFrameHeaderSize>());
    if (!is_plausible_frame_header(header)) return false;
    offset += kFrameHeaderSize + header.length;
  }
  return true;
}

}  // namespace tlstap::proto::http2
