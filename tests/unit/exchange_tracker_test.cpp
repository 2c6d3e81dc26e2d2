// The exchange tracker on the chunks a traced process would produce: which
// protocol, which direction carries requests, pairing, gaps, ends, eviction.
#include "conn/exchange_tracker.h"

#include <gtest/gtest.h>

#include <deque>

#include "nghttp2_peer.h"
#include "test_support.h"

namespace tlstap {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view kRequest =
    "GET /index.html?id=7 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\n\r\n";
constexpr std::string_view kResponse = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: nginx\r\n\r\nhello";

struct Captured {
  proto::HttpExchange exchange;
  ConnectionIdentity connection;
};

// Feeds chunks of one connection the way the capture would, and keeps what comes out.
class Connection {
 public:
  explicit Connection(ExchangeTrackerLimits limits = {})
      : tracker_(
            limits,
            [this](const ExchangeRecord& r) {
              out.push_back({r.exchange, r.connection});
            },
            [this](const WebSocketRecord& r) {
              websocket.push_back(
                  {r.message, r.connection, r.from_client, std::string(r.authority), std::string(r.path)});
            }) {}

  void send(Direction direction, std::string_view bytes, uint64_t time_ns, Role role = Role::client,
            uint64_t conn_uid = 7, uint32_t pid = 100, uint64_t gap = 0) {
    // The record borrows its payload: keep it alive beyond the call like the ring does during it.
    payloads_.emplace_back(bytes);
    DataEvent e = test::sample_data_event(test::as_bytes(payloads_.back()));
    e.pid = pid;
    e.conn_uid = conn_uid;
    e.direction = direction;
    uint64_t& offset = offsets_[direction == Direction::egress];
    offset += gap;
    e.stream_offset = offset;
    offset += bytes.size();
    tracker_.observe(DataRecord{e, time_ns, test::kCurlProcess, role, gap, false});
  }

  ExchangeTracker& tracker() { return tracker_; }
  std::vector<Captured> out;
  struct WebSocketCaptured {
    proto::WebSocketMessage message;
    ConnectionIdentity connection;
    bool from_client;
    std::string authority, path;
  };
  std::vector<WebSocketCaptured> websocket;

 private:
  std::deque<std::string> payloads_;
  uint64_t offsets_[2] = {0, 0};
  ExchangeTracker tracker_;
};

TEST(ExchangeTracker, ClientRequestPairedWithItsResponse) {
  Connection c;
  c.send(Direction::egress, kRequest, 1'000'000);
  EXPECT_TRUE(c.out.empty());
  c.send(Direction::ingress, kResponse, 3'500'000);
  ASSERT_EQ(c.out.size(), 1u);
  const auto& [x, conn] = c.out[0];
  EXPECT_EQ(x.version, "1.1");
  ASSERT_TRUE(x.request && x.response);
  EXPECT_EQ(x.request->method, "GET");
  EXPECT_EQ(x.request->target, "/index.html?id=7");
  EXPECT_EQ(x.request->authority, "example.com");
  EXPECT_EQ(x.response->status, 200);
  EXPECT_EQ(x.response->body, "hello");
  EXPECT_EQ(x.response->body_length, 5u);
  EXPECT_EQ(x.latency_ns(), 2'500'000u);
  EXPECT_EQ(x.start_ns(), 1'000'000u);
  EXPECT_FALSE(x.incomplete);
  EXPECT_EQ(conn.pid, 100u);
  EXPECT_EQ(conn.comm, "curl");
  EXPECT_EQ(conn.process, test::kCurlProcess);
  EXPECT_EQ(conn.library, Library::openssl);
  EXPECT_EQ(conn.role, Role::client);
  EXPECT_EQ(format_endpoint(conn.local), "10.1.2.3:51000");
  EXPECT_EQ(format_endpoint(conn.remote), "93.184.216.34:443");
  EXPECT_EQ(c.tracker().stats().exchanges, 1u);
}

// "hello\n" as `gzip` writes it.
constexpr std::string_view kGzipHello =
    "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48\xcd\xc9\xc9\xe7\x02\x00\x20\x30\x3a\x36\x06\x00\x00\x00"sv;

TEST(ExchangeTracker, CompressedBodiesAreReportedDecodedUnlessNoneIsShown) {
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(kGzipHello.size()) +
      "\r\n\r\n" + std::string(kGzipHello);
  for (bool decode : {true, false}) {
    Connection c({.decode_bodies = decode});
    c.send(Direction::egress, kRequest, 1'000'000);
    c.send(Direction::ingress, response, 2'000'000);
    ASSERT_EQ(c.out.size(), 1u);
    const proto::HttpMessage& r = *c.out[0].exchange.response;
    EXPECT_EQ(r.body, decode ? "hello\n" : kGzipHello);
    EXPECT_EQ(r.decoding.codings, decode ? "gzip" : "");
    EXPECT_EQ(r.body_length, kGzipHello.size());
  }
}

TEST(ExchangeTracker, ServerReadsRequestsAndWritesResponses) {
  Connection c;
  c.send(Direction::ingress, kRequest, 10, Role::server);
  c.send(Direction::egress, kResponse, 20, Role::server);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].exchange.request->target, "/index.html?id=7");
  EXPECT_EQ(c.out[0].exchange.response->status, 200);
  EXPECT_EQ(c.out[0].connection.role, Role::server);
}

TEST(ExchangeTracker, PipelinedRequestsAnsweredInOrderAcrossChunkSplits) {
  Connection c;
  std::string requests =
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string responses =
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"  // HEAD: no body follows
      "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nNF";
  c.send(Direction::egress, requests.substr(0, 20), 1);
  c.send(Direction::egress, requests.substr(20), 2);
  for (size_t i = 0; i < responses.size(); i += 7) c.send(Direction::ingress, responses.substr(i, 7), 10 + i);
  ASSERT_EQ(c.out.size(), 3u);
  EXPECT_EQ(c.out[0].exchange.request->target, "/a");
  EXPECT_EQ(c.out[0].exchange.response->body, "A");
  EXPECT_EQ(c.out[1].exchange.request->method, "HEAD");
  EXPECT_EQ(c.out[1].exchange.response->body_length, 0u);
  EXPECT_EQ(c.out[2].exchange.request->target, "/c");
  EXPECT_EQ(c.out[2].exchange.response->status, 404);
  EXPECT_EQ(c.out[2].exchange.response->body, "NF");
}

TEST(ExchangeTracker, ResponseWhoseRequestPredatesTheCapture) {
  Connection c;
  c.send(Direction::ingress, kResponse, 5);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_FALSE(c.out[0].exchange.request);
  EXPECT_EQ(c.out[0].exchange.response->status, 200);
  EXPECT_EQ(c.out[0].exchange.latency_ns(), 0u);
}

TEST(ExchangeTracker, ConnectionEndReportsBodyUntilCloseAndUnansweredRequests) {
  Connection c;
  c.send(Direction::egress, "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n", 1);
  c.send(Direction::ingress, "HTTP/1.1 200 OK\r\n\r\nall of it", 2);  // no length: ends with the connection
  c.send(Direction::ingress, " and more", 3);
  EXPECT_TRUE(c.out.empty());
  c.tracker().forget_process(100);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].exchange.response->body, "all of it and more");
  EXPECT_EQ(c.out[0].exchange.response->last_byte_ns, 3u);

  Connection unanswered;
  unanswered.send(Direction::egress, kRequest, 1);
  unanswered.tracker().finish_all();
  ASSERT_EQ(unanswered.out.size(), 1u);
  EXPECT_TRUE(unanswered.out[0].exchange.incomplete);
  EXPECT_FALSE(unanswered.out[0].exchange.response);
  EXPECT_EQ(unanswered.tracker().size(), 0u);
}

TEST(ExchangeTracker, RequestsNeverAnsweredAreNotKeptWithoutBound) {
  Connection c;
  std::string request = "GET /poll HTTP/1.1\r\nHost: h\r\n\r\n";
  for (uint64_t t = 1; t <= 1024; ++t) c.send(Direction::egress, request, t);
  EXPECT_TRUE(c.out.empty());  // pipelined as deep as that, they are still awaited
  c.send(Direction::egress, request, 1025);
  ASSERT_EQ(c.out.size(), 1025u);  // one more: all are reported unanswered
  c.send(Direction::egress, request, 1026);
  ASSERT_EQ(c.out.size(), 1026u);  // and later ones at once
  for (const auto& [x, conn] : c.out) {
    EXPECT_TRUE(x.incomplete);
    EXPECT_EQ(x.request->target, "/poll");
    EXPECT_FALSE(x.response);
  }
  EXPECT_EQ(c.out.back().exchange.request->first_byte_ns, 1026u);
  EXPECT_EQ(c.tracker().stats().responses_unseen_connections, 1u);

  // Late responses are paired with nothing, and reported as they complete.
  for (uint64_t n = 1; n <= 2; ++n) {
    c.send(Direction::ingress, kResponse, 2000 + n);
    ASSERT_EQ(c.out.size(), 1026u + n);
    EXPECT_FALSE(c.out.back().exchange.request);
    EXPECT_EQ(c.out.back().exchange.response->body, "hello");
  }
}

TEST(ExchangeTracker, ClosedConnectionEndsAloneAndStartsAfreshAfter) {
  Connection c;
  c.send(Direction::egress, "GET /a HTTP/1.0\r\n\r\n", 1, Role::client, 7);
  c.send(Direction::ingress, "HTTP/1.0 200 OK\r\n\r\nuntil close", 2, Role::client, 7);
  c.send(Direction::egress, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n", 3, Role::client, 8);
  c.tracker().end_connection({100, 7});
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].exchange.request->target, "/a");
  EXPECT_EQ(c.out[0].exchange.response->body, "until close");
  EXPECT_FALSE(c.out[0].exchange.incomplete);
  EXPECT_EQ(c.tracker().size(), 1u);     // connection 8 goes on
  c.tracker().end_connection({100, 7});  // twice, or unknown: nothing happens
  c.tracker().end_connection({101, 8});
  EXPECT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.tracker().size(), 1u);
}

TEST(ExchangeTracker, AfterAGapNothingIsPairedWrongly) {
  Connection c;
  c.send(Direction::egress, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n", 1);
  c.send(Direction::ingress, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", 2);
  // The rest of the body was lost, and with it where the next response begins:
  // /1 is reported without a response, the next response without a request.
  c.send(Direction::ingress, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", 3, Role::client, 7, 100, 50);
  ASSERT_EQ(c.out.size(), 2u);
  EXPECT_EQ(c.out[0].exchange.request->target, "/1");
  EXPECT_FALSE(c.out[0].exchange.response);
  EXPECT_TRUE(c.out[0].exchange.incomplete);
  EXPECT_FALSE(c.out[1].exchange.request);
  EXPECT_EQ(c.out[1].exchange.response->status, 500);
  // The next request and its response pair up again.
  c.send(Direction::egress, "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n", 4);
  c.send(Direction::ingress, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 5);
  ASSERT_EQ(c.out.size(), 3u);
  EXPECT_EQ(c.out.back().exchange.request->target, "/2");
  EXPECT_EQ(c.out.back().exchange.response->status, 201);
}

TEST(ExchangeTracker, GapInTheRequestsLeavesItsResponseUnpaired) {
  Connection c;
  c.send(Direction::egress, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", 1);
  c.send(Direction::egress, "tail of the body", 2, Role::client, 7, 100, 84);  // 84 bytes lost, then the rest
  c.send(Direction::ingress, "HTTP/1.1 204 No Content\r\n\r\n", 3);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_FALSE(c.out[0].exchange.request);
  EXPECT_EQ(c.out[0].exchange.response->status, 204);
}

TEST(ExchangeTracker, UnknownProtocolIsGivenUpAndCounted) {
  Connection c(ExchangeTrackerLimits{.detection_bytes = 100});
  std::string noise(60, 'x');
  c.send(Direction::egress, noise, 1);
  c.send(Direction::ingress, noise, 2);
  c.send(Direction::egress, kRequest, 3);  // too late: the connection is not HTTP
  c.send(Direction::ingress, kResponse, 4);
  EXPECT_TRUE(c.out.empty());
  EXPECT_EQ(c.tracker().stats().unknown_protocol_connections, 1u);
}

TEST(ExchangeTracker, ConnectionsApartByProcessAndUid) {
  Connection c;
  c.send(Direction::egress, kRequest, 1, Role::client, /*conn_uid=*/1, /*pid=*/100);
  c.send(Direction::egress, "GET /other HTTP/1.1\r\nHost: h\r\n\r\n", 2, Role::client, 2, 100);
  c.send(Direction::ingress, kResponse, 3, Role::client, 2, 100);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].exchange.request->target, "/other");
}

TEST(ExchangeTracker, OldestConnectionEvictedPastTheCap) {
  Connection c(ExchangeTrackerLimits{.max_connections = 2});
  c.send(Direction::egress, kRequest, 1, Role::client, 1);
  c.send(Direction::egress, kRequest, 2, Role::client, 2);
  c.send(Direction::ingress, kResponse, 3, Role::client, 1);  // 1 is now the most recent
  c.send(Direction::egress, kRequest, 4, Role::client, 3);    // evicts 2
  EXPECT_EQ(c.tracker().stats().evicted_connections, 1u);
  EXPECT_EQ(c.tracker().size(), 2u);
  c.send(Direction::ingress, kResponse, 5, Role::client, 2);  // 2 starts over: its request is gone
  ASSERT_EQ(c.out.size(), 2u);
  EXPECT_TRUE(c.out[0].exchange.request);
  EXPECT_FALSE(c.out[1].exchange.request);
}

// Feeds what real libnghttp2 peers wrote, as the client (or the server) process would see it.
void replay_h2(Connection& c, const std::vector<test::H2Chunk>& chunks, Role role, uint64_t& time) {
  for (const auto& chunk : chunks) {
    bool egress = chunk.from_client == (role == Role::client);
    c.send(egress ? Direction::egress : Direction::ingress, chunk.bytes, time += 1000, role);
  }
}

TEST(ExchangeTracker, Http2StreamsFromEitherSide) {
  for (Role role : {Role::client, Role::server}) {
    test::Nghttp2Peers peers;
    int32_t a = peers.request(
        {{":method", "GET"}, {":scheme", "https"}, {":authority", "api.local"}, {":path", "/a"}});
    int32_t b = peers.request(
        {{":method", "POST"}, {":scheme", "https"}, {":authority", "api.local"}, {":path", "/b"}}, "payload");
    peers.pump();
    peers.respond(b, {{":status", "201"}}, "made");
    peers.respond(a, {{":status", "200"}, {"content-type", "text/plain"}}, "hello");
    peers.pump();
    Connection c;
    uint64_t time = 0;
    replay_h2(c, peers.chunks(), role, time);
    ASSERT_EQ(c.out.size(), 2u) << "role " << to_string(role);
    const auto& first = c.out[0].exchange;  // answered first
    EXPECT_EQ(first.version, "2");
    EXPECT_EQ(first.stream_id, static_cast<uint32_t>(b));
    EXPECT_EQ(first.request->method, "POST");
    EXPECT_EQ(first.request->body, "payload");
    EXPECT_EQ(first.response->status, 201);
    EXPECT_EQ(first.response->body, "made");
    EXPECT_GT(first.latency_ns(), 0u);
    const auto& second = c.out[1].exchange;
    EXPECT_EQ(second.stream_id, static_cast<uint32_t>(a));
    EXPECT_EQ(second.request->authority, "api.local");
    EXPECT_EQ(second.request->target, "/a");
    EXPECT_EQ(second.response->body, "hello");
    EXPECT_FALSE(second.grpc);
    EXPECT_EQ(c.out[0].connection.role, role);
  }
}

TEST(ExchangeTracker, GrpcCallFromAnHttp2Stream) {
  test::Nghttp2Peers peers;
  std::string request_message("\x00\x00\x00\x00\x02\x08\x07", 7);  // field 1 = 7
  int32_t id = peers.request({{":method", "POST"},
                              {":scheme", "https"},
                              {":authority", "localhost:50051"},
                              {":path", "/helloworld.Greeter/SayHello"},
                              {"content-type", "application/grpc"},
                              {"te", "trailers"}},
                             request_message);
  peers.pump();
  std::string response_message("\x00\x00\x00\x00\x04\x0a\x02hi", 9);  // field 1 = "hi"
  peers.respond(id, {{":status", "200"}, {"content-type", "application/grpc"}}, response_message,
                {{"grpc-status", "5"}, {"grpc-message", "not%20found:%2x %3A"}});
  peers.pump();
  Connection c;
  uint64_t time = 0;
  replay_h2(c, peers.chunks(), Role::client, time);
  ASSERT_EQ(c.out.size(), 1u);
  const auto& x = c.out[0].exchange;
  ASSERT_TRUE(x.grpc);
  EXPECT_EQ(x.grpc->service, "helloworld.Greeter");
  EXPECT_EQ(x.grpc->method, "SayHello");
  EXPECT_EQ(x.grpc->status, 5);
  EXPECT_EQ(x.grpc->message, "not found:%2x :");  // percent-decoded; a bad escape kept
  ASSERT_EQ(x.grpc->request_messages.size(), 1u);
  EXPECT_EQ(x.grpc->request_messages[0].data, "\x08\x07");
  ASSERT_EQ(x.grpc->response_messages.size(), 1u);
  EXPECT_EQ(x.grpc->response_messages[0].data, "\x0a\x02hi");
}

TEST(ExchangeTracker, ResponseHeldForItsMethodIsPairedWhenTheRequestArrives) {
  Connection c;
  // The response is parsed before its request is known (the parser waits to
  // learn whether the request was HEAD): it completes when the request does.
  c.send(Direction::egress, "HEAD /x HTTP/1.1\r\nHost: h\r\n", 1);
  c.send(Direction::egress, "\r\n", 2);
  c.send(Direction::ingress, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 3);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].exchange.request->method, "HEAD");
  EXPECT_EQ(c.out[0].exchange.response->body_length, 0u);
}

// --- WebSocket -----------------------------------------------------------------

constexpr std::string_view kUpgrade =
    "GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
constexpr std::string_view kSwitching =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: "
    "permessage-deflate\r\n\r\n";
// RFC 7692 section 7.2.3.1: "Hello" compressed; RFC 6455 section 5.7: a masked "Hello".
constexpr std::string_view kDeflatedHello = "\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00"sv;  // sv: it ends in a NUL
constexpr std::string_view kMaskedHello = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"sv;
constexpr std::string_view kClose = "\x88\x02\x03\xe8"sv;  // 1000, no reason

std::string joined(std::string_view a, std::string_view b) {
  return std::string(a) + std::string(b);
}

TEST(ExchangeTrackerWebSocket, ClientSideFollowsBothDirectionsAfterThe101) {
  Connection c;
  c.send(Direction::egress, kUpgrade, 10);
  c.send(Direction::ingress, joined(kSwitching, kDeflatedHello),
         20);  // the first frame shares the 101's chunk
  c.send(Direction::egress, kMaskedHello, 30);
  c.send(Direction::ingress, kClose, 40);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_TRUE(c.out[0].exchange.switched_protocols);
  EXPECT_EQ(c.out[0].exchange.response->status, 101);

  ASSERT_EQ(c.websocket.size(), 3u);
  const auto& hello = c.websocket[0];
  EXPECT_FALSE(hello.from_client);
  EXPECT_EQ(hello.message.opcode, proto::WebSocketOpcode::text);
  EXPECT_TRUE(hello.message.compressed);
  EXPECT_EQ(hello.message.payload, "Hello");
  EXPECT_EQ(hello.message.first_byte_ns, 20u);
  EXPECT_EQ(hello.connection.comm, "curl");
  EXPECT_EQ(hello.connection.role, Role::client);
  EXPECT_EQ(format_endpoint(hello.connection.remote), "93.184.216.34:443");
  EXPECT_EQ(hello.authority, "ws.example.com");
  EXPECT_EQ(hello.path, "/chat");

  EXPECT_TRUE(c.websocket[1].from_client);
  EXPECT_EQ(c.websocket[1].message.payload, "Hello");
  EXPECT_TRUE(c.websocket[1].message.masked);
  EXPECT_EQ(c.websocket[2].message.opcode, proto::WebSocketOpcode::close);
  EXPECT_EQ(c.websocket[2].message.close_code, 1000);
  EXPECT_EQ(c.tracker().stats().websocket_messages, 3u);
  EXPECT_EQ(c.tracker().stats().websocket_streams_lost, 0u);
}

TEST(ExchangeTrackerWebSocket, ServerSideReadsTheClientsFrames) {
  Connection c;
  c.send(Direction::ingress, kUpgrade, 10, Role::server);
  c.send(Direction::egress, kSwitching, 20, Role::server);
  c.send(Direction::ingress, joined(kMaskedHello, kClose.substr(0, 1)), 30, Role::server);
  ASSERT_EQ(c.websocket.size(), 1u);
  EXPECT_TRUE(c.websocket[0].from_client);
  EXPECT_EQ(c.websocket[0].message.payload, "Hello");
  EXPECT_EQ(c.websocket[0].connection.role, Role::server);
  EXPECT_EQ(c.websocket[0].path, "/chat");
  c.send(Direction::ingress, kClose.substr(1), 31, Role::server);  // a frame across two chunks
  ASSERT_EQ(c.websocket.size(), 2u);
  EXPECT_EQ(c.websocket[1].message.close_code, 1000);
  EXPECT_EQ(c.websocket[1].message.first_byte_ns, 30u);
  EXPECT_EQ(c.websocket[1].message.last_byte_ns, 31u);
}

TEST(ExchangeTrackerWebSocket, AGapGivesUpOneDirectionOnly) {
  Connection c;
  c.send(Direction::egress, kUpgrade, 10);
  c.send(Direction::ingress, kSwitching, 20);
  c.send(Direction::ingress, kDeflatedHello, 30);
  c.send(Direction::ingress, kClose, 40, Role::client, 7, 100, /*gap=*/5);
  c.send(Direction::ingress, kClose, 50);
  c.send(Direction::egress, kMaskedHello, 60);
  ASSERT_EQ(c.websocket.size(), 2u);
  EXPECT_FALSE(c.websocket[0].from_client);
  EXPECT_TRUE(c.websocket[1].from_client);
  EXPECT_EQ(c.tracker().stats().websocket_streams_lost, 1u);
}

TEST(ExchangeTrackerWebSocket, FramesTheHttpParserCouldNotKeepEndTheirDirection) {
  Connection c;
  c.send(Direction::ingress, kUpgrade, 10, Role::server);
  // The client's frames, read before the server's 101 was written: 80 KiB of pings.
  std::string pings;
  while (pings.size() < 80 * 1024) pings += "\x89\x80\x01\x02\x03\x04"sv;
  for (size_t at = 0; at < pings.size(); at += 16384)
    c.send(Direction::ingress, pings.substr(at, 16384), 20, Role::server);
  c.send(Direction::egress, kSwitching, 30, Role::server);
  c.send(Direction::egress, kClose, 40, Role::server);
  EXPECT_EQ(c.tracker().stats().websocket_streams_lost, 1u);
  // What was kept is reported; the server's direction goes on.
  ASSERT_FALSE(c.websocket.empty());
  EXPECT_TRUE(c.websocket.front().from_client);
  EXPECT_FALSE(c.websocket.back().from_client);
  EXPECT_EQ(c.websocket.back().message.close_code, 1000);
}

TEST(ExchangeTrackerWebSocket, OtherUpgradesAreNotFollowed) {
  Connection c;
  c.send(Direction::egress,
         "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
         "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
         10);
  c.send(Direction::ingress,
         "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 20);
  c.send(Direction::ingress, std::string(kMaskedHello), 30);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_TRUE(c.out[0].exchange.switched_protocols);
  EXPECT_TRUE(c.websocket.empty());
}

}  // namespace
}  // namespace tlstap
