// Human-readable records: header line, then text or a hexdump; WebSocket
// messages: one line, the payload inline when short, below it with details.
#include "sink/text_sink.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "test_support.h"

namespace tlstap {
namespace {

using test::as_bytes;

constexpr uint64_t kWallTime = 1700000000123456789ULL;  // 22:13:20.123456 UTC

class FormatTextRecord : public testing::Test {
 protected:
  // The header shows local time: pin the zone so the expected text is exact.
  static void SetUpTestSuite() {
    setenv("TZ", "UTC", 1);
    tzset();
  }
};

TEST_F(FormatTextRecord, PrintablePayloadFollowsTheHeader) {
  DataEvent e = test::sample_data_event(as_bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\n"));
  EXPECT_EQ(format_text_record({e, kWallTime, test::kCurlProcess, Role::client, 0}),
            "22:13:20.123456 curl[4242/4243] openssl SSL_read_ex ingress 10.1.2.3:51000 <- 93.184.216.34:443 "
            "(client) 41 bytes\n"
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\n");
}

TEST_F(FormatTextRecord, AContainersShortId) {
  DataEvent e = test::sample_data_event(as_bytes("ok\n"));
  ProcessIdentity in_container{.exe = "/usr/bin/curl", .container_id = "3f4e5a6b7c8d" + std::string(52, '0')};
  EXPECT_EQ(format_text_record({e, kWallTime, in_container, Role::client, 0}),
            "22:13:20.123456 curl[4242/4243] ctr:3f4e5a6b7c8d openssl SSL_read_ex ingress 10.1.2.3:51000 <- "
            "93.184.216.34:443 (client) 3 bytes\nok\n");
  in_container.pod_namespace = "shop";
  in_container.pod_name = "api-0";
  in_container.container_name = "api\x1b[2J";  // whatever the runtime was told
  EXPECT_EQ(format_text_record({e, kWallTime, in_container, Role::client, 0}),
            "22:13:20.123456 curl[4242/4243] ctr:3f4e5a6b7c8d pod:shop/api-0/api\\x1b[2J openssl SSL_read_ex "
            "ingress "
            "10.1.2.3:51000 <- 93.184.216.34:443 (client) 3 bytes\nok\n");
}

TEST_F(FormatTextRecord, EgressChunkOfALargerCallAfterAGap) {
  DataEvent e = test::sample_data_event(as_bytes("GET /"));
  e.direction = Direction::egress;
  e.function = TlsFunction::ssl_write;
  e.call_len = 9;
  e.chunk_offset = 4;
  EXPECT_EQ(format_text_record({e, kWallTime, test::kGoneProcess, Role::client, 512}),
            "22:13:20.123456 curl[4242/4243] openssl SSL_write egress 10.1.2.3:51000 -> 93.184.216.34:443 "
            "(client) 5 bytes [4..9 of 9] (after 512 lost bytes)\n"
            "GET /\n");
}

TEST_F(FormatTextRecord, BinaryPayloadIsHexdumped) {
  constexpr unsigned char kTlsAlert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
  DataEvent e = test::sample_data_event(std::as_bytes(std::span(kTlsAlert)));
  e.local = Endpoint{};
  e.remote = test::ipv6_endpoint("::1", 8443);
  EXPECT_EQ(format_text_record({e, kWallTime, test::kGoneProcess, Role::unknown, 0}),
            "22:13:20.123456 curl[4242/4243] openssl SSL_read_ex ingress ? <- [::1]:8443 (unknown) 7 bytes\n"
            "  00000000  15 03 03 00 02 02 28                              |......(|\n");
}

TEST_F(FormatTextRecord, EmptyPayloadIsJustTheHeader) {
  DataEvent e = test::sample_data_event({});
  EXPECT_EQ(format_text_record({e, kWallTime, test::kGoneProcess, Role::server, 0}),
            "22:13:20.123456 curl[4242/4243] openssl SSL_read_ex ingress 10.1.2.3:51000 <- 93.184.216.34:443 "
            "(server) 0 bytes\n");
}

class FormatTextWebSocket : public FormatTextRecord {
 protected:
  ConnectionIdentity connection() const {
    return {.pid = 321,
            .comm = "python3",
            .local = test::ipv4_endpoint("127.0.0.1", 9443),
            .remote = test::ipv4_endpoint("127.0.0.1", 40000),
            .role = Role::server};
  }
  static proto::WebSocketMessage message(proto::WebSocketOpcode opcode, std::string payload) {
    proto::WebSocketMessage m;
    m.opcode = opcode;
    m.length = payload.size();
    m.payload = std::move(payload);
    m.frames = 1;
    m.first_byte_ns = kWallTime;
    return m;
  }
  static constexpr std::string_view kPrefix =
      "22:13:20.123456 python3[321] 127.0.0.1:9443 <- 127.0.0.1:40000 (server) ";
};

TEST_F(FormatTextWebSocket, ShortTextInlineAndMarkedByItsSender) {
  auto m = message(proto::WebSocketOpcode::text, "héllo");
  m.compressed = true;
  m.frames = 3;
  ConnectionIdentity c = connection();
  EXPECT_EQ(format_text_websocket({m, c, true}, {}),
            std::string(kPrefix) + "WebSocket > text 6 B compressed in 3 frames \"héllo\"\n");
  auto close = message(proto::WebSocketOpcode::close, "bye");
  close.close_code = 1001;
  EXPECT_EQ(format_text_websocket({close, c, false}, {}),
            std::string(kPrefix) + "WebSocket < close 3 B code 1001 \"bye\"\n");
}

TEST_F(FormatTextWebSocket, LongMultilineOrUnsafePayloadsOnlyWithDetails) {
  ConnectionIdentity c = connection();
  auto lines = message(proto::WebSocketOpcode::text, "one\ntwo");
  EXPECT_EQ(format_text_websocket({lines, c, true}, {}), std::string(kPrefix) + "WebSocket > text 7 B\n");
  EXPECT_EQ(format_text_websocket({lines, c, true}, {.details = true}),
            std::string(kPrefix) + "WebSocket > text 7 B\none\ntwo\n");

  auto escape = message(proto::WebSocketOpcode::text, "\x1b[2J");  // would clear the terminal
  EXPECT_EQ(format_text_websocket({escape, c, true}, {.details = true}),
            std::string(kPrefix) + "WebSocket > text 4 B\n" + hexdump(as_bytes("\x1b[2J")));
  auto raw_csi = message(proto::WebSocketOpcode::text, std::string("\x9b"
                                                                   "2J"));  // CSI to an 8-bit terminal
  EXPECT_EQ(format_text_websocket({raw_csi, c, true}, {.details = true}), std::string(kPrefix) +
                                                                              "WebSocket > text 3 B\n" +
                                                                              hexdump(as_bytes("\x9b"
                                                                                               "2J")));
  auto csi = message(proto::WebSocketOpcode::text,
                     "\xc2\x9b"
                     "2J");  // U+009B, the C1 form of ESC [
  EXPECT_EQ(format_text_websocket({csi, c, true}, {.details = true}), std::string(kPrefix) +
                                                                          "WebSocket > text 4 B\n" +
                                                                          hexdump(as_bytes("\xc2\x9b"
                                                                                           "2J")));

  auto binary = message(proto::WebSocketOpcode::binary, "abc");
  binary.length = 10;
  EXPECT_EQ(
      format_text_websocket({binary, c, true}, {.details = true}),
      std::string(kPrefix) + "WebSocket > binary 10 B\n" + hexdump(as_bytes("abc")) + "  > (7 more bytes)\n");

  auto failed = message(proto::WebSocketOpcode::text, "");
  failed.compressed = failed.inflate_failed = true;
  EXPECT_EQ(format_text_websocket({failed, c, false}, {.details = true}),
            std::string(kPrefix) + "WebSocket < text 0 B compressed (could not be inflated)\n");
}

TEST_F(FormatTextWebSocket, ThePathOfTheUpgradeRequestNamesTheSocket) {
  auto m = message(proto::WebSocketOpcode::text, "hi");
  ConnectionIdentity c = connection();
  EXPECT_EQ(format_text_websocket({m, c, false, "chat.local", "/rooms/7"}, {}),
            std::string(kPrefix) + "WebSocket /rooms/7 < text 2 B \"hi\"\n");
  EXPECT_EQ(format_text_websocket({m, c, false, "chat.local", "/\x1b]0;owned\x07"}, {}),
            std::string(kPrefix) + "WebSocket /\\x1b]0;owned\\x07 < text 2 B \"hi\"\n");
}

class FormatTextExchange : public FormatTextRecord {
 protected:
  static proto::HttpExchange exchange() {
    proto::HttpExchange x;
    x.version = "1.1";
    x.request.emplace();
    x.request->method = "POST";
    x.request->authority = "api.local";
    x.request->target = "/v1/items";
    x.request->headers = {{"host", "api.local"}, {"authorization", "Bearer abc"}};
    x.request->body = "{}";
    x.request->body_length = 2;
    x.request->first_byte_ns = x.request->last_byte_ns = kWallTime;
    x.response.emplace();
    x.response->status = 201;
    x.response->headers = {{"content-length", "0"}};
    x.response->first_byte_ns = x.response->last_byte_ns = kWallTime + 2'500'000;
    return x;
  }
  static ConnectionIdentity connection() {
    return {.pid = 77,
            .comm = "curl",
            .local = test::ipv4_endpoint("10.0.0.1", 50000),
            .remote = test::ipv4_endpoint("10.0.0.2", 443),
            .role = Role::client};
  }
};

TEST_F(FormatTextExchange, OneLineAndWithDetailsHeadersAndBodies) {
  auto x = exchange();
  ConnectionIdentity c = connection();
  const std::string line =
      "22:13:20.123456 curl[77] 10.0.0.1:50000 -> 10.0.0.2:443 (client) HTTP/1.1 POST api.local/v1/items -> "
      "201 "
      "2.5 ms req 2 B resp 0 B\n";
  EXPECT_EQ(format_text_exchange({x, c}, {}), line);
  EXPECT_EQ(format_text_exchange({x, c}, {.details = true}),
            line + "  > host: api.local\n  > authorization: <masked 10 bytes>\n{}\n  < content-length: 0\n");
}

TEST_F(FormatTextExchange, DecodedBodiesSayFromWhatAndUndecodedOnesWhyNot) {
  auto x = exchange();
  x.request->headers.clear();
  x.request->body.clear();
  x.request->body_length = 0;
  x.response->headers = {{"content-encoding", "gzip"}};
  x.response->body = "hello\n";
  x.response->body_length = 26;
  x.response->decoding.codings = "gzip";
  x.response->decoding.whole = true;
  ConnectionIdentity c = connection();
  std::string shown = format_text_exchange({x, c}, {.details = true});
  EXPECT_NE(shown.find("  < content-encoding: gzip\nhello\n  < (body decoded from gzip: 26 bytes sent)\n"),
            std::string::npos)
      << shown;

  x.response->headers = {{"content-encoding", "compress\x1b"}};
  x.response->body = "?";
  x.response->body_length = 1;
  x.response->decoding.codings.clear();
  x.response->decoding.error = "compress\x1b: a content coding tlstap does not decode";
  shown = format_text_exchange({x, c}, {.details = true});
  EXPECT_NE(shown.find("  < (body not decoded: compress\\x1b: a content coding tlstap does not decode)\n"),
            std::string::npos)
      << shown;
}

// Under a gRPC call's headers: its messages, each readable one decoded as
// protoc --decode_raw lays it out, instead of the HTTP/2 body's bytes.
TEST_F(FormatTextExchange, GrpcMessagesAreShownDecoded) {
  auto x = exchange();
  x.request->headers = {{"grpc-encoding", "gzip"}};
  x.request->body = "length-prefixed";
  x.request->body_length = (5 + 31) + (5 + 3);  // every byte in the two messages: not shown
  x.response->headers.clear();
  x.grpc.emplace();
  // 1 "hi\nyou \"q\"", 2 {3: 150}, 4 bytes ff, 5 fixed32 1, 6 fixed64 2
  const std::string fields(
      "\x0a\x0ahi\nyou \"q\"\x12\x03\x18\x96\x01\x22\x01\xff\x2d\x01\x00\x00\x00"
      "\x31\x02\x00\x00\x00\x00\x00\x00\x00",
      34);
  proto::GrpcMessage decoded{.compressed = true, .length = 31, .data = fields};
  decoded.decoding = {.codings = "gzip", .whole = true};
  proto::GrpcMessage refused{.compressed = true, .length = 3, .data = "\x1f\x8b\x08"};
  refused.decoding.error = "snappy: a content coding tlstap does not decode";
  x.grpc->request_messages = {decoded, refused};
  proto::GrpcMessage kept_in_part{.length = 5000, .data = "\x08"};
  proto::GrpcMessage decoded_in_part{.compressed = true, .length = 20, .data = "\x08\x01"};
  decoded_in_part.decoding = {.codings = "deflate", .whole = false};
  x.grpc->response_messages = {kept_in_part, decoded_in_part};
  x.grpc->response_messages_dropped = 2;  // the response's body is then held whatever its length
  std::string shown = format_text_exchange({x, connection()}, {.details = true});
  std::string_view details = std::string_view(shown).substr(shown.find('\n') + 1);
  EXPECT_EQ(
      details,
      "  > grpc-encoding: gzip\n"
      "  > (grpc message 1: 31 B gzip compressed, decoded)\n"
      "  >   1: \"hi\\x0ayou \\\"q\\\"\"\n"
      "  >   2 {\n"
      "  >     3: 150\n"
      "  >   }\n"
      "  >   4: \"\\xff\"\n"
      "  >   5: 0x00000001\n"
      "  >   6: 0x0000000000000002\n"
      "  > (grpc message 2: 3 B compressed; not decoded: snappy: a content coding tlstap does not decode)\n" +
          hexdump(as_bytes("\x1f\x8b\x08")) + "  < (grpc message 1: 4.9 KiB)\n" + hexdump(as_bytes("\x08")) +
          "  < (the rest not kept)\n" + "  < (grpc message 2: 20 B deflate compressed, decoded)\n" +
          hexdump(as_bytes("\x08\x01")) + "  < (decoded in part)\n" +
          "  < (2 more grpc messages, not kept)\n")
      << shown;
}

// What is not all in whole messages is shown as sent: a proxy's error page
// answering a gRPC request, a message that is not protobuf.
TEST_F(FormatTextExchange, GrpcSidesShowWhatNoMessageHolds) {
  auto x = exchange();
  x.request->headers.clear();
  x.request->body_length = 5 + 2;
  x.response->status = 502;
  x.response->headers = {{"content-type", "text/html"}};
  x.response->body = "<h1>Bad Gateway</h1>";
  x.response->body_length = x.response->body.size();
  x.grpc.emplace();
  x.grpc->request_messages = {{.length = 2, .data = "{}"}, {.length = 2, .data = std::string("\x07\x07", 2)}};
  x.request->body_length = 2 * (5 + 2);
  std::string shown = format_text_exchange({x, connection()}, {.details = true});
  std::string_view details = std::string_view(shown).substr(shown.find('\n') + 1);
  EXPECT_EQ(details, "  > (grpc message 1: 2 B)\n{}\n  > (grpc message 2: 2 B)\n" +
                         hexdump(as_bytes("\x07\x07")) +
                         "  > (not a protobuf message)\n  < content-type: text/html\n<h1>Bad Gateway</h1>\n")
      << shown;
}

TEST_F(FormatTextExchange, WhatTheTerminalWouldObeyIsEscaped) {
  // A peer chooses targets and headers, any local user a process name.
  auto x = exchange();
  x.request->target = "/\x1b[2J";
  x.request->headers = {{"x-note", "a\r\nforged: line\x9b"}};
  x.request->body.clear();
  x.request->body_length = 0;
  x.response->headers.clear();
  ConnectionIdentity c = connection();
  c.comm = "evil\x1b]0;t\x07";
  EXPECT_EQ(format_text_exchange({x, c}, {.details = true}),
            "22:13:20.123456 evil\\x1b]0;t\\x07[77] 10.0.0.1:50000 -> 10.0.0.2:443 (client) HTTP/1.1 POST "
            "api.local/\\x1b[2J -> 201 2.5 ms req 0 B resp 0 B\n"
            "  > x-note: a\\x0d\\x0aforged: line\\x9b\n");
}

TEST(IsPrintableText, TextControlsOnly) {
  EXPECT_TRUE(is_printable_text(as_bytes("")));
  EXPECT_TRUE(is_printable_text(as_bytes("plain ~ text\twith\r\nbreaks")));
  EXPECT_FALSE(is_printable_text(as_bytes(std::string_view("nul\0", 4))));
  EXPECT_FALSE(is_printable_text(as_bytes("escape \x1b[0m")));
  EXPECT_FALSE(is_printable_text(as_bytes("del \x7f")));
  EXPECT_FALSE(is_printable_text(as_bytes("utf-8 \xc3\xa9")));
}

TEST(Hexdump, SixteenBytesPerRowWithAsciiColumn) {
  std::string bytes;
  for (int i = 0; i < 17; ++i) bytes += static_cast<char>(0x3a + i);  // ":;<=>?@ABC..."
  bytes[1] = '\0';
  EXPECT_EQ(hexdump(as_bytes(bytes)),
            "  00000000  3a 00 3c 3d 3e 3f 40 41  42 43 44 45 46 47 48 49  |:.<=>?@ABCDEFGHI|\n"
            "  00000010  4a                                                |J|\n");
  EXPECT_EQ(hexdump({}), "");
}

TEST(Hexdump, ExactlyOneRow) {
  std::string bytes(16, '\xff');
  EXPECT_EQ(hexdump(as_bytes(bytes)),
            "  00000000  ff ff ff ff ff ff ff ff  ff ff ff ff ff ff ff ff  |................|\n");
}

}  // namespace
}  // namespace tlstap
