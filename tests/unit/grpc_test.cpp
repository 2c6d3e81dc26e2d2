// gRPC message framing, :path splitting, schema-less protobuf decoding, and
// gRPC carried by a real HTTP/2 exchange (libnghttp2 client and server).
#include <gtest/gtest.h>

#include <string>

#include "nghttp2_peer.h"
#include "proto/grpc/grpc_messages.h"
#include "proto/grpc/protobuf_decode.h"
#include "proto/http2/http2_session.h"
#include "proto/http_exchange.h"

namespace tlstap::proto {
namespace {

using test::NameValues;
using test::Nghttp2Peers;

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

std::span<const std::byte> span(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// One length-prefixed gRPC message.
std::string grpc_frame(const std::string& message, bool compressed = false) {
  std::string out(1, compressed ? '\1' : '\0');
  for (int shift : {24, 16, 8, 0}) out += static_cast<char>((message.size() >> shift) & 0xff);
  return out + message;
}

// --- Message reader ------------------------------------------------------------

TEST(GrpcMessageReaderTest, SeveralMessagesInOnePiece) {
  GrpcMessageReader reader(1024, 100);
  std::vector<GrpcMessage> out;
  std::string data = grpc_frame("first") + grpc_frame("") + grpc_frame("third!", true);
  reader.feed(span(data), 7, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(out[0].compressed);
  EXPECT_EQ(out[0].length, 5u);
  EXPECT_EQ(out[0].data, "first");
  EXPECT_EQ(out[0].time_ns, 7u);
  EXPECT_EQ(out[1].length, 0u);
  EXPECT_EQ(out[1].data, "");
  EXPECT_TRUE(out[2].compressed);
  EXPECT_EQ(out[2].length, 6u);
  EXPECT_EQ(out[2].data, "third!");
  EXPECT_FALSE(reader.in_message());
}

TEST(GrpcMessageReaderTest, MessageAcrossPieces) {
  GrpcMessageReader reader(1024, 100);
  std::vector<GrpcMessage> out;
  std::string data = grpc_frame("spread over many pieces") + grpc_frame("x").substr(0, 3);
  for (size_t i = 0; i < data.size(); ++i) {
    reader.feed(span(data).subspan(i, 1), 100 + i, out);
    if (i + 1 < 28) {
      EXPECT_TRUE(out.empty());
    }
  }
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, "spread over many pieces");
  EXPECT_EQ(out[0].length, 23u);
  EXPECT_EQ(out[0].time_ns, 100u + 27u);  // the piece holding its last byte
  EXPECT_TRUE(reader.in_message());       // the second one's prefix is incomplete
}

TEST(GrpcMessageReaderTest, KeepsTheFirstBytesAndCountsTheRest) {
  GrpcMessageReader reader(4, 2);
  std::vector<GrpcMessage> out;
  std::string data = grpc_frame("0123456789") + grpc_frame("ab") + grpc_frame("dropped");
  reader.feed(span(data), 1, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].length, 10u);
  EXPECT_EQ(out[0].data, "0123");
  EXPECT_EQ(out[1].data, "ab");
  EXPECT_EQ(reader.dropped_messages(), 1u);
}

TEST(GrpcMessageReaderTest, BadCompressedFlagIsNotGrpc) {
  GrpcMessageReader reader(16, 16);
  std::vector<GrpcMessage> out;
  std::string data = bytes({2, 0, 0, 0, 1, 'x'}) + grpc_frame("later");
  reader.feed(span(data), 1, out);
  EXPECT_TRUE(reader.invalid());
  EXPECT_TRUE(out.empty());
}

TEST(GrpcPathTest, SplitsServiceAndMethod) {
  EXPECT_EQ(split_grpc_path("/grpc.health.v1.Health/Check"), (GrpcMethod{"grpc.health.v1.Health", "Check"}));
  EXPECT_EQ(split_grpc_path("/Svc/M"), (GrpcMethod{"Svc", "M"}));
  EXPECT_FALSE(split_grpc_path("grpc.Health/Check"));
  EXPECT_FALSE(split_grpc_path("/grpc.Health"));
  EXPECT_FALSE(split_grpc_path("/grpc.Health/"));
  EXPECT_FALSE(split_grpc_path("//Check"));
  EXPECT_FALSE(split_grpc_path("/a/b/c"));
  EXPECT_FALSE(split_grpc_path(""));
}

TEST(GrpcContentTypeTest, RecognisesGrpcVariants) {
  EXPECT_TRUE(is_grpc_content_type("application/grpc"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc+proto"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc+json"));
  EXPECT_FALSE(is_grpc_content_type("application/grpc-web"));
  EXPECT_FALSE(is_grpc_content_type("application/json"));
}

// --- Protobuf --------------------------------------------------------------------

std::string decoded(const std::string& wire) {
  auto json = decode_protobuf(span(wire));
  return json ? json->dump() : "invalid";
}

TEST(ProtobufDecodeTest, VarintField) {
  EXPECT_EQ(decoded(bytes({0x08, 0x96, 0x01})), R"([{"field":1,"wire":"varint","value":150}])");
}

TEST(ProtobufDecodeTest, EveryWireType) {
  std::string wire =
      bytes({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}) +  // 1: uint64 max
      bytes({0x11, 1, 0, 0, 0, 0, 0, 0, 0x80}) +                                   // 2: fixed64
      bytes({0x1d, 0xdb, 0x0f, 0x49, 0x40}) +                                      // 3: fixed32 (pi)
      bytes({0x22, 0x02, 'h', 'i'}) +                                              // 4: string
      bytes({0x2a, 0x03, 0x00, 0xff, 0x10});                                       // 5: bytes
  EXPECT_EQ(decoded(wire), R"([{"field":1,"wire":"varint","value":18446744073709551615},)"
                           R"({"field":2,"wire":"i64","value":9223372036854775809},)"
                           R"({"field":3,"wire":"i32","value":1078530011},)"
                           R"({"field":4,"wire":"len","string":"hi"},)"
                           R"({"field":5,"wire":"len","hex":"00ff10"}])");
}

TEST(ProtobufDecodeTest, NestedMessages) {
  // message Outer { Inner inner = 3; repeated int32 ids = 4; }  Inner { int32 a = 1; string name = 2; }
  std::string inner = bytes({0x08, 0x2a, 0x12, 0x05}) + "Alice";
  std::string deeper = bytes({0x1a, static_cast<int>(inner.size())}) + inner;
  std::string wire =
      bytes({0x1a, static_cast<int>(deeper.size())}) + deeper + bytes({0x20, 0x07, 0x20, 0x08});
  EXPECT_EQ(decoded(wire),
            R"([{"field":3,"wire":"len","message":[{"field":3,"wire":"len","message":[)"
            R"({"field":1,"wire":"varint","value":42},{"field":2,"wire":"len","string":"Alice"}]}]},)"
            R"({"field":4,"wire":"varint","value":7},{"field":4,"wire":"varint","value":8}])");
}

TEST(ProtobufDecodeTest, Utf8TextAndEmptyMessage) {
  EXPECT_EQ(decoded(bytes({0x0a, 0x06}) + "h\xc3\xa9llo"), R"([{"field":1,"wire":"len","string":"héllo"}])");
  EXPECT_EQ(decoded(bytes({0x0a, 0x00})), R"([{"field":1,"wire":"len","string":""}])");
  EXPECT_EQ(decoded(""), "[]");
  // Invalid UTF-8 that is no message either is shown as bytes.
  EXPECT_EQ(decoded(bytes({0x0a, 0x02, 0xc3, 0x28})), R"([{"field":1,"wire":"len","hex":"c328"}])");
  // A surrogate, an overlong form and a code point past U+10FFFF are not UTF-8 either.
  EXPECT_EQ(decoded(bytes({0x0a, 0x03, 0xed, 0xb9, 0x9a})), R"([{"field":1,"wire":"len","hex":"edb99a"}])");
  EXPECT_EQ(decoded(bytes({0x0a, 0x03, 0xe0, 0x80, 0xaf})), R"([{"field":1,"wire":"len","hex":"e080af"}])");
  EXPECT_EQ(decoded(bytes({0x0a, 0x04, 0xf4, 0x90, 0x80, 0x80})),
            R"([{"field":1,"wire":"len","hex":"f4908080"}])");
  EXPECT_EQ(decoded(bytes({0x0a, 0x04}) + "\xf0\x9f\x98\x80"),
            "[{\"field\":1,\"wire\":\"len\",\"string\":\"\xf0\x9f\x98\x80\"}]");
}

TEST(ProtobufDecodeTest, RejectsInvalidInput) {
  EXPECT_EQ(decoded(bytes({0x08})), "invalid");                  // varint missing
  EXPECT_EQ(decoded(bytes({0x08, 0x96})), "invalid");            // varint truncated
  EXPECT_EQ(decoded(bytes({0x0a, 0x05, 'a', 'b'})), "invalid");  // length beyond the end
  EXPECT_EQ(decoded(bytes({0x00, 0x01})), "invalid");            // field number 0
  EXPECT_EQ(decoded(bytes({0x0b, 0x0c})), "invalid");            // group start (wire type 3)
  EXPECT_EQ(decoded(bytes({0x0f, 0x00})), "invalid");            // wire type 7
  EXPECT_EQ(decoded(bytes({0x0d, 0x01, 0x02})), "invalid");      // fixed32 truncated
  EXPECT_EQ(decoded("GET / HTTP/1.1\r\n"), "invalid");           // text, not protobuf
  EXPECT_EQ(decoded(bytes({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})), "invalid");
}

TEST(ProtobufDecodeTest, DepthIsBounded) {
  std::string wire = bytes({0x08, 0x01});
  for (int i = 0; i < 12; ++i) wire = bytes({0x0a, static_cast<int>(wire.size())}) + wire;
  auto json = decode_protobuf(span(wire));
  ASSERT_TRUE(json);
  const nlohmann::ordered_json* level = &*json;
  int depth = 0;
  while ((*level)[0].contains("message")) {
    level = &(*level)[0]["message"];
    ++depth;
  }
  EXPECT_EQ(depth, kProtobufMaxDepth - 1);
  EXPECT_TRUE((*level)[0].contains("hex"));  // the rest, undecoded
}

// --- gRPC over HTTP/2 -----------------------------------------------------------------

NameValues grpc_request(const std::string& path) {
  return {{":method", "POST"},
          {":scheme", "https"},
          {":authority", "localhost:50051"},
          {":path", path},
          {"content-type", "application/grpc"},
          {"te", "trailers"}};
}

TEST(GrpcOverHttp2Test, MessagesAndStatusTrailers) {
  Nghttp2Peers peers({.max_data_frame = 4});  // every message spans several DATA frames
  std::string hello = bytes({0x0a, 0x05}) + "world";
  std::string reply = bytes({0x0a, 0x0b}) + "hello world" + bytes({0x10, 0x96, 0x01});
  int32_t id = peers.request(grpc_request("/helloworld.Greeter/SayHello"),
                             grpc_frame(hello) + grpc_frame(hello, true));
  peers.pump();
  peers.respond(id, {{":status", "200"}, {"content-type", "application/grpc"}}, grpc_frame(reply),
                {{"grpc-status", "0"}, {"grpc-message", "OK"}});
  peers.pump();

  Http2Session session(1 << 16);
  std::vector<Http2Stream> out;
  for (size_t i = 0; i < peers.chunks().size(); ++i) {
    session.feed(peers.chunks()[i].from_client, peers.chunks()[i].span(), 10 + i, out);
  }
  ASSERT_EQ(out.size(), 1u);
  const auto& s = out[0];
  EXPECT_EQ(split_grpc_path(s.request.target), (GrpcMethod{"helloworld.Greeter", "SayHello"}));
  ASSERT_EQ(s.request_messages.size(), 2u);
  EXPECT_EQ(s.request_messages[0].data, hello);
  EXPECT_FALSE(s.request_messages[0].compressed);
  EXPECT_TRUE(s.request_messages[1].compressed);
  EXPECT_LT(s.request_messages[0].time_ns, s.request_messages[1].time_ns);
  ASSERT_EQ(s.response_messages.size(), 1u);
  EXPECT_EQ(s.response_messages[0].length, reply.size());
  EXPECT_EQ(s.response_messages[0].data, reply);
  EXPECT_EQ(s.response.trailers, (Headers{{"grpc-status", "0"}, {"grpc-message", "OK"}}));
  EXPECT_EQ(decode_protobuf(span(s.response_messages[0].data))->dump(),
            R"([{"field":1,"wire":"len","string":"hello world"},{"field":2,"wire":"varint","value":150}])");
}

TEST(GrpcOverHttp2Test, SeveralMessagesInOneDataFrame) {
  Nghttp2Peers peers;
  std::string body = grpc_frame("a") + grpc_frame("bb") + grpc_frame("ccc");
  int32_t id = peers.request(grpc_request("/pkg.Stream/Upload"), body);
  peers.pump();
  peers.respond(id, {{":status", "200"},
                     {"content-type", "application/grpc"},
                     {"grpc-status", "12"},
                     {"grpc-message", "unimplemented"}});  // trailers-only response
  peers.pump();
  Http2Session session(1 << 16);
  std::vector<Http2Stream> out;
  for (const auto& c : peers.chunks()) session.feed(c.from_client, c.span(), 1, out);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].request_messages.size(), 3u);
  EXPECT_EQ(out[0].request_messages[2].data, "ccc");
  EXPECT_TRUE(out[0].response_messages.empty());
  EXPECT_EQ(out[0].response.status, 200);
  EXPECT_EQ(out[0].response.headers.back(), (Header{"grpc-message", "unimplemented"}));
}

TEST(GrpcOverHttp2Test, NotGrpcWithoutTheContentType) {
  Nghttp2Peers peers;
  int32_t id = peers.request({{":method", "POST"},
                              {":scheme", "https"},
                              {":authority", "a"},
                              {":path", "/x.Y/Z"},
                              {"content-type", "application/json"}},
                             grpc_frame("looks like grpc"));
  peers.pump();
  peers.respond(id, {{":status", "200"}});
  peers.pump();
  Http2Session session(1 << 16);
  std::vector<Http2Stream> out;
  for (const auto& c : peers.chunks()) session.feed(c.from_client, c.span(), 1, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].request_messages.empty());
  EXPECT_EQ(out[0].request.body, grpc_frame("looks like grpc"));
}

// A long stream keeps its first kMaxGrpcMessages messages and says how many more there were.
TEST(GrpcOverHttp2Test, MessagesPastTheLimitAreCounted) {
  Nghttp2Peers peers;
  std::string body;
  for (size_t i = 0; i < Http2Session::kMaxGrpcMessages + 3; ++i) body += grpc_frame(std::to_string(i));
  int32_t id = peers.request(grpc_request("/pkg.Stream/Upload"), body);
  peers.pump();
  peers.respond(id, {{":status", "200"}, {"content-type", "application/grpc"}}, grpc_frame("done"),
                {{"grpc-status", "0"}});
  peers.pump();
  Http2Session session(1 << 16);
  std::vector<Http2Stream> out;
  for (const auto& c : peers.chunks()) session.feed(c.from_client, c.span(), 1, out);
  ASSERT_EQ(out.size(), 1u);
  HttpExchange exchange = exchange_from_stream(std::move(out[0]));
  ASSERT_TRUE(exchange.grpc);
  ASSERT_EQ(exchange.grpc->request_messages.size(), Http2Session::kMaxGrpcMessages);
  EXPECT_EQ(exchange.grpc->request_messages.back().data, std::to_string(Http2Session::kMaxGrpcMessages - 1));
  EXPECT_EQ(exchange.grpc->request_messages_dropped, 3u);
  EXPECT_EQ(exchange.grpc->response_messages.size(), 1u);
  EXPECT_EQ(exchange.grpc->response_messages_dropped, 0u);
}

}  // namespace
}  // namespace tlstap::proto
