// "http" and "websocket" JSON lines, read back with nlohmann::json so every
// field is checked by value.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sink/json_sink.h"
#include "test_support.h"

namespace tlstap {
namespace {

using nlohmann::json;

ConnectionIdentity sample_connection() {
  ConnectionIdentity c;
  c.pid = 321;
  c.conn_uid = 99;
  c.comm = "python3";
  c.process = test::kPodProcess;
  c.library = Library::openssl;
  c.local = test::ipv4_endpoint("127.0.0.1", 40000);
  c.remote = test::ipv4_endpoint("127.0.0.1", 8443);
  c.role = Role::client;
  return c;
}

proto::HttpExchange sample_http1_exchange() {
  proto::HttpExchange x;
  x.version = "1.1";
  x.request.emplace();
  x.request->version = "1.1";
  x.request->method = "POST";
  x.request->target = "/api/items";
  x.request->authority = "localhost:8443";
  x.request->headers = {{"Host", "localhost:8443"},
                        {"Authorization", "Bearer abc.def"},
                        {"Cookie", "a=1"},
                        {"Accept", "text/plain"},
                        {"Accept", "application/json"}};
  x.request->body = "{\"x\":1}";
  x.request->body_length = 7;
  x.request->first_byte_ns = 1'000;
  x.request->last_byte_ns = 2'000;
  x.response.emplace();
  x.response->version = "1.1";
  x.response->status = 201;
  x.response->headers = {{"Content-Length", "3"}, {"Set-Cookie", "s=2"}};
  x.response->body = std::string("\x00\x01\x02", 3);
  x.response->body_length = 3;
  x.response->first_byte_ns = 5'000;
  x.response->last_byte_ns = 6'500;
  return x;
}

TEST(FormatJsonExchange, Http1EveryFieldWithSecretsMasked) {
  ConnectionIdentity c = sample_connection();
  proto::HttpExchange x = sample_http1_exchange();
  std::string line = format_json_exchange({x, c}, false);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  json j = json::parse(line);
  EXPECT_EQ(j, (json{{"type", "http"},
                     {"ts", 1000},
                     {"version", "1.1"},
                     {"pid", 321},
                     {"comm", "python3"},
                     {"exe", "/usr/bin/python3.11"},
                     {"cgroup", c.process.cgroup},
                     {"container_id", c.process.container_id},
                     {"pod_uid", "8c6b2f1e-5a4d-4c3b-9a8f-7e6d5c4b3a21"},
                     {"pod_namespace", "shop"},
                     {"pod_name", "api-7d9f8c6b5-x2x9q"},
                     {"container_name", "api"},
                     {"netns", 4026532301u},
                     {"library", "openssl"},
                     {"local", "127.0.0.1:40000"},
                     {"remote", "127.0.0.1:8443"},
                     {"role", "client"},
                     {"conn_id", 99},
                     {"method", "POST"},
                     {"authority", "localhost:8443"},
                     {"path", "/api/items"},
                     {"status", 201},
                     {"request_headers",
                      {{"host", "localhost:8443"},
                       {"authorization", "<masked 14 bytes>"},
                       {"cookie", "<masked 3 bytes>"},
                       {"accept", {"text/plain", "application/json"}}}},
                     {"request_body_len", 7},
                     {"request_body", "{\"x\":1}"},
                     {"response_headers", {{"content-length", "3"}, {"set-cookie", "<masked 3 bytes>"}}},
                     {"response_body_len", 3},
                     {"response_body_base64", "AAEC"},
                     {"latency_ns", 5500}}))
      << j.dump(2);
}

// Names and values are whatever the process sent: escaped, grouped in the
// place of their first appearance whatever their case, never breaking the line.
TEST(FormatJsonExchange, HeaderNamesEscapedAndRepeatsGroupedAcrossCase) {
  ConnectionIdentity c = sample_connection();
  proto::HttpExchange x = sample_http1_exchange();
  x.request->headers = {
      {"X-\"Odd\\", "v\"1"}, {"Via", "a"}, {"x-\"odd\\", "v2\n"}, {"VIA", "b"}, {"Via", "c"}};
  std::string line = format_json_exchange({x, c}, false);
  nlohmann::ordered_json headers = nlohmann::ordered_json::parse(line)["request_headers"];
  EXPECT_EQ(headers.dump(), R"({"x-\"odd\\":["v\"1","v2\n"],"via":["a","b","c"]})");
}

TEST(FormatJsonExchange, ShowSecretsOnRequest) {
  ConnectionIdentity c = sample_connection();
  proto::HttpExchange x = sample_http1_exchange();
  json j = json::parse(format_json_exchange({x, c}, true));
  EXPECT_EQ(j["request_headers"]["authorization"], "Bearer abc.def");
  EXPECT_EQ(j["response_headers"]["set-cookie"], "s=2");
}

TEST(FormatJsonExchange, MissingSidesAndTruncatedBodies) {
  ConnectionIdentity c = sample_connection();
  proto::HttpExchange x = sample_http1_exchange();
  x.response.reset();
  x.incomplete = true;
  x.request->body_length = 100000;
  json j = json::parse(format_json_exchange({x, c}, false));
  EXPECT_FALSE(j.contains("status"));
  EXPECT_FALSE(j.contains("latency_ns"));
  EXPECT_EQ(j["incomplete"], true);
  EXPECT_EQ(j["request_body_len"], 100000);
  EXPECT_EQ(j["request_body_truncated"], true);

  proto::HttpExchange response_only = sample_http1_exchange();
  response_only.request.reset();
  json r = json::parse(format_json_exchange({response_only, c}, false));
  EXPECT_EQ(r["request_unseen"], true);
  EXPECT_EQ(r["ts"], 5000);
  EXPECT_FALSE(r.contains("method"));
}

TEST(FormatJsonExchange, DecodedBodiesNameTheirCodingAndCountTheBytesSent) {
  ConnectionIdentity c = sample_connection();
  proto::HttpExchange x = sample_http1_exchange();
  x.response->headers = {{"Content-Encoding", "gzip"}};
  x.response->body = "decoded text";
  x.response->body_length = 40;
  x.response->decoding.codings = "gzip";
  x.response->decoding.whole = true;
  x.request->body_length = 7;
  x.request->decoding.error = "br: PADDING_1";
  json j = json::parse(format_json_exchange({x, c}, false));
  EXPECT_EQ(j["response_body"], "decoded text");
  EXPECT_EQ(j["response_body_decoded"], "gzip");
  EXPECT_EQ(j["response_body_len"], 40);
  EXPECT_FALSE(j.contains("response_body_truncated"));  // whole, though shorter than what was sent
  EXPECT_EQ(j["request_body_decode_error"], "br: PADDING_1");
  EXPECT_FALSE(j.contains("request_body_decoded"));

  x.response->decoding.whole = false;
  EXPECT_EQ(json::parse(format_json_exchange({x, c}, false))["response_body_truncated"], true);
}

// Bodies are escaped by tlstap's own writer (the serializer's was slow): every
// character JSON must escape, and text that is not printable ASCII goes as base64.
TEST(FormatJsonExchange, BodiesEscapedOrBase64) {
  ConnectionIdentity c = sample_connection();
  proto::HttpExchange x = sample_http1_exchange();
  const std::string text = "line \"one\"\r\n\ttab \\ back\\slash {}";
  x.request->body = text;
  x.request->body_length = text.size();
  for (auto [binary, base64] :
       {std::pair{std::string("caf\xc3\xa9"), "Y2Fmw6k="}, std::pair{std::string("del\x7f"), "ZGVsfw=="},
        std::pair{std::string("nul\0x", 5), "bnVsAHg="}}) {
    x.response->body = binary;
    x.response->body_length = binary.size();
    json j = json::parse(format_json_exchange({x, c}, false));
    EXPECT_EQ(j["request_body"], text);
    EXPECT_FALSE(j.contains("response_body")) << binary;
    EXPECT_EQ(j["response_body_base64"], base64);
  }
}

// The escaper scans 16 bytes at a time: a character to escape, or one that
// sends the body to base64, is found wherever it falls in a block or the tail.
TEST(FormatJsonExchange, EscapesFoundAtEveryPositionOfABlock) {
  ConnectionIdentity c = sample_connection();
  proto::HttpExchange x = sample_http1_exchange();
  for (char special : {'"', '\\', '\n', '\r', '\t', '\x01', '\x1f', '\x7f', '\x80', '\xff'}) {
    for (size_t at = 0; at < 40; ++at) {
      std::string text(40, 'x');
      text[at] = special;
      x.request->body = text;
      x.request->body_length = text.size();
      json j = json::parse(format_json_exchange({x, c}, false));
      bool printable =
          special == '"' || special == '\\' || special == '\n' || special == '\r' || special == '\t';
      if (printable) {
        EXPECT_EQ(j["request_body"], text) << at;
      } else {
        EXPECT_FALSE(j.contains("request_body")) << int(special) << " at " << at;
        EXPECT_TRUE(j.contains("request_body_base64")) << int(special) << " at " << at;
      }
    }
  }
}

TEST(FormatJsonExchange, GrpcCallWithDecodedMessages) {
  ConnectionIdentity c = sample_connection();
  proto::HttpExchange x;
  x.version = "2";
  x.stream_id = 3;
  x.request.emplace();
  x.request->version = "2";
  x.request->method = "POST";
  x.request->target = "/grpc.health.v1.Health/Check";
  x.request->authority = "localhost:50051";
  x.request->headers = {{":method", "POST"}, {"content-type", "application/grpc"}};
  x.request->first_byte_ns = 10;
  x.response.emplace();
  x.response->version = "2";
  x.response->status = 200;
  x.response->trailers = {{"grpc-status", "0"}};
  x.response->last_byte_ns = 30;
  x.response->first_byte_ns = 20;
  proto::GrpcCall call;
  call.service = "grpc.health.v1.Health";
  call.method = "Check";
  call.status = 0;
  call.request_messages.push_back({false, 0, "", 10});
  // field 1, varint 1 (SERVING)
  call.response_messages.push_back({false, 2, std::string("\x08\x01", 2), 20});
  call.response_messages_dropped = 7;
  x.grpc = call;
  json j = json::parse(format_json_exchange({x, c}, false));
  EXPECT_EQ(j["grpc"]["response_messages_dropped"], 7);
  EXPECT_FALSE(j["grpc"].contains("request_messages_dropped"));
  EXPECT_EQ(j["stream_id"], 3);
  EXPECT_EQ(j["request_headers"],
            (json{{"content-type", "application/grpc"}}));  // pseudo-headers have fields
  EXPECT_EQ(j["response_trailers"], (json{{"grpc-status", "0"}}));
  EXPECT_EQ(j["grpc"]["service"], "grpc.health.v1.Health");
  EXPECT_EQ(j["grpc"]["method"], "Check");
  EXPECT_EQ(j["grpc"]["status"], 0);
  ASSERT_EQ(j["grpc"]["response_messages"].size(), 1u);
  EXPECT_EQ(j["grpc"]["response_messages"][0]["length"], 2);
  EXPECT_EQ(j["grpc"]["response_messages"][0]["compressed"], false);
  EXPECT_TRUE(j["grpc"]["response_messages"][0].contains("protobuf")) << j.dump(2);
}

TEST(FormatJsonExchange, CompressedGrpcMessagesSayHowTheyWereDecoded) {
  proto::HttpExchange x;
  x.version = "2";
  x.request.emplace();
  x.request->headers = {{"content-type", "application/grpc"}, {"grpc-encoding", "gzip"}};
  proto::GrpcCall call;
  call.service = "tlstap.Greeter";
  call.method = "SayHello";
  const std::string hello("\x0a\x02hi", 4);  // field 1, "hi"
  proto::GrpcMessage decoded{.compressed = true, .length = 24, .data = hello};
  decoded.decoding = {.codings = "gzip", .whole = true};
  proto::GrpcMessage in_part{.compressed = true, .length = 9000, .data = hello.substr(0, 3)};
  in_part.decoding = {.codings = "gzip", .whole = false};
  proto::GrpcMessage refused{.compressed = true, .length = 3, .data = "abc"};
  refused.decoding.error = "snappy: a content coding tlstap does not decode";
  call.request_messages = {decoded, in_part, refused};
  x.grpc = call;
  json messages =
      json::parse(format_json_exchange({x, sample_connection()}, false))["grpc"]["request_messages"];
  EXPECT_EQ(messages, json::parse(R"([
      {"compressed":true,"length":24,"decoded":"gzip","protobuf":[{"field":1,"wire":"len","string":"hi"}]},
      {"compressed":true,"length":9000,"decoded":"gzip","truncated":true,"data_base64":"CgJo"},
      {"compressed":true,"length":3,"decode_error":"snappy: a content coding tlstap does not decode",
       "data_base64":"YWJj"}])"));
}

TEST(FormatJsonWebSocket, TextMessageEveryField) {
  ConnectionIdentity c = sample_connection();
  proto::WebSocketMessage m;
  m.opcode = proto::WebSocketOpcode::text;
  m.payload = "h\xc3\xa9llo \"you\"";
  m.length = 20;
  m.frames = 2;
  m.compressed = true;
  m.first_byte_ns = 1'500;
  c.process = {.exe = "/usr/bin/python3.11"};  // a host process whose placement could not be read
  json j = json::parse(format_json_websocket({m, c, true, "chat.example:8443", "/rooms/7?v=2"}));
  EXPECT_EQ(
      j, json::parse(R"({"type":"websocket","ts":1500,"pid":321,"comm":"python3","exe":"/usr/bin/python3.11",
      "library":"openssl","local":"127.0.0.1:40000","remote":"127.0.0.1:8443","role":"client","conn_id":99,
      "authority":"chat.example:8443","path":"/rooms/7?v=2","from":"client","opcode":"text","length":20,"frames":2,"compressed":true,"payload_truncated":true,
      "payload":"h\u00e9llo \"you\""})"));
}

TEST(FormatJsonWebSocket, BinaryAsBase64AndCloseWithItsCode) {
  ConnectionIdentity c = sample_connection();
  proto::WebSocketMessage binary;
  binary.opcode = proto::WebSocketOpcode::binary;
  binary.payload = std::string("\x00\xff\x10", 3);
  binary.length = 3;
  binary.frames = 1;
  json b = json::parse(format_json_websocket({binary, c, false}));
  EXPECT_EQ(b["from"], "server");
  EXPECT_EQ(b["payload_base64"], "AP8Q");
  EXPECT_FALSE(b.contains("payload") || b.contains("frames") || b.contains("compressed"));
  EXPECT_FALSE(b.contains("authority") || b.contains("path")) << "the upgrade request was not seen";

  proto::WebSocketMessage close;
  close.opcode = proto::WebSocketOpcode::close;
  close.close_code = 1000;
  close.payload = "bye";
  close.length = 3;
  close.frames = 1;
  json k = json::parse(format_json_websocket({close, c, true}));
  EXPECT_EQ(k["opcode"], "close");
  EXPECT_EQ(k["close_code"], 1000);
  EXPECT_EQ(k["payload"], "bye");

  proto::WebSocketMessage failed;
  failed.opcode = proto::WebSocketOpcode::text;
  failed.compressed = failed.inflate_failed = true;
  failed.frames = 1;
  json f = json::parse(format_json_websocket({failed, c, true}));
  EXPECT_EQ(f["inflate_failed"], true);
  EXPECT_EQ(f["payload"], "");

  // A heartbeat ping carrying a binary timestamp: not text, so base64, no byte replaced.
  proto::WebSocketMessage ping;
  ping.opcode = proto::WebSocketOpcode::ping;
  ping.payload = std::string("\x00\x00\x01\x8c\xff\x10\x20\x30", 8);
  ping.length = 8;
  ping.frames = 1;
  json p = json::parse(format_json_websocket({ping, c, true}));
  EXPECT_FALSE(p.contains("payload"));
  EXPECT_EQ(p["payload_base64"], "AAABjP8QIDA=");
}

}  // namespace
}  // namespace tlstap
