#include "proto/websocket/websocket_parser.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "common/ascii.h"
#include "common/utf8.h"

namespace tlstap::proto {
namespace {

constexpr uint8_t kFin = 0x80, kRsv1 = 0x40, kRsv23 = 0x30, kOpcodeBits = 0x0f;
constexpr uint8_t kMaskBit = 0x80, kLengthBits = 0x7f;
constexpr size_t kMaxHeaderLength = 14;
constexpr size_t kMaxControlPayload = 125;

bool is_control(WebSocketOpcode opcode) {
  return static_cast<uint8_t>(opcode) >= 0x8;
}

bool is_known(uint8_t opcode) {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xa);
}

uint8_t byte_at(std::span<const std::byte> bytes, size_t i) {
  return static_cast<uint8_t>(bytes[i]);
}

}  // namespace

std::string_view to_string(WebSocketOpcode opcode) {
  switch (opcode) {
    case WebSocketOpcode::continuation:
      return "continuation";
    case WebSocketOpcode::text:
      return "text";
    case WebSocketOpcode::binary:
      return "binary";
    case WebSocketOpcode::close:
      return "close";
    case WebSocketOpcode::ping:
      return "ping";
    case WebSocketOpcode::pong:
      return "pong";
  }
  return "?";
}

ParsedFrameHeader parse_websocket_frame_header(std::span<const std::byte> bytes) {
  ParsedFrameHeader parsed;
  if (bytes.size() < 2) return parsed;
  uint8_t first = byte_at(bytes, 0), second = byte_at(bytes, 1);
  WebSocketFrameHeader& h = parsed.header;
  h.fin = first & kFin;
  h.rsv1 = first & kRsv1;
  h.opcode = static_cast<WebSocketOpcode>(first & kOpcodeBits);
  h.masked = second & kMaskBit;
  uint8_t length7 = second & kLengthBits;
  size_t length_bytes = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
  h.header_length = 2 + length_bytes + (h.masked ? 4 : 0);
  bool control = is_control(h.opcode);
  if ((first & kRsv23) || !is_known(first & kOpcodeBits) || (control && (!h.fin || length7 > 125))) {
    parsed.state = ParseState::invalid;
    return parsed;
  }
  if (bytes.size() < h.header_length) return parsed;
  h.payload_length = length7;
  if (length_bytes) {
    h.payload_length = 0;
    for (size_t i = 0; i < length_bytes; ++i)
      h.payload_length = h.payload_length << 8 | byte_at(bytes, 2 + i);
    if (h.payload_length >> 63) {
      parsed.state = ParseState::invalid;
      return parsed;
    }
  }
  if (h.masked)
    for (size_t i = 0; i < 4; ++i) h.mask[i] = byte_at(bytes, 2 + length_bytes + i);
  parsed.state = ParseState::done;
  return parsed;
}

std::optional<WebSocketExtensions> parse_websocket_extensions(std::string_view header) {
  WebSocketExtensions extensions;
  // extension *( ";" parameter ), extensions separated by commas; the server
  // accepts at most one permessage-deflate offer.
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view extension = header.substr(0, comma);
    header.remove_prefix(comma == std::string_view::npos ? header.size() : comma + 1);
    size_t semicolon = extension.find(';');
    std::string_view name = trim_ows(extension.substr(0, semicolon));
    if (name.empty() && trim_ows(extension).empty())
      continue;  // an empty list element (RFC 9110 section 5.6.1)
    if (name.empty()) return std::nullopt;
    if (!ascii_iequals(name, "permessage-deflate")) continue;
    extensions.permessage_deflate = true;
    while (semicolon != std::string_view::npos) {
      extension.remove_prefix(semicolon + 1);
      semicolon = extension.find(';');
      std::string_view parameter = trim_ows(extension.substr(0, semicolon));
      std::string_view key = trim_ows(parameter.substr(0, parameter.find('=')));
      if (ascii_iequals(key, "client_no_context_takeover")) extensions.client_no_context_takeover = true;
      if (ascii_iequals(key, "server_no_context_takeover")) extensions.server_no_context_takeover = true;
      // *_max_window_bits: a raw inflater with the largest window reads any smaller one.
    }
  }
  return extensions;
}

// A raw-deflate inflater for one direction's messages (RFC 7692 section 7.2.2).
struct WebSocketParser::Inflater {
  z_stream stream{};
  bool ready = false;
  bool broken = false;         // a message could not be inflated: with context takeover, neither can the next
  bool at_stream_end = false;  // the input so far ended with a final block: no empty block to append
  uint64_t produced = 0;

  Inflater() { ready = inflateInit2(&stream, -MAX_WBITS) == Z_OK; }
  ~Inflater() {
    if (ready) inflateEnd(&stream);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Inflates `input`, handing what comes out to `take`; false when the stream
  // is corrupt or the message would pass the limit.
  template <class Take>
  bool inflate_some(std::span<const std::byte> input, Take take) {
    if (!ready || broken) return false;
    if (!input.empty()) at_stream_end = false;
    std::array<unsigned char, 16 * 1024> out;
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(input.data()));
    stream.avail_in = static_cast<uInt>(input.size());
    do {
      stream.next_out = out.data();
      stream.avail_out = out.size();
      int rc = inflate(&stream, Z_SYNC_FLUSH);
      size_t n = out.size() - stream.avail_out;
      produced += n;
      if (produced > kMaxInflatedBytes) return fail();
      take(std::span(reinterpret_cast<const std::byte*>(out.data()), n));
      if (rc == Z_STREAM_END) {
        restart_keeping_window();
        at_stream_end = stream.avail_in == 0;
        continue;
      }
      if (rc == Z_BUF_ERROR) break;  // all input taken, nothing pending
      if (rc != Z_OK) return fail();
    } while (stream.avail_in > 0 || stream.avail_out == 0);
    return true;
  }

  // A final block (BFINAL) ends zlib's stream but not the context: the next
  // message may still refer back to this one's bytes (RFC 7692 section 7.2.3.4).
  void restart_keeping_window() {
    std::array<Bytef, 1 << MAX_WBITS> window;
    uInt size = window.size();
    inflateGetDictionary(&stream, window.data(), &size);
    inflateReset(&stream);
    inflateSetDictionary(&stream, window.data(), size);
  }

  void end_message(bool reset_context) {
    produced = 0;
    at_stream_end = false;
    if (reset_context && ready) {
      inflateReset(&stream);
      broken = false;
    }
  }

  bool fail() {
    broken = true;
    return false;
  }
};

WebSocketParser::WebSocketParser(bool from_client, const WebSocketExtensions& extensions,
                                 size_t max_payload_bytes)
    : from_client_(from_client), extensions_(extensions), max_payload_bytes_(max_payload_bytes) {
  if (extensions_.permessage_deflate) inflater_ = std::make_unique<Inflater>();
}

WebSocketParser::~WebSocketParser() = default;
WebSocketParser::WebSocketParser(WebSocketParser&&) noexcept = default;
WebSocketParser& WebSocketParser::operator=(WebSocketParser&&) noexcept = default;

ParseState WebSocketParser::feed(std::span<const std::byte> bytes, uint64_t time_ns,
                                 std::vector<WebSocketMessage>& out) {
  while (!invalid_ && !bytes.empty()) {
    if (!frame_) {
      size_t before = header_bytes_.size();
      if (before == 0) frame_start_ns_ = time_ns;
      size_t n = std::min(bytes.size(), kMaxHeaderLength - before);
      header_bytes_.insert(header_bytes_.end(), bytes.begin(), bytes.begin() + n);
      ParsedFrameHeader parsed = parse_websocket_frame_header(header_bytes_);
      if (parsed.state == ParseState::invalid) return fail(), ParseState::invalid;
      if (parsed.state == ParseState::need_more_data) {
        bytes = bytes.subspan(n);
        continue;
      }
      bytes = bytes.subspan(parsed.header.header_length - before);
      header_bytes_.clear();
      frame_ = parsed.header;
      begin_frame(frame_start_ns_, time_ns);
      if (invalid_) break;
    }
    take_payload(bytes, time_ns);
    if (frame_received_ == frame_->payload_length) end_frame(out);
  }
  if (invalid_) return ParseState::invalid;
  return frame_ || !header_bytes_.empty() ? ParseState::need_more_data : ParseState::done;
}

void WebSocketParser::begin_frame(uint64_t first_byte_ns, uint64_t time_ns) {
  const WebSocketFrameHeader& h = *frame_;
  frame_received_ = 0;
  bool control = is_control(h.opcode);
  bool continuation = h.opcode == WebSocketOpcode::continuation;
  if ((continuation && !data_.active) || (!control && !continuation && data_.active) ||
      (h.rsv1 && (!extensions_.permessage_deflate || control || continuation)))
    return fail();
  Pending& pending = control ? control_ : data_;
  if (!continuation) {
    pending = Pending{};
    pending.active = true;
    pending.message.opcode = h.opcode;
    pending.message.masked = h.masked;
    pending.message.compressed = h.rsv1;
    pending.message.first_byte_ns = first_byte_ns;
  }
  ++pending.message.frames;
  pending.message.last_byte_ns = time_ns;
}

void WebSocketParser::take_payload(std::span<const std::byte>& in, uint64_t time_ns) {
  const WebSocketFrameHeader& h = *frame_;
  size_t n = static_cast<size_t>(std::min<uint64_t>(in.size(), h.payload_length - frame_received_));
  if (n == 0) return;
  Pending& pending = is_control(h.opcode) ? control_ : data_;
  pending.message.last_byte_ns = time_ns;
  if (!h.masked) {
    add_payload(pending, in.first(n));
  } else {
    std::vector<std::byte> clear(in.begin(), in.begin() + n);
    for (size_t i = 0; i < n; ++i) clear[i] ^= std::byte{h.mask[(frame_received_ + i) % 4]};
    add_payload(pending, clear);
  }
  frame_received_ += n;
  in = in.subspan(n);
}

void WebSocketParser::add_payload(Pending& pending, std::span<const std::byte> bytes) {
  WebSocketMessage& m = pending.message;
  if (!m.compressed) return keep(m, bytes);
  if (m.inflate_failed) return;
  if (!inflater_->inflate_some(bytes, [&](std::span<const std::byte> inflated) { keep(m, inflated); }))
    m.inflate_failed = true;
}

void WebSocketParser::keep(WebSocketMessage& m, std::span<const std::byte> bytes) {
  m.length += bytes.size();
  // Control payloads (at most 125 bytes) are kept whole until the message
  // ends: a close frame's code comes first.
  size_t limit = is_control(m.opcode) ? kMaxControlPayload : max_payload_bytes_;
  size_t room = limit > m.payload.size() ? limit - m.payload.size() : 0;
  m.payload.append(reinterpret_cast<const char*>(bytes.data()), std::min(room, bytes.size()));
}

void WebSocketParser::end_frame(std::vector<WebSocketMessage>& out) {
  bool control = is_control(frame_->opcode);
  bool fin = frame_->fin;
  frame_.reset();
  if (fin) finish_message(control ? control_ : data_, out);
}

void WebSocketParser::finish_message(Pending& pending, std::vector<WebSocketMessage>& out) {
  WebSocketMessage& m = pending.message;
  if (m.compressed) {
    // The sender removed each message's final empty block (RFC 7692 section
    // 7.2.1), unless the message ended with a final block.
    static constexpr std::byte kTail[] = {std::byte{0x00}, std::byte{0x00}, std::byte{0xff}, std::byte{0xff}};
    if (!inflater_->at_stream_end) add_payload(pending, kTail);
    bool reset =
        from_client_ ? extensions_.client_no_context_takeover : extensions_.server_no_context_takeover;
    inflater_->end_message(reset);
    if (m.inflate_failed) {
      m.payload.clear();
      m.length = 0;
    }
  }
  if (m.opcode == WebSocketOpcode::close && m.payload.size() >= 2) {
    m.close_code =
        static_cast<uint16_t>(static_cast<uint8_t>(m.payload[0]) << 8 | static_cast<uint8_t>(m.payload[1]));
    m.payload.erase(0, 2);
    m.length -= 2;
  }
  if (m.payload.size() > max_payload_bytes_) m.payload.resize(max_payload_bytes_);
  // A text cut by the limit ends on a whole character, so it stays text.
  if (m.opcode == WebSocketOpcode::text && m.payload.size() < m.length)
    m.payload.resize(without_cut_sequence(m.payload).size());
  out.push_back(std::move(m));
  pending = Pending{};
}

void WebSocketParser::lost(uint64_t bytes) {
  if (bytes) fail();
}

void WebSocketParser::fail() {
  invalid_ = true;
  frame_.reset();
  header_bytes_.clear();
  data_ = Pending{};
  control_ = Pending{};
}

}  // namespace tlstap::proto
