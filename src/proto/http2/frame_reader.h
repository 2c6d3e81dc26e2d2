// Splits one direction of an HTTP/2 connection into frames, incrementally and
// without buffering payloads: each frame is reported as a begin event (header,
// padding and the fields before the content), its content in pieces as the
// bytes arrive, and an end event. Padding is skipped. Memory is constant
// whatever the frame size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "proto/http2/frame.h"

namespace tlstap::proto::http2 {

struct FrameStart {
  FrameHeader header;
  uint8_t pad_length = 0;
  std::array<std::byte, 5> prefix{};  // HEADERS' priority fields or PUSH_PROMISE's promised id
  uint64_t time_ns = 0;               // of the chunk holding the frame's first byte
  uint32_t content_length() const;    // payload minus padding and prefix
  uint32_t promised_stream_id() const;
};

struct FrameEvent {
  enum class Kind { begin, content, end, malformed } kind;
  std::span<const std::byte> content;  // Kind::content only
};

class FrameReader {
 public:
  // The next event from `bytes`, consuming what it used from the front of
  // `bytes`; none when `bytes` is used up before the next event. After
  // malformed (padding longer than the frame) the reader must be reset.
  std::optional<FrameEvent> next(std::span<const std::byte>& bytes, uint64_t time_ns);
  const FrameStart& frame() const { return frame_; }
  bool at_frame_boundary() const { return state_ == State::header && have_ == 0; }
  void reset() { *this = FrameReader(); }

 private:
  enum class State { header, prefix, content, padding };
  bool collect(std::span<const std::byte>& bytes, size_t want);
  std::optional<FrameEvent> start_payload();
  std::optional<FrameEvent> finish_prefix();

  State state_ = State::header;
  std::array<std::byte, kFrameHeaderSize> buffer_{};
  size_t have_ = 0;
  FrameStart frame_;
  uint32_t left_ = 0;  // bytes left in the current state
};

}  // namespace tlstap::proto::http2
