// WebSocket (RFC 6455) over one direction of one connection, after an HTTP/1.1
// upgrade: pure functions for a frame header and the negotiated extensions,
// and a parser that turns the frames of a stream delivered in chunks into
// messages, unmasked, defragmented and, with permessage-deflate (RFC 7692),
// inflated. Payloads are counted whole and kept only up to a limit.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http_message.h"

namespace tlstap::proto {

enum class WebSocketOpcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xa,
};
std::string_view to_string(WebSocketOpcode opcode);

struct WebSocketFrameHeader {
  bool fin = false;
  bool rsv1 = false;  // permessage-deflate: the message is compressed (first frame only)
  WebSocketOpcode opcode = WebSocketOpcode::continuation;
  bool masked = false;
  std::array<uint8_t, 4> mask{};
  uint64_t payload_length = 0;
  size_t header_length = 0;  // 2 to 14 bytes
};

// need_more_data until `bytes` holds the whole header; invalid for reserved
// opcodes, RSV2/RSV3, a fragmented or long (> 125 bytes) control frame, or a
// 64-bit length with its top bit set. RSV1 is left to the caller, which knows
// the extensions.
struct ParsedFrameHeader {
  ParseState state = ParseState::need_more_data;
  WebSocketFrameHeader header;
};
ParsedFrameHeader parse_websocket_frame_header(std::span<const std::byte> bytes);

// What the server's Sec-WebSocket-Extensions accepted (RFC 7692 section 7).
struct WebSocketExtensions {
  bool permessage_deflate = false;
  bool client_no_context_takeover = false;
  bool server_no_context_takeover = false;
};
// nullopt when the header is malformed (then the compressed frames cannot be read).
std::optional<WebSocketExtensions> parse_websocket_extensions(std::string_view header);

struct WebSocketMessage {
  WebSocketOpcode opcode = WebSocketOpcode::text;  // of the first frame: never continuation
  uint64_t length = 0;                             // payload bytes (inflated), whole
  std::string payload;                             // the first bytes, up to the parser's limit
  uint32_t frames = 0;
  bool masked = false;
  bool compressed = false;
  bool inflate_failed = false;  // compressed, and what was kept could not be inflated: payload is empty
  std::optional<uint16_t> close_code;  // close frames with a body; the payload is then the reason
  uint64_t first_byte_ns = 0;
  uint64_t last_byte_ns = 0;
};

// One direction: the client's frames (masked) or the server's.
//
// Decisions: a frame that breaks the protocol (see parse_websocket_frame_header;
// also a continuation with no message begun, a new data frame inside a
// fragmented one, RSV1 without permessage-deflate) makes the stream invalid,
// and so does a capture gap: frames carry no marker to find the next one by.
// A compressed message whose inflation fails (or would pass kMaxInflatedBytes)
// is reported with inflate_failed; with context takeover the messages after it
// in that direction cannot be inflated either, and are reported so too.
class WebSocketParser {
 public:
  // Inflating stops here: a small message must not make the agent write a gigabyte.
  static constexpr uint64_t kMaxInflatedBytes = 64 << 20;

  WebSocketParser(bool from_client, const WebSocketExtensions& extensions, size_t max_payload_bytes);
  ~WebSocketParser();
  WebSocketParser(WebSocketParser&&) noexcept;
  WebSocketParser& operator=(WebSocketParser&&) noexcept;

  // The next bytes of the stream, in order, that arrived at time_ns. Complete
  // messages (control frames included) are appended to `out` in the order they
  // end. Returns invalid once the stream cannot be followed, done between
  // frames, need_more_data inside one.
  ParseState feed(std::span<const std::byte> bytes, uint64_t time_ns, std::vector<WebSocketMessage>& out);
  void lost(uint64_t bytes);

 private:
  struct Inflater;
  struct Pending {  // a message being received
    WebSocketMessage message;
    bool active = false;
  };

  void begin_frame(uint64_t first_byte_ns, uint64_t time_ns);
  void take_payload(std::span<const std::byte>& in, uint64_t time_ns);
  void end_frame(std::vector<WebSocketMessage>& out);
  void add_payload(Pending& pending, std::span<const std::byte> bytes);
  void keep(WebSocketMessage& message, std::span<const std::byte> bytes);
  void finish_message(Pending& pending, std::vector<WebSocketMessage>& out);
  void fail();

  bool from_client_;
  WebSocketExtensions extensions_;
  size_t max_payload_bytes_;
  bool invalid_ = false;
  std::vector<std::byte> header_bytes_;  // of the frame header being received
  uint64_t frame_start_ns_ = 0;          // when its first byte arrived
  std::optional<WebSocketFrameHeader> frame_;
  uint64_t frame_received_ = 0;  // payload bytes of the current frame so far
  Pending data_;                 // a text or binary message, maybe fragmented
  Pending control_;              // a control frame, which may come between fragments
  std::unique_ptr<Inflater> inflater_;
};

}  // namespace tlstap::proto
