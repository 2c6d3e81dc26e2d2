// libFuzzer target: whatever bytes either side of a connection sends, in
// whatever pieces, with or without the preface and with losses, the HTTP/2
// session never crashes, hangs or reads out of bounds, and after finish()
// nothing stays open.
//
// Input: one mode byte, then records [direction byte][length, 2 bytes big-endian][bytes].
// Mode bit 0: drop the client preface (a connection joined mid-way); bits 1-7:
// records are fed in pieces of (mode >> 1) + 1 bytes, whole when that is 128.
// Direction byte bit 0: from the client; bit 1: lost() before the record.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "proto/http2/frame.h"
#include "proto/http2/http2_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  auto mode = std::to_integer<uint8_t>(input[0]);
  input = input.subspan(1);
  bool drop_preface = mode & 1;
  size_t piece = (mode >> 1) + 1;
  if (piece == 128) piece = SIZE_MAX;

  tlstap::proto::Http2Session session(256);
  std::vector<tlstap::proto::Http2Stream> out;
  bool client_started = false;
  uint64_t time = 1;
  while (input.size() >= 3) {
    auto direction = std::to_integer<uint8_t>(input[0]);
    size_t length = std::to_integer<size_t>(input[1]) << 8 | std::to_integer<size_t>(input[2]);
    auto record = input.subspan(3, std::min(length, input.size() - 3));
    input = input.subspan(3 + record.size());
    bool from_client = direction & 1;
    if (direction & 2) session.lost(from_client, record.size() + 1, out);
    if (from_client && !client_started && drop_preface) {
      std::string_view text(reinterpret_cast<const char*>(record.data()), record.size());
      if (tlstap::proto::starts_with_http2_preface(text))
        record = record.subspan(tlstap::proto::http2::kClientPreface.size());
    }
    client_started |= from_client;
    (void)tlstap::proto::looks_like_http2_frames(
        std::string_view(reinterpret_cast<const char*>(record.data()), record.size()));
    for (size_t at = 0; at < record.size(); at += piece) {
      session.feed(from_client, record.subspan(at, std::min(piece, record.size() - at)), time++, out);
    }
  }
  session.finish(time, out);
  std::vector<tlstap::proto::Http2Stream> after;
  session.finish(time + 1, after);
  if (!after.empty()) __builtin_trap();
  return 0;
}
