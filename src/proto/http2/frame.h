// HTTP/2 framing (RFC 9113 section 4 and 6): the fixed frame header, what each
// frame type carries before its content, and the plausibility checks used to
// recognise HTTP/2 and to find a frame boundary in a stream joined mid-way.
// Pure functions, no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tlstap::proto::http2 {

inline constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
inline constexpr size_t kFrameHeaderSize = 9;
inline constexpr uint32_t kDefaultMaxFrameSize = 16384;

enum class FrameType : uint8_t {
  data = 0,
  headers = 1,
  priority = 2,
  rst_stream = 3,
  settings = 4,
  push_promise = 5,
  ping = 6,
  goaway = 7,
  window_update = 8,
  continuation = 9,
};

namespace flag {
inline constexpr uint8_t end_stream = 0x1;
inline constexpr uint8_t ack = 0x1;
inline constexpr uint8_t end_headers = 0x4;
inline constexpr uint8_t padded = 0x8;
inline constexpr uint8_t priority = 0x20;
}  // namespace flag

struct FrameHeader {
  uint32_t length = 0;  // payload bytes after the 9-byte header
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;  // reserved bit cleared

  bool is(FrameType t) const { return type == static_cast<uint8_t>(t); }
  bool has(uint8_t f) const { return (flags & f) != 0; }
};

FrameHeader parse_frame_header(std::span<const std::byte, kFrameHeaderSize> bytes);

// Bytes a frame carries before its content, beyond the pad-length byte:
// HEADERS' priority fields (5) and PUSH_PROMISE's promised stream id (4).
size_t frame_fixed_prefix(const FrameHeader& header);
// The pad-length byte, when the type allows padding and PADDED is set.
bool frame_is_padded(const FrameHeader& header);

// A header a real peer could have sent: a known type, only that type's flags,
// the stream id and length rules of RFC 9113 section 6, and a length within
// the default maximum frame size. Strict on purpose: it decides where frames
// start in bytes of unknown position.
bool is_plausible_frame_header(const FrameHeader& header);

bool starts_with_http2_preface(std::string_view start);
// The first bytes are one or more plausible frame headers (as many as `start`
// holds whole), e.g. a server's SETTINGS.
bool looks_like_http2_frames(std::string_view start);

}  // namespace tlstap::proto::http2

namespace tlstap::proto {
using http2::looks_like_http2_frames;
using http2::starts_with_http2_preface;
}  // namespace tlstap::proto
