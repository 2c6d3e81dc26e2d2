// One HTTP/2 connection seen from the outside, both directions: frames,
// header blocks (HPACK, by libnghttp2's inflater) and, for gRPC, the messages
// in each stream's DATA. Streams are reported once they have ended.
//
// Pure: bytes and times in, streams out. Memory is bounded: bodies and gRPC
// messages are kept up to `max_body_bytes`, frames are streamed (a 16 MiB
// DATA frame is never stored), at most kMaxOpenStreams streams are tracked
// (the oldest is evicted and counted) and control frames keep their first
// kMaxControlBytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proto/grpc/grpc_messages.h"
#include "proto/http2/frame.h"
#include "proto/http2/frame_reader.h"
#include "proto/http2/hpack_decoder.h"
#include "proto/http2/recent_ids.h"
#include "proto/http_message.h"

namespace tlstap::proto {

struct Http2Stream {  // one HTTP/2 stream = one exchange, reported once it ended
  uint32_t id = 0;
  HttpMessage
      request;  // version "2"; method/target/authority from pseudo-headers; headers incl. pseudo-headers
  HttpMessage response;                // status from :status; trailers = the trailing HEADERS block
  std::optional<uint32_t> reset_code;  // RST_STREAM error code, from either side
  bool incomplete = false;             // the connection ended (finish) before the stream did
  bool pushed = false;                 // promised by the server (PUSH_PROMISE): the request is the promise
  // Filled when the content-type is application/grpc*; messages beyond
  // Http2Session::kMaxGrpcMessages per direction are only counted.
  std::vector<GrpcMessage> request_messages, response_messages;
  uint64_t request_messages_dropped = 0, response_messages_dropped = 0;
};

// feed() returns:
//   done            this direction is at a frame boundary;
//   need_more_data  a frame (or the first frame header while synchronising) is incomplete;
//   invalid         bytes of this chunk were discarded: they did not start with a plausible
//                   frame header while synchronising, or a frame was malformed. The session
//                   carries on and synchronises again on a later chunk.
class Http2Session {  // one connection, both directions
 public:
  static constexpr size_t kMaxOpenStreams = 1000;
  static constexpr size_t kMaxGrpcMessages = 1000;
  static constexpr size_t kMaxControlBytes = 1024;

  explicit Http2Session(size_t max_body_bytes);

  // The next bytes one side sent, in order (one call per captured chunk),
  // arriving at time_ns. The client side starts with the connection preface.
  // A side whose first bytes are not the preface (client) or a SETTINGS frame
  // (server) was joined mid-connection: it synchronises on the first chunk
  // that starts with a plausible frame header, and header blocks referring to
  // HPACK entries inserted before that leave headers_unknown=true on their
  // message (the fields that could be decoded are kept) instead of garbage.
  // Streams that ended (END_STREAM both ways, or RST_STREAM) are appended to `out`.
  ParseState feed(bool from_client, std::span<const std::byte> bytes, uint64_t time_ns,
                  std::vector<Http2Stream>& out);
  // Bytes lost in one direction before its next feed(): frame boundaries and
  // the HPACK state of that direction are no longer trusted. Requests the
  // client's side was awaiting may have been lost: their streams stop waiting
  // and those the server ended are appended to `out`.
  void lost(bool from_client, uint64_t bytes, std::vector<Http2Stream>& out);
  // The connection closed: every open stream is appended with incomplete=true, by id.
  void finish(uint64_t time_ns, std::vector<Http2Stream>& out);

  uint64_t evicted_streams() const { return evicted_streams_; }
  uint64_t pings() const { return pings_; }
  // The last GOAWAY's error code, from either side.
  std::optional<uint32_t> goaway_error() const { return goaway_error_; }

 private:
  struct Side {  // one direction of one stream
    bool ended = false;
    bool headers_seen = false;
    bool grpc_decided = false;
    std::optional<GrpcMessageReader> grpc;
  };
  struct OpenStream {
    Http2Stream stream;
    uint64_t seq = 0;  // opening order, for eviction
    // Opened by the server's frames while the client's side is followed from the
    // connection start: its request is on its way (captures from two threads can
    // arrive answer first), so the stream waits for it.
    bool awaiting_request = false;
    std::array<Side, 2> sides{};  // client (request), server (response)
  };
  enum class FrameRole { ignore, header_block, data, control };
  struct Direction;

  Direction& direction(bool from_client) { return from_client ? client_ : server_; }
  std::span<const std::byte> synchronise(Direction& dir, std::span<const std::byte> bytes, bool& dropped);
  void become_synced(Direction& dir, bool at_connection_start);
  void unsync(Direction& dir, std::vector<Http2Stream>& out);
  void abandon_block(Direction& dir);
  void parse_frames(Direction& dir, std::span<const std::byte> bytes, uint64_t time_ns,
                    std::vector<Http2Stream>& out, bool& dropped);

  void frame_begin(Direction& dir, std::vector<Http2Stream>& out);
  void frame_content(Direction& dir, std::span<const std::byte> content, uint64_t time_ns);
  void frame_end(Direction& dir, uint64_t time_ns, std::vector<Http2Stream>& out);
  void begin_header_block(Direction& dir, uint32_t stream_id, uint32_t promised_id,
                          std::vector<Http2Stream>& out);
  void end_header_block(Direction& dir, uint64_t time_ns, std::vector<Http2Stream>& out);
  void start_data(Direction& dir);
  void control_frame(Direction& dir, std::vector<Http2Stream>& out);
  void end_side(OpenStream& stream, bool from_client, uint64_t time_ns, std::vector<Http2Stream>& out);

  OpenStream* find_stream(uint32_t id);
  OpenStream* open_stream(uint32_t id, bool from_client);
  void close_stream(uint32_t id, std::vector<Http2Stream>& out);
  void stop_awaiting_requests(uint32_t below_id, std::vector<Http2Stream>& out);
  void evict_oldest();

  size_t max_body_bytes_;
  std::map<uint32_t, OpenStream> streams_;
  http2::RecentIds closed_{4 * kMaxOpenStreams};
  uint64_t next_seq_ = 0;
  uint64_t evicted_streams_ = 0;
  uint64_t pings_ = 0;
  std::optional<uint32_t> goaway_error_;

  struct Direction {
    bool from_client = false;
    bool synced = false;
    bool joined_late = false;  // bytes of this side were dropped or lost: not at the connection start
    std::string candidate;     // first bytes of a chunk while synchronising
    http2::FrameReader reader;
    http2::HpackDecoder hpack;
    FrameRole role = FrameRole::ignore;  // of the current frame
    std::string control;                 // the first kMaxControlBytes of a control frame
    // The header block in progress (HEADERS or PUSH_PROMISE, then CONTINUATION).
    bool in_block = false;
    bool block_end_stream = false;
    uint32_t block_stream = 0;
    uint32_t block_promised = 0;  // PUSH_PROMISE: the stream the block is the request of
    uint64_t block_start_ns = 0;
    uint32_t highest_stream = 0;  // client: the highest stream id it opened
  };
  Direction client_{.from_client = true};
  Direction server_{.from_client = false};
};

}  // namespace tlstap::proto
