// The HTTP/2 session parser on bytes written by libnghttp2 (a real client and
// server in memory, or its HPACK encoder for frames built here).
#include "proto/http2/http2_session.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>

#include "nghttp2_peer.h"
#include "proto/http2/frame.h"
#include "test_support.h"

namespace tlstap::proto {
namespace {

using test::H2Chunk;
using test::H2PeerOptions;
using test::NameValues;
using test::Nghttp2Peers;

constexpr size_t kBodyLimit = 1 << 20;

Headers headers(const NameValues& pairs) {
  Headers out;
  for (const auto& [name, value] : pairs) out.push_back({name, value});
  return out;
}

NameValues get(const std::string& path, NameValues extra = {}) {
  NameValues out = {{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", path}};
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

uint64_t chunk_time(size_t index) {
  return 1000 + index;
}

// Feeds every chunk, chunk i at chunk_time(i); returns the last state.
ParseState feed_all(Http2Session& session, const std::vector<H2Chunk>& chunks, std::vector<Http2Stream>& out,
                    size_t first_index = 0) {
  ParseState state = ParseState::done;
  for (size_t i = 0; i < chunks.size(); ++i) {
    state = session.feed(chunks[i].from_client, chunks[i].span(), chunk_time(first_index + i), out);
  }
  return state;
}

std::vector<Http2Stream> parse(const std::vector<H2Chunk>& chunks) {
  Http2Session session(kBodyLimit);
  std::vector<Http2Stream> out;
  EXPECT_EQ(feed_all(session, chunks, out), ParseState::done);
  return out;
}

std::string describe(const HttpMessage& m) {
  std::ostringstream s;
  s << m.version << '|' << m.method << '|' << m.target << '|' << m.authority << '|' << m.status << '|';
  for (const auto& h : m.headers) s << h.name << ':' << h.value << ';';
  s << '|';
  for (const auto& h : m.trailers) s << h.name << ':' << h.value << ';';
  s << '|' << m.body_length << '|' << m.body << '|' << m.headers_unknown << '|' << m.first_byte_ns << '|'
    << m.last_byte_ns;
  return s.str();
}

std::string describe(const Http2Stream& stream) {
  std::ostringstream s;
  s << stream.id << " req[" << describe(stream.request) << "] resp[" << describe(stream.response)
    << "] reset=" << (stream.reset_code ? std::to_string(*stream.reset_code) : "-")
    << " incomplete=" << stream.incomplete << " pushed=" << stream.pushed;
  for (const auto* list : {&stream.request_messages, &stream.response_messages}) {
    s << " msgs[";
    for (const auto& m : *list)
      s << m.compressed << ',' << m.length << ',' << m.data << ',' << m.time_ns << ';';
    s << ']';
  }
  return s.str();
}

// Frame types and flags of the chunks, to check what nghttp2 produced.
std::vector<http2::FrameHeader> frame_headers(const std::string& direction_bytes) {
  std::vector<http2::FrameHeader> out;
  std::string_view rest = direction_bytes;
  if (rest.starts_with(http2::kClientPreface)) rest.remove_prefix(http2::kClientPreface.size());
  while (rest.size() >= http2::kFrameHeaderSize) {
    auto header = http2::parse_frame_header(
        std::as_bytes(std::span(rest.data(), rest.size())).first<http2::kFrameHeaderSize>());
    out.push_back(header);
    rest.remove_prefix(std::min(rest.size(), http2::kFrameHeaderSize + header.length));
  }
  return out;
}

size_t count_frames(const std::string& bytes, http2::FrameType type, uint8_t with_flags = 0) {
  size_t n = 0;
  for (const auto& h : frame_headers(bytes)) n += h.is(type) && (h.flags & with_flags) == with_flags;
  return n;
}

TEST(Http2SessionTest, RequestAndResponseWithBodies) {
  Nghttp2Peers peers;
  int32_t id = peers.request({{":method", "POST"},
                              {":scheme", "https"},
                              {":authority", "example.com"},
                              {":path", "/upload?x=1"},
                              {"content-type", "text/plain"}},
                             "hello server");
  peers.pump();
  peers.respond(id, {{":status", "201"}, {"server", "test"}}, "created!");
  peers.pump();

  auto streams = parse(peers.chunks());
  ASSERT_EQ(streams.size(), 1u);
  const auto& s = streams[0];
  EXPECT_EQ(s.id, 1u);
  EXPECT_EQ(s.request.version, "2");
  EXPECT_EQ(s.request.method, "POST");
  EXPECT_EQ(s.request.target, "/upload?x=1");
  EXPECT_EQ(s.request.authority, "example.com");
  EXPECT_EQ(s.request.headers, headers({{":method", "POST"},
                                        {":scheme", "https"},
                                        {":authority", "example.com"},
                                        {":path", "/upload?x=1"},
                                        {"content-type", "text/plain"}}));
  EXPECT_EQ(s.request.body, "hello server");
  EXPECT_EQ(s.request.body_length, 12u);
  EXPECT_FALSE(s.request.headers_unknown);
  EXPECT_EQ(s.response.version, "2");
  EXPECT_EQ(s.response.status, 201);
  EXPECT_EQ(s.response.headers, headers({{":status", "201"}, {"server", "test"}}));
  EXPECT_EQ(s.response.body, "created!");
  EXPECT_EQ(s.response.body_length, 8u);
  EXPECT_TRUE(s.response.trailers.empty());
  EXPECT_FALSE(s.reset_code);
  EXPECT_FALSE(s.incomplete);
  EXPECT_FALSE(s.pushed);
  EXPECT_TRUE(s.request_messages.empty());
  // The request's HEADERS and DATA precede the response's.
  EXPECT_GT(s.request.first_byte_ns, chunk_time(0));
  EXPECT_LT(s.request.first_byte_ns, s.request.last_byte_ns);
  EXPECT_LT(s.request.last_byte_ns, s.response.first_byte_ns);
  EXPECT_LT(s.response.first_byte_ns, s.response.last_byte_ns);
  EXPECT_EQ(s.response.last_byte_ns, chunk_time(peers.chunks().size() - 1));
}

TEST(Http2SessionTest, BodyKeptUpToTheLimit) {
  Nghttp2Peers peers;
  int32_t id = peers.request(get("/big"));
  peers.pump();
  peers.respond(id, {{":status", "200"}}, std::string(40000, 'b'));
  peers.pump();
  Http2Session session(100);
  std::vector<Http2Stream> out;
  feed_all(session, peers.chunks(), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response.body, std::string(100, 'b'));
  EXPECT_EQ(out[0].response.body_length, 40000u);
}

// Several streams with everything the session handles, used whole and byte by byte.
Nghttp2Peers& busy_connection(Nghttp2Peers& peers) {
  int32_t a = peers.request(get("/a", {{"x-trace", "t1"}}));
  int32_t b = peers.request(
      {{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/b"}},
      "post body", {{"x-req-trailer", "1"}});
  peers.pump();
  peers.respond(b, {{":status", "200"}}, std::string(3000, 'x'), {{"x-checksum", "abc"}});
  peers.respond(a, {{":status", "404"}, {"content-type", "text/html"}}, "not found");
  peers.pump();
  int32_t c = peers.request(get("/c", {{"x-trace", "t1"}}));
  peers.pump();
  peers.reset(c, NGHTTP2_CANCEL, true);
  peers.pump();
  return peers;
}

TEST(Http2SessionTest, ByteByByteDeliveryGivesTheSameStreams) {
  Nghttp2Peers peers({.client_padding = 3, .server_padding = 5, .max_data_frame = 700});
  auto chunks = busy_connection(peers).chunks();
  auto whole = parse(chunks);
  ASSERT_EQ(whole.size(), 3u);

  Http2Session session(kBodyLimit);
  std::vector<Http2Stream> bytewise;
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (std::byte b : chunks[i].span()) {
      session.feed(chunks[i].from_client, std::span(&b, 1), chunk_time(i), bytewise);
    }
  }
  ASSERT_EQ(bytewise.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(describe(bytewise[i]), describe(whole[i]));
  // The short response ends first.
  EXPECT_EQ(whole[0].id, 1u);
  EXPECT_EQ(whole[0].response.status, 404);
  EXPECT_EQ(whole[0].response.body, "not found");
  EXPECT_EQ(whole[1].id, 3u);
  EXPECT_EQ(whole[1].request.body, "post body");
  EXPECT_EQ(whole[1].request.trailers, headers({{"x-req-trailer", "1"}}));
  EXPECT_EQ(whole[1].response.trailers, headers({{"x-checksum", "abc"}}));
  EXPECT_EQ(whole[1].response.body, std::string(3000, 'x'));
  EXPECT_EQ(whole[2].id, 5u);
  EXPECT_EQ(whole[2].reset_code, NGHTTP2_CANCEL);
}

TEST(Http2SessionTest, HpackDynamicTableAcrossRequests) {
  Nghttp2Peers peers;
  NameValues extra = {{"user-agent", "tlstap-test/1.0"}, {"x-api-key", "0123456789abcdef"}};
  std::vector<size_t> block_sizes;
  for (const char* path : {"/one", "/two", "/three"}) {
    int32_t id = peers.request(get(path, extra));
    peers.pump();
    peers.respond(id, {{":status", "200"}, {"x-server", "nghttp2-peer"}});
    peers.pump();
  }
  for (const auto& h : frame_headers(test::join(peers.chunks(), true))) {
    if (h.is(http2::FrameType::headers)) block_sizes.push_back(h.length);
  }
  // The later requests refer to the entries the first one inserted.
  ASSERT_EQ(block_sizes.size(), 3u);
  EXPECT_LT(block_sizes[1] + 20, block_sizes[0]);

  auto streams = parse(peers.chunks());
  ASSERT_EQ(streams.size(), 3u);
  const char* paths[] = {"/one", "/two", "/three"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(streams[i].id, 2 * i + 1);
    EXPECT_EQ(streams[i].request.headers, headers(get(paths[i], extra)));
    EXPECT_FALSE(streams[i].request.headers_unknown);
    EXPECT_EQ(streams[i].response.headers, headers({{":status", "200"}, {"x-server", "nghttp2-peer"}}));
  }
}

TEST(Http2SessionTest, LargerHeaderTableAnnouncedInSettings) {
  // The client accepts a 64 KiB table and the server's encoder uses it: the
  // session must let the server's inflater grow past the default 4 KiB.
  Nghttp2Peers peers({.client_header_table_size = 65536, .server_deflate_table_size = 65536});
  NameValues response = {{":status", "200"}};
  for (int i = 0; i < 10; ++i) response.push_back({"x-h" + std::to_string(i), std::string(700, 'a' + i)});
  for (const char* path : {"/1", "/2", "/3"}) {
    int32_t id = peers.request(get(path));
    peers.pump();
    peers.respond(id, response);
    peers.pump();
  }
  auto streams = parse(peers.chunks());
  ASSERT_EQ(streams.size(), 3u);
  for (const auto& s : streams) {
    EXPECT_EQ(s.response.headers, headers(response));
    EXPECT_FALSE(s.response.headers_unknown);
  }
}

TEST(Http2SessionTest, ContinuationFrames) {
  Nghttp2Peers peers;
  std::string big(40000, 'v');
  int32_t id = peers.request(get("/cont", {{"x-big", big}, {"x-after", "1"}}));
  peers.pump();
  peers.respond(id, {{":status", "200"}, {"x-big-response", big}});
  peers.pump();
  EXPECT_GE(count_frames(test::join(peers.chunks(), true), http2::FrameType::continuation), 2u);
  EXPECT_GE(count_frames(test::join(peers.chunks(), false), http2::FrameType::continuation), 2u);

  auto streams = parse(peers.chunks());
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].request.headers, headers(get("/cont", {{"x-big", big}, {"x-after", "1"}})));
  EXPECT_EQ(streams[0].response.headers, headers({{":status", "200"}, {"x-big-response", big}}));
}

TEST(Http2SessionTest, PaddedDataAndHeaders) {
  Nghttp2Peers peers({.client_padding = 17, .server_padding = 200});
  int32_t id = peers.request({{":method", "PUT"}, {":scheme", "https"}, {":authority", "h"}, {":path", "/p"}},
                             "padded request body");
  peers.pump();
  peers.respond(id, {{":status", "204"}}, "padded response body");
  peers.pump();
  std::string client = test::join(peers.chunks(), true);
  std::string server = test::join(peers.chunks(), false);
  EXPECT_EQ(count_frames(client, http2::FrameType::headers, http2::flag::padded), 1u);
  EXPECT_EQ(count_frames(client, http2::FrameType::data, http2::flag::padded), 1u);
  EXPECT_EQ(count_frames(server, http2::FrameType::headers, http2::flag::padded), 1u);
  EXPECT_EQ(count_frames(server, http2::FrameType::data, http2::flag::padded), 1u);

  auto streams = parse(peers.chunks());
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].request.method, "PUT");
  EXPECT_EQ(streams[0].request.body, "padded request body");
  EXPECT_EQ(streams[0].response.status, 204);
  EXPECT_EQ(streams[0].response.body, "padded response body");
  EXPECT_EQ(streams[0].response.body_length, 20u);
}

TEST(Http2SessionTest, ResetByEitherSide) {
  Nghttp2Peers peers;
  int32_t cancelled = peers.request(get("/slow"));
  int32_t refused = peers.request(get("/refused"));
  peers.pump();
  peers.reset(cancelled, NGHTTP2_CANCEL, true);
  peers.reset(refused, NGHTTP2_REFUSED_STREAM, false);
  peers.pump();
  auto streams = parse(peers.chunks());
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(streams[0].id, 1u);
  EXPECT_EQ(streams[0].reset_code, NGHTTP2_CANCEL);
  EXPECT_EQ(streams[0].request.target, "/slow");
  EXPECT_EQ(streams[0].response.status, 0);
  EXPECT_TRUE(streams[0].response.headers.empty());
  EXPECT_EQ(streams[1].id, 3u);
  EXPECT_EQ(streams[1].reset_code, NGHTTP2_REFUSED_STREAM);
  EXPECT_FALSE(streams[1].incomplete);
}

TEST(Http2SessionTest, ResponseTrailers) {
  Nghttp2Peers peers;
  int32_t id = peers.request(get("/t"));
  peers.pump();
  peers.respond(id, {{":status", "200"}, {"trailer", "x-digest"}}, "body", {{"x-digest", "sha-256=abc"}});
  peers.pump();
  auto streams = parse(peers.chunks());
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].response.headers, headers({{":status", "200"}, {"trailer", "x-digest"}}));
  EXPECT_EQ(streams[0].response.trailers, headers({{"x-digest", "sha-256=abc"}}));
  EXPECT_EQ(streams[0].response.body, "body");
  EXPECT_EQ(streams[0].response.status, 200);
}

TEST(Http2SessionTest, InterleavedStreams) {
  Nghttp2Peers peers({.max_data_frame = 100});
  std::vector<int32_t> ids;
  for (const char* path : {"/x", "/y", "/z"}) ids.push_back(peers.request(get(path)));
  peers.pump();
  for (size_t i = 0; i < ids.size(); ++i)
    peers.respond(ids[i], {{":status", "200"}}, std::string(1000, 'p' + i));
  peers.pump();
  // The DATA frames of the three responses alternate.
  std::vector<uint32_t> data_streams;
  for (const auto& h : frame_headers(test::join(peers.chunks(), false))) {
    if (h.is(http2::FrameType::data)) data_streams.push_back(h.stream_id);
  }
  ASSERT_GE(data_streams.size(), 30u);
  EXPECT_FALSE(std::is_sorted(data_streams.begin(), data_streams.end()));

  auto streams = parse(peers.chunks());
  ASSERT_EQ(streams.size(), 3u);
  std::sort(streams.begin(), streams.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(streams[i].id, static_cast<uint32_t>(ids[i]));
    EXPECT_EQ(streams[i].response.body, std::string(1000, 'p' + i));
  }
  EXPECT_EQ(streams[1].request.target, "/y");
}

TEST(Http2SessionTest, ServerPush) {
  Nghttp2Peers peers;
  int32_t id = peers.request(get("/index.html"));
  peers.pump();
  int32_t promised = peers.push(id, get("/style.css"));
  peers.respond(id, {{":status", "200"}}, "<html>");
  peers.respond(promised, {{":status", "200"}, {"content-type", "text/css"}}, "body{}");
  peers.pump();
  auto streams = parse(peers.chunks());
  ASSERT_EQ(streams.size(), 2u);
  std::sort(streams.begin(), streams.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  EXPECT_EQ(streams[0].id, 1u);
  EXPECT_EQ(streams[0].response.body, "<html>");
  EXPECT_EQ(streams[1].id, 2u);
  EXPECT_TRUE(streams[1].pushed);
  EXPECT_EQ(streams[1].request.headers, headers(get("/style.css")));
  EXPECT_FALSE(streams[1].request.headers_unknown);
  EXPECT_EQ(streams[1].response.body, "body{}");
}

TEST(Http2SessionTest, FinishReportsOpenStreamsIncomplete) {
  Nghttp2Peers peers;
  peers.request(get("/never-answered"));
  peers.request({{":method", "POST"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/half"}},
                "uploaded");
  peers.pump();
  Http2Session session(kBodyLimit);
  std::vector<Http2Stream> out;
  feed_all(session, peers.chunks(), out);
  EXPECT_TRUE(out.empty());
  session.finish(99999, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, 1u);
  EXPECT_TRUE(out[0].incomplete);
  EXPECT_EQ(out[0].request.target, "/never-answered");
  EXPECT_EQ(out[0].response.status, 0);
  EXPECT_EQ(out[1].id, 3u);
  EXPECT_TRUE(out[1].incomplete);
  EXPECT_EQ(out[1].request.body, "uploaded");
  EXPECT_EQ(out[1].response.status, 0);
  std::vector<Http2Stream> again;
  session.finish(100000, again);
  EXPECT_TRUE(again.empty());
}

// HTTP/2 frames built here around header blocks from libnghttp2's encoder.
std::string frame(http2::FrameType type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string out;
  for (int shift : {16, 8, 0}) out += static_cast<char>((payload.size() >> shift) & 0xff);
  out += static_cast<char>(type);
  out += static_cast<char>(flags);
  for (int shift : {24, 16, 8, 0}) out += static_cast<char>((stream >> shift) & 0xff);
  return out + std::string(payload);
}

struct Encoder {
  Encoder() { nghttp2_hd_deflate_new(&deflater, 4096); }
  ~Encoder() { nghttp2_hd_deflate_del(deflater); }
  std::string encode(const NameValues& fields) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [n, v] : fields) {
      nva.push_back({(uint8_t*)n.data(), (uint8_t*)v.data(), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(deflater, nva.data(), nva.size()), '\0');
    ssize_t n = nghttp2_hd_deflate_hd(deflater, (uint8_t*)out.data(), out.size(), nva.data(), nva.size());
    out.resize(n > 0 ? n : 0);
    return out;
  }
  nghttp2_hd_deflater* deflater = nullptr;
};

constexpr uint8_t kEndBoth = http2::flag::end_stream | http2::flag::end_headers;

TEST(Http2SessionTest, JoinedMidConnection) {
  Encoder client, server;
  NameValues first = get("/a", {{"x-token", "secret-1"}});
  NameValues second = get("/b", {{"x-token", "secret-1"}});  // refers to entries of the first
  NameValues third = {{":method", "POST"},
                      {":scheme", "https"},
                      {":authority", "other.org"},
                      {":path", "/c"},
                      {"x-new", "fresh"}};  // literals only: inserted while we watch
  NameValues fourth = third;                // refers to the third's entries
  fourth[3].second = "/d";
  std::string unseen = frame(http2::FrameType::headers, kEndBoth, 1, client.encode(first));
  std::string unseen_response =
      frame(http2::FrameType::headers, kEndBoth, 1, server.encode({{":status", "200"}, {"x-s", "1"}}));
  ASSERT_FALSE(unseen.empty());
  ASSERT_FALSE(unseen_response.empty());

  Http2Session session(kBodyLimit);
  std::vector<Http2Stream> out;
  // The end of a DATA frame of an earlier stream: not a frame start, dropped.
  EXPECT_EQ(session.feed(true, test::as_bytes("tail of an earlier body"), 1, out), ParseState::invalid);
  auto send = [&](bool from_client, const std::string& bytes, uint64_t t) {
    return session.feed(from_client, std::as_bytes(std::span(bytes.data(), bytes.size())), t, out);
  };
  EXPECT_EQ(send(true, frame(http2::FrameType::headers, kEndBoth, 3, client.encode(second)), 2),
            ParseState::done);
  EXPECT_EQ(send(false,
                 frame(http2::FrameType::headers, http2::flag::end_headers, 3,
                       server.encode({{":status", "200"}, {"x-s", "1"}})) +
                     frame(http2::FrameType::data, http2::flag::end_stream, 3, "two"),
                 3),
            ParseState::done);
  send(true, frame(http2::FrameType::headers, kEndBoth, 5, client.encode(third)), 4);
  send(true, frame(http2::FrameType::headers, kEndBoth, 7, client.encode(fourth)), 5);
  send(false, frame(http2::FrameType::headers, kEndBoth, 5, server.encode({{":status", "204"}})), 6);
  send(false, frame(http2::FrameType::headers, kEndBoth, 7, server.encode({{":status", "204"}})), 7);

  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].id, 3u);
  EXPECT_TRUE(out[0].request.headers_unknown);
  // Only the fields that did not need the unseen entries, nothing made up.
  EXPECT_EQ(out[0].request.headers, headers({{":method", "GET"}, {":scheme", "https"}, {":path", "/b"}}));
  EXPECT_EQ(out[0].request.method, "GET");
  EXPECT_EQ(out[0].request.target, "/b");
  EXPECT_EQ(out[0].request.authority, "");
  EXPECT_TRUE(out[0].response.headers_unknown);  // x-s was inserted by the unseen response
  EXPECT_EQ(out[0].response.headers, headers({{":status", "200"}}));
  EXPECT_EQ(out[0].response.body, "two");
  EXPECT_EQ(out[1].id, 5u);
  EXPECT_FALSE(out[1].request.headers_unknown);
  EXPECT_EQ(out[1].request.headers, headers(third));
  EXPECT_FALSE(out[1].response.headers_unknown);
  EXPECT_EQ(out[1].response.status, 204);
  EXPECT_EQ(out[2].id, 7u);
  EXPECT_FALSE(out[2].request.headers_unknown);
  EXPECT_EQ(out[2].request.headers, headers(fourth));
  EXPECT_EQ(out[2].request.authority, "other.org");
}

TEST(Http2SessionTest, JoinedMidStreamReportsWhatItSaw) {
  Encoder server;
  Http2Session session(kBodyLimit);
  std::vector<Http2Stream> out;
  // Only the end of stream 9's response is seen: its request never will be.
  std::string bytes = frame(http2::FrameType::data, 0, 9, "part-2") +
                      frame(http2::FrameType::data, http2::flag::end_stream, 9, "part-3");
  EXPECT_EQ(session.feed(false, test::as_bytes(bytes), 5, out), ParseState::done);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 9u);
  EXPECT_TRUE(out[0].request.headers_unknown);
  EXPECT_TRUE(out[0].response.headers_unknown);
  EXPECT_EQ(out[0].response.body, "part-2part-3");
  EXPECT_EQ(out[0].response.first_byte_ns, 5u);
}

TEST(Http2SessionTest, LostBytesResynchronise) {
  Nghttp2Peers peers;
  NameValues extra = {{"x-session", "s-42"}};
  int32_t one = peers.request(get("/one", extra));
  peers.pump();
  peers.respond(one, {{":status", "200"}}, std::string(30, 'a'));
  peers.pump();
  size_t before_two = peers.chunks().size();
  int32_t two = peers.request(get("/two", extra));
  peers.pump();
  size_t two_headers = before_two;  // the client's HEADERS of request two
  ASSERT_TRUE(peers.chunks()[two_headers].from_client);
  peers.respond(two, {{":status", "200"}}, std::string(30, 'b'));
  peers.pump();
  int32_t three = peers.request(get("/three", extra));
  peers.pump();
  peers.respond(three, {{":status", "202"}}, std::string(30, 'c'));
  peers.pump();
  const auto& chunks = peers.chunks();

  Http2Session session(kBodyLimit);
  std::vector<Http2Stream> out;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i == two_headers) {
      session.lost(true, chunks[i].bytes.size(), out);
      continue;
    }
    session.feed(chunks[i].from_client, chunks[i].span(), chunk_time(i), out);
  }
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].id, 1u);
  EXPECT_EQ(out[0].request.headers, headers(get("/one", extra)));
  EXPECT_EQ(out[1].id, 3u);  // known from the server's side only
  EXPECT_TRUE(out[1].request.headers_unknown);
  EXPECT_TRUE(out[1].request.headers.empty());
  EXPECT_EQ(out[1].response.status, 200);
  EXPECT_EQ(out[1].response.body, std::string(30, 'b'));
  EXPECT_EQ(out[2].id, 5u);
  // The client's HPACK state is no longer trusted: the fields it inserted
  // earlier are unknown, the static and literal ones are kept.
  EXPECT_TRUE(out[2].request.headers_unknown);
  EXPECT_EQ(out[2].request.headers, headers({{":method", "GET"}, {":scheme", "https"}, {":path", "/three"}}));
  EXPECT_EQ(out[2].response.status, 202);
  EXPECT_EQ(out[2].response.body, std::string(30, 'c'));
}

// Captures of two threads can arrive answer first: the response of a stream
// the client is followed on from the start waits for its request.
TEST(Http2SessionTest, ResponseCapturedBeforeItsRequest) {
  Nghttp2Peers peers;
  int32_t one = peers.request(get("/one"));
  peers.pump();
  peers.respond(one, {{":status", "200"}}, "first");
  peers.pump();
  size_t before_two = peers.chunks().size();
  int32_t two = peers.request(get("/two"), "ping");
  peers.pump();
  peers.respond(two, {{":status", "201"}}, "second");
  peers.pump();
  auto chunks = peers.take_chunks();
  // Every chunk the server wrote for stream two first, then the client's.
  std::vector<H2Chunk> reordered(chunks.begin(), chunks.begin() + before_two);
  for (size_t i = before_two; i < chunks.size(); ++i)
    if (!chunks[i].from_client) reordered.push_back(chunks[i]);
  for (size_t i = before_two; i < chunks.size(); ++i)
    if (chunks[i].from_client) reordered.push_back(chunks[i]);

  auto streams = parse(reordered);
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(streams[1].id, static_cast<uint32_t>(two));
  EXPECT_EQ(streams[1].request.headers, headers(get("/two")));
  EXPECT_EQ(streams[1].request.body, "ping");
  EXPECT_FALSE(streams[1].request.headers_unknown);
  EXPECT_EQ(streams[1].response.status, 201);
  EXPECT_EQ(streams[1].response.body, "second");
  EXPECT_FALSE(streams[1].incomplete);
}

// The client chunk carrying the HEADERS frame that opens `stream_id`.
size_t request_headers_chunk(const std::vector<H2Chunk>& chunks, int32_t stream_id) {
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!chunks[i].from_client) continue;
    for (const auto& h : frame_headers(chunks[i].bytes)) {
      if (h.is(http2::FrameType::headers) && h.stream_id == static_cast<uint32_t>(stream_id)) return i;
    }
  }
  ADD_FAILURE() << "no HEADERS for stream " << stream_id;
  return chunks.size();
}

// A request that never comes: the client opening a later stream, losing
// bytes, or the connection ending gives the awaited stream up.
TEST(Http2SessionTest, AwaitedRequestGivenUp) {
  for (std::string_view ending : {"later stream", "lost", "finish"}) {
    SCOPED_TRACE(ending);
    Nghttp2Peers peers;
    int32_t one = peers.request(get("/one"));
    peers.pump();
    peers.respond(one, {{":status", "200"}}, "first");
    peers.pump();
    int32_t two = peers.request(get("/two"));
    peers.pump();
    peers.respond(two, {{":status", "200"}}, "second");
    peers.pump();
    auto chunks = peers.take_chunks();
    size_t request_one = request_headers_chunk(chunks, one);
    size_t request_two = request_headers_chunk(chunks, two);
    Http2Session session(kBodyLimit);
    std::vector<Http2Stream> out;
    // The preface and SETTINGS go first; request one is never delivered.
    for (size_t i = 0; i < chunks.size(); ++i) {
      if (i == request_one || (ending != "later stream" && i == request_two)) continue;
      session.feed(chunks[i].from_client, chunks[i].span(), chunk_time(i), out);
      if (i < request_two) {
        EXPECT_TRUE(out.empty());
      }
    }
    if (ending == "lost") session.lost(true, 10, out);
    if (ending == "finish") session.finish(9000, out);
    ASSERT_GE(out.size(), 1u);
    EXPECT_EQ(out[0].id, static_cast<uint32_t>(one));
    EXPECT_EQ(out[0].request.first_byte_ns, 0u);  // never seen
    EXPECT_TRUE(out[0].request.headers_unknown);
    EXPECT_EQ(out[0].response.body, "first");
    EXPECT_FALSE(out[0].incomplete);
  }
}

TEST(Http2SessionTest, LostInsideAFrame) {
  Nghttp2Peers peers;
  int32_t one = peers.request(get("/one"));
  peers.pump();
  peers.respond(one, {{":status", "200"}}, std::string(1000, 'a'));
  peers.pump();
  int32_t two = peers.request(get("/two"));
  peers.pump();
  peers.respond(two, {{":status", "200"}}, "second");
  peers.pump();
  const auto& chunks = peers.chunks();
  Http2Session session(kBodyLimit);
  std::vector<Http2Stream> out;
  bool cut = false;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto& c = chunks[i];
    if (!cut && !c.from_client && c.bytes.size() == 1009) {  // the DATA frame of response one
      EXPECT_EQ(session.feed(false, c.span().first(400), chunk_time(i), out), ParseState::need_more_data);
      session.lost(false, 609, out);
      cut = true;
      continue;
    }
    session.feed(c.from_client, c.span(), chunk_time(i), out);
  }
  ASSERT_TRUE(cut);
  session.finish(5000, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, 3u);
  EXPECT_EQ(out[0].response.body, "second");
  EXPECT_FALSE(out[0].response.headers_unknown);  // ":status 200" is in the static table
  EXPECT_EQ(out[1].id, 1u);                       // its END_STREAM was lost
  EXPECT_TRUE(out[1].incomplete);
  EXPECT_EQ(out[1].response.body_length, 400u - 9u);
}

TEST(Http2SessionTest, DetectionHelpers) {
  Nghttp2Peers peers;
  peers.request(get("/"));
  peers.pump();
  std::string client = test::join(peers.chunks(), true);
  std::string server = test::join(peers.chunks(), false);
  EXPECT_TRUE(starts_with_http2_preface(client));
  EXPECT_FALSE(starts_with_http2_preface(client.substr(0, 10)));
  EXPECT_TRUE(looks_like_http2_frames(server));
  EXPECT_TRUE(looks_like_http2_frames(server.substr(0, 9)));
  EXPECT_FALSE(looks_like_http2_frames(server.substr(0, 8)));
  EXPECT_FALSE(looks_like_http2_frames(client));
  EXPECT_FALSE(looks_like_http2_frames("HTTP/1.1 200 OK\r\n\r\n"));
  EXPECT_FALSE(
      looks_like_http2_frames(std::string("\x00\x00\x05\x04\x00\x00\x00\x00\x00", 9)));  // SETTINGS % 6
  EXPECT_FALSE(looks_like_http2_frames(std::string("\x00\x00\x00\x00\x01\x00\x00\x00\x00", 9)));  // DATA on 0
}

TEST(Http2SessionTest, EvictsTheOldestOpenStream) {
  Encoder client;
  Http2Session session(16);
  std::vector<Http2Stream> out;
  std::string preface(http2::kClientPreface);
  session.feed(true, test::as_bytes(preface), 1, out);
  for (uint32_t i = 0; i <= Http2Session::kMaxOpenStreams; ++i) {
    std::string f =
        frame(http2::FrameType::headers, http2::flag::end_headers, 2 * i + 1, client.encode(get("/")));
    ASSERT_EQ(session.feed(true, test::as_bytes(f), 2, out), ParseState::done);
  }
  EXPECT_EQ(session.evicted_streams(), 1u);
  // A late frame on the evicted stream does not bring it back.
  std::string late = frame(http2::FrameType::data, http2::flag::end_stream, 1, "late");
  session.feed(false, test::as_bytes(late), 3, out);
  session.finish(4, out);
  ASSERT_EQ(out.size(), Http2Session::kMaxOpenStreams);
  EXPECT_EQ(out.front().id, 3u);
}

// Throughput on a realistic connection: printed, not asserted (this build is
// sanitized; see the report for an optimised figure).
TEST(Http2SessionTest, ThroughputPrinted) {
  Nghttp2Peers peers;
  constexpr int kStreams = 10000;
  for (int batch = 0; batch < kStreams / 100; ++batch) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 100; ++i) {
      ids.push_back(
          peers.request(get("/item/" + std::to_string(batch * 100 + i), {{"user-agent", "bench/1"}})));
    }
    peers.pump();
    for (int32_t id : ids)
      peers.respond(id, {{":status", "200"}, {"content-type", "application/json"}}, std::string(1024, 'j'));
    peers.pump();
  }
  auto chunks = peers.take_chunks();
  size_t total = 0;
  for (const auto& c : chunks) total += c.bytes.size();
  auto start = std::chrono::steady_clock::now();
  Http2Session session(4096);
  std::vector<Http2Stream> out;
  out.reserve(kStreams);
  feed_all(session, chunks, out);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(out.size(), static_cast<size_t>(kStreams));
  std::printf("http2 parse: %d streams, %zu bytes in %zu chunks, %.1f MB/s\n", kStreams, total, chunks.size(),
              total / seconds / 1e6);
}

}  // namespace
}  // namespace tlstap::proto
