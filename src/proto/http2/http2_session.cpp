#include "proto/http2/http2_session.h"

#include <algorithm>
#include <charconv>

#include "common/bytes.h"

namespace tlstap::proto {

using http2::FrameEvent;
using http2::FrameType;
using http2::HpackDecoder;
using http2::kClientPreface;
using http2::kFrameHeaderSize;
namespace flag = http2::flag;

namespace {

constexpr size_t kClient = 0, kServer = 1;
constexpr uint16_t kSettingsHeaderTableSize = 0x1;

size_t side_index(bool from_client) {
  return from_client ? kClient : kServer;
}

uint32_t read_be32(std::string_view bytes) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

void set_pseudo_headers(HttpMessage& message) {
  for (const auto& [name, value] : message.headers) {
    if (name == ":method")
      message.method = value;
    else if (name == ":path")
      message.target = value;
    else if (name == ":authority")
      message.authority = value;
    else if (name == ":status")
      std::from_chars(value.data(), value.data() + value.size(), message.status);
  }
}

// The first block of a side is its headers, a later one its trailers; a 1xx
// response's headers are interim and replaced by the final ones.
void apply_block(HttpMessage& message, bool& headers_seen, http2::DecodedBlock block) {
  bool interim = message.status >= 100 && message.status < 200;
  if (!headers_seen || interim) {
    message.status = 0;
    message.headers = std::move(block.fields);
    set_pseudo_headers(message);
  } else {
    message.trailers = std::move(block.fields);
  }
  headers_seen = true;
  message.headers_unknown |= block.unknown;
}

void touch(HttpMessage& message, uint64_t first_ns, uint64_t last_ns) {
  if (message.first_byte_ns == 0) message.first_byte_ns = first_ns;
  message.last_byte_ns = std::max(message.last_byte_ns, last_ns);
}

}  // namespace

Http2Session::Http2Session(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {}

ParseState Http2Session::feed(bool from_client, std::span<const std::byte> bytes, uint64_t time_ns,
                              std::vector<Http2Stream>& out) {
  Direction& dir = direction(from_client);
  bool dropped = false;
  if (!dir.synced) {
    bytes = synchronise(dir, bytes, dropped);
    if (dir.synced && !dir.candidate.empty()) {
      std::string first = std::move(dir.candidate);
      dir.candidate.clear();
      parse_frames(dir, as_bytes(first), time_ns, out, dropped);
    }
  }
  if (dir.synced) parse_frames(dir, bytes, time_ns, out, dropped);
  if (dropped) return ParseState::invalid;
  return dir.synced && dir.reader.at_frame_boundary() ? ParseState::done : ParseState::need_more_data;
}

// Gathers the first bytes of a chunk (the preface, or a frame header) until
// they tell whether a frame starts there. Returns the bytes after them once
// synchronised; the candidate then holds the frame's first bytes.
std::span<const std::byte> Http2Session::synchronise(Direction& dir, std::span<const std::byte> bytes,
                                                     bool& dropped) {
  const auto chunk = bytes;
  bool started_earlier = !dir.candidate.empty();
  while (!bytes.empty()) {
    bool may_be_preface = dir.from_client && kClientPreface.starts_with(dir.candidate);
    size_t want = may_be_preface ? kClientPreface.size() : kFrameHeaderSize;
    size_t take = std::min(want - std::min(want, dir.candidate.size()), bytes.size());
    dir.candidate.append(reinterpret_cast<const char*>(bytes.data()), take);
    bytes = bytes.subspan(take);
    if (may_be_preface && kClientPreface.starts_with(dir.candidate)) {
      if (dir.candidate.size() < kClientPreface.size()) continue;
      dir.candidate.clear();
      become_synced(dir, true);  // the preface is only ever sent first
      return bytes;
    }
    if (dir.candidate.size() < kFrameHeaderSize) continue;
    auto header = http2::parse_frame_header(as_bytes(dir.candidate).first<kFrameHeaderSize>());
    if (http2::is_plausible_frame_header(header)) {
      // A server's first frame is its SETTINGS: then it is the connection start.
      bool start =
          !dir.from_client && !dir.joined_late && header.is(FrameType::settings) && !header.has(flag::ack);
      become_synced(dir, start);
      return bytes;
    }
    dir.candidate.clear();
    dir.joined_late = true;
    dropped = true;
    if (!started_earlier) return {};
    // The candidate began in an earlier chunk: this chunk's start may be a frame's.
    started_earlier = false;
    bytes = chunk;
  }
  return {};
}

void Http2Session::become_synced(Direction& dir, bool at_connection_start) {
  dir.synced = true;
  dir.reader.reset();
  dir.in_block = false;
  dir.hpack.reset(at_connection_start ? HpackDecoder::Origin::connection_start
                                      : HpackDecoder::Origin::mid_connection);
}

// A header block cut short: its message's headers are unknown, and so is the
// HPACK state it was changing.
void Http2Session::abandon_block(Direction& dir) {
  if (!dir.in_block) return;
  dir.in_block = false;
  dir.hpack.abandon_block();
  uint32_t id = dir.block_promised ? dir.block_promised : dir.block_stream;
  if (OpenStream* stream = find_stream(id)) {
    bool is_request = dir.block_promised != 0 || dir.from_client;
    (is_request ? stream->stream.request : stream->stream.response).headers_unknown = true;
  }
}

void Http2Session::unsync(Direction& dir, std::vector<Http2Stream>& out) {
  abandon_block(dir);
  dir.synced = false;
  dir.joined_late = true;
  dir.candidate.clear();
  if (dir.from_client) stop_awaiting_requests(UINT32_MAX, out);
}

void Http2Session::lost(bool from_client, uint64_t bytes, std::vector<Http2Stream>& out) {
  if (bytes == 0) return;
  unsync(direction(from_client), out);
}

void Http2Session::parse_frames(Direction& dir, std::span<const std::byte> bytes, uint64_t time_ns,
                                std::vector<Http2Stream>& out, bool& dropped) {
  while (auto event = dir.reader.next(bytes, time_ns)) {
    switch (event->kind) {
      case FrameEvent::Kind::begin:
        frame_begin(dir, out);
        break;
      case FrameEvent::Kind::content:
        frame_content(dir, event->content, time_ns);
        break;
      case FrameEvent::Kind::end:
        frame_end(dir, time_ns, out);
        break;
      case FrameEvent::Kind::malformed:
        unsync(dir, out);
        dropped = true;
        return;
    }
  }
}

void Http2Session::frame_begin(Direction& dir, std::vector<Http2Stream>& out) {
  const auto& frame = dir.reader.frame();
  const auto& header = frame.header;
  bool continues_block =
      header.is(FrameType::continuation) && dir.in_block && header.stream_id == dir.block_stream;
  if (!continues_block) abandon_block(dir);  // a block continues with CONTINUATION frames only
  dir.role = FrameRole::control;
  dir.control.clear();
  switch (static_cast<FrameType>(header.type)) {
    case FrameType::headers:
      begin_header_block(dir, header.stream_id, 0, out);
      break;
    case FrameType::push_promise:
      begin_header_block(dir, header.stream_id, frame.promised_stream_id(), out);
      break;
    case FrameType::continuation:
      dir.role = continues_block ? FrameRole::header_block : FrameRole::ignore;
      break;
    case FrameType::data:
      start_data(dir);
      break;
    default:
      break;
  }
}

void Http2Session::begin_header_block(Direction& dir, uint32_t stream_id, uint32_t promised_id,
                                      std::vector<Http2Stream>& out) {
  const auto& frame = dir.reader.frame();
  if (dir.from_client && stream_id > dir.highest_stream) {
    // Clients open streams in increasing order: a request still awaited below this one was lost.
    dir.highest_stream = stream_id;
    stop_awaiting_requests(stream_id, out);
  }
  if (OpenStream* stream = dir.from_client ? find_stream(stream_id) : nullptr)
    stream->awaiting_request = false;
  dir.role = FrameRole::header_block;
  dir.in_block = true;
  dir.block_stream = stream_id;
  dir.block_promised = promised_id;
  dir.block_end_stream = promised_id == 0 && frame.header.has(flag::end_stream);
  dir.block_start_ns = frame.time_ns;
  dir.hpack.begin_block();
}

void Http2Session::start_data(Direction& dir) {
  const auto& frame = dir.reader.frame();
  OpenStream* stream =
      frame.header.stream_id ? open_stream(frame.header.stream_id, dir.from_client) : nullptr;
  dir.role = stream ? FrameRole::data : FrameRole::ignore;
  if (!stream) return;
  Side& side = stream->sides[side_index(dir.from_client)];
  HttpMessage& own = dir.from_client ? stream->stream.request : stream->stream.response;
  if (!side.headers_seen) own.headers_unknown = true;  // its HEADERS came before we joined
  touch(own, frame.time_ns, frame.time_ns);
  if (side.grpc_decided) return;
  side.grpc_decided = true;
  const HttpMessage& other = dir.from_client ? stream->stream.response : stream->stream.request;
  const std::string* type = find_header(side.headers_seen ? own.headers : other.headers, "content-type");
  if (type && is_grpc_content_type(*type)) side.grpc.emplace(max_body_bytes_, kMaxGrpcMessages);
}

void Http2Session::frame_content(Direction& dir, std::span<const std::byte> content, uint64_t time_ns) {
  switch (dir.role) {
    case FrameRole::header_block:
      dir.hpack.add(content);
      break;
    case FrameRole::control: {
      size_t keep =
          std::min(content.size(), kMaxControlBytes - std::min(kMaxControlBytes, dir.control.size()));
      dir.control.append(reinterpret_cast<const char*>(content.data()), keep);
      break;
    }
    case FrameRole::data: {
      OpenStream* stream = find_stream(dir.reader.frame().header.stream_id);
      if (!stream) break;
      HttpMessage& own = dir.from_client ? stream->stream.request : stream->stream.response;
      own.body_length += content.size();
      size_t keep = std::min(content.size(), max_body_bytes_ - std::min(max_body_bytes_, own.body.size()));
      own.body.append(reinterpret_cast<const char*>(content.data()), keep);
      if (auto& grpc = stream->sides[side_index(dir.from_client)].grpc) {
        grpc->feed(content, time_ns,
                   dir.from_client ? stream->stream.request_messages : stream->stream.response_messages);
      }
      break;
    }
    case FrameRole::ignore:
      break;
  }
}

void Http2Session::frame_end(Direction& dir, uint64_t time_ns, std::vector<Http2Stream>& out) {
  const auto& header = dir.reader.frame().header;
  switch (dir.role) {
    case FrameRole::header_block:
      if (header.has(flag::end_headers)) end_header_block(dir, time_ns, out);
      break;
    case FrameRole::data:
      if (OpenStream* stream = find_stream(header.stream_id)) {
        touch(dir.from_client ? stream->stream.request : stream->stream.response, time_ns, time_ns);
        if (header.has(flag::end_stream)) end_side(*stream, dir.from_client, time_ns, out);
      }
      break;
    case FrameRole::control:
      control_frame(dir, out);
      break;
    case FrameRole::ignore:
      break;
  }
}

void Http2Session::end_header_block(Direction& dir, uint64_t time_ns, std::vector<Http2Stream>& out) {
  dir.in_block = false;
  http2::DecodedBlock block = dir.hpack.end_block();
  if (dir.block_promised != 0) {
    // The server's promise is the request of the pushed stream, which the client never sends.
    if (dir.from_client) return;
    OpenStream* pushed = open_stream(dir.block_promised, true);
    if (!pushed) return;
    pushed->stream.pushed = true;
    pushed->stream.request.headers_unknown = false;
    apply_block(pushed->stream.request, pushed->sides[kClient].headers_seen, std::move(block));
    touch(pushed->stream.request, dir.block_start_ns, time_ns);
    pushed->sides[kClient].ended = true;
    return;
  }
  OpenStream* stream = dir.block_stream ? open_stream(dir.block_stream, dir.from_client) : nullptr;
  if (!stream) return;
  HttpMessage& own = dir.from_client ? stream->stream.request : stream->stream.response;
  apply_block(own, stream->sides[side_index(dir.from_client)].headers_seen, std::move(block));
  touch(own, dir.block_start_ns, time_ns);
  if (dir.block_end_stream) end_side(*stream, dir.from_client, time_ns, out);
}

void Http2Session::control_frame(Direction& dir, std::vector<Http2Stream>& out) {
  const auto& header = dir.reader.frame().header;
  std::string_view payload = dir.control;
  switch (static_cast<FrameType>(header.type)) {
    case FrameType::rst_stream:
      if (payload.size() < 4) break;
      if (OpenStream* stream = find_stream(header.stream_id)) {
        stream->stream.reset_code = read_be32(payload);
        close_stream(header.stream_id, out);
      }
      break;
    case FrameType::settings:
      if (header.has(flag::ack)) break;
      // The table size this side accepts bounds the other side's encoder.
      for (size_t at = 0; at + 6 <= payload.size(); at += 6) {
        auto id = static_cast<uint16_t>(static_cast<uint8_t>(payload[at]) << 8 |
                                        static_cast<uint8_t>(payload[at + 1]));
        if (id == kSettingsHeaderTableSize)
          direction(!dir.from_client).hpack.set_max_table_size(read_be32(payload.substr(at + 2)));
      }
      break;
    case FrameType::ping:
      if (!header.has(flag::ack)) ++pings_;
      break;
    case FrameType::goaway:
      if (payload.size() >= 8) goaway_error_ = read_be32(payload.substr(4));
      break;
    default:
      break;  // PRIORITY, WINDOW_UPDATE and unknown types carry nothing we report
  }
}

void Http2Session::end_side(OpenStream& stream, bool from_client, uint64_t time_ns,
                            std::vector<Http2Stream>& out) {
  stream.sides[side_index(from_client)].ended = true;
  touch(from_client ? stream.stream.request : stream.stream.response, time_ns, time_ns);
  if (stream.sides[kClient].ended && stream.sides[kServer].ended) close_stream(stream.stream.id, out);
}

Http2Session::OpenStream* Http2Session::find_stream(uint32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

// The stream `id`, opened by a frame from one side unless it is open already;
// none when it was closed recently (a late frame).
Http2Session::OpenStream* Http2Session::open_stream(uint32_t id, bool from_client) {
  if (OpenStream* stream = find_stream(id)) return stream;
  if (closed_.contains(id)) return nullptr;
  if (streams_.size() >= kMaxOpenStreams) evict_oldest();
  OpenStream& stream = streams_[id];
  stream.seq = next_seq_++;
  stream.stream.id = id;
  stream.stream.request.version = stream.stream.response.version = "2";
  if (!from_client) {
    bool client_followed_from_start = client_.synced && !client_.joined_late;
    if (client_followed_from_start && id % 2 == 1 && id > client_.highest_stream) {
      stream.awaiting_request = true;
    } else {
      // The server speaking first on a stream: its request was sent before we joined.
      stream.stream.request.headers_unknown = true;
      stream.sides[kClient].ended = true;
    }
  }
  return &stream;
}

// Streams awaiting a request with an id below `below_id` will not get it: they
// are reported without one once the server's side has ended.
void Http2Session::stop_awaiting_requests(uint32_t below_id, std::vector<Http2Stream>& out) {
  std::vector<uint32_t> ended;
  for (auto& [id, stream] : streams_) {
    if (!stream.awaiting_request || id >= below_id) continue;
    stream.awaiting_request = false;
    stream.stream.request.headers_unknown = true;
    stream.sides[kClient].ended = true;
    if (stream.sides[kServer].ended) ended.push_back(id);
  }
  for (uint32_t id : ended) close_stream(id, out);
}

void Http2Session::close_stream(uint32_t id, std::vector<Http2Stream>& out) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  auto& [client, server] = it->second.sides;
  if (client.grpc) it->second.stream.request_messages_dropped = client.grpc->dropped_messages();
  if (server.grpc) it->second.stream.response_messages_dropped = server.grpc->dropped_messages();
  out.push_back(std::move(it->second.stream));
  streams_.erase(it);
  closed_.add(id);
}

void Http2Session::evict_oldest() {
  auto oldest = std::min_element(streams_.begin(), streams_.end(),
                                 [](const auto& a, const auto& b) { return a.second.seq < b.second.seq; });
  closed_.add(oldest->first);
  streams_.erase(oldest);
  ++evicted_streams_;
}

void Http2Session::finish([[maybe_unused]] uint64_t time_ns, std::vector<Http2Stream>& out) {
  stop_awaiting_requests(UINT32_MAX, out);
  while (!streams_.empty()) {
    uint32_t id = streams_.begin()->first;
    streams_.begin()->second.stream.incomplete = true;
    close_stream(id, out);
  }
}

}  // namespace tlstap::proto
