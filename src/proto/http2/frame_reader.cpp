#include "proto/http2/frame_reader.h"

#include <algorithm>
#include <optional>

namespace tlstap::proto::http2 {

namespace {
size_t prefix_length(const FrameHeader& header) {
  return (frame_is_padded(header) ? 1 : 0) + frame_fixed_prefix(header);
}
}  // namespace

uint32_t FrameStart::content_length() const {
  return header.length - static_cast<uint32_t>(prefix_length(header)) - pad_length;
}

uint32_t FrameStart::promised_stream_id() const {
  uint32_t id = 0;
  for (size_t i = 0; i < 4; ++i) id = (id << 8) | std::to_integer<uint32_t>(prefix[i]);
  return id & 0x7fffffffu;
}

bool FrameReader::collect(std::span<const std::byte>& bytes, size_t want) {
  size_t take = std::min(want - have_, bytes.size());
  std::copy_n(bytes.begin(), take, buffer_.begin() + have_);
  have_ += take;
  bytes = bytes.subspan(take);
  return have_ == want;
}

std::optional<FrameEvent> FrameReader::start_payload() {
  frame_.header = parse_frame_header(buffer_);
  have_ = 0;
  if (prefix_length(frame_.header) > frame_.header.length) return FrameEvent{FrameEvent::Kind::malformed};
  if (prefix_length(frame_.header) > 0) {
    state_ = State::prefix;
    return std::nullopt;
  }
  state_ = State::content;
  left_ = frame_.header.length;
  return FrameEvent{FrameEvent::Kind::begin};
}

std::optional<FrameEvent> FrameReader::finish_prefix() {
  size_t at = 0;
  if (frame_is_padded(frame_.header)) frame_.pad_length = std::to_integer<uint8_t>(buffer_[at++]);
  std::copy_n(buffer_.begin() + at, frame_fixed_prefix(frame_.header), frame_.prefix.begin());
  have_ = 0;
  if (prefix_length(frame_.header) + frame_.pad_length > frame_.header.length) {
    return FrameEvent{FrameEvent::Kind::malformed};
  }
  state_ = State::content;
  left_ = frame_.content_length();
  return FrameEvent{FrameEvent::Kind::begin};
}

std::optional<FrameEvent> FrameReader::next(std::span<const std::byte>& bytes, uint64_t time_ns) {
  for (;;) {
    switch (state_) {
      case State::header:
        if (bytes.empty()) return std::nullopt;
        if (have_ == 0) frame_ = FrameStart{.time_ns = time_ns};
        if (!collect(bytes, kFrameHeaderSize)) return std::nullopt;
        if (auto event = start_payload()) return event;
        break;
      case State::prefix:
        if (!collect(bytes, prefix_length(frame_.header))) return std::nullopt;
        return finish_prefix();
      case State::content:
        if (left_ == 0) {
          state_ = State::padding;
          left_ = frame_.pad_length;
          break;
        }
        if (bytes.empty()) return std::nullopt;
        {
          size_t take = std::min<size_t>(left_, bytes.size());
          FrameEvent event{FrameEvent::Kind::content, bytes.first(take)};
          bytes = bytes.subspan(take);
          left_ -= static_cast<uint32_t>(take);
          return event;
        }
      case State::padding: {
        size_t skip = std::min<size_t>(left_, bytes.size());
        bytes = bytes.subspan(skip);
        left_ -= static_cast<uint32_t>(skip);
        if (left_ > 0) return std::nullopt;
        state_ = State::header;
        return FrameEvent{FrameEvent::Kind::end};
      }
    }
  }
}

}  // namespace tlstap::proto::http2
