// The HTTP/1.x parser on streams as curl, nginx and browsers write them, cut
// into chunks every way a capture can cut them.
#include "proto/http1/http1_parser.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "test_support.h"

namespace tlstap::proto {

// gtest prints headers readably in failures.
void PrintTo(const Header& header, std::ostream* os) {
  *os << header.name << ": " << header.value;
}

namespace {

using namespace std::literals;
using test::as_bytes;
using Kind = Http1Parser::Kind;

constexpr std::string_view kCurlGet =
    "GET /index.html HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "\r\n";

constexpr std::string_view kNginxOk =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Tue, 25 Nov 2025 04:00:00 GMT\r\n"
    "Content-Type: text/html\r\n"
    "Content-Length: 13\r\n"
    "Connection: keep-alive\r\n"
    "ETag: \"6560a1b2-d\"\r\n"
    "\r\n"
    "Hello, world!";

constexpr std::string_view kCurlPost =
    "POST /api/items?x=1 HTTP/1.1\r\n"
    "Host: api.example.com:8443\r\n"
    "content-type: application/json\r\n"
    "content-length: 11\r\n"
    "\r\n"
    "{\"id\": 42}\n";

// Wikipedia's chunked example, with a chunk extension and a trailer.
constexpr std::string_view kChunkedWithTrailer =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Trailer: Expires\r\n"
    "\r\n"
    "4;lang=en\r\n"
    "Wiki\r\n"
    "7 ; name=\"quoted value\"\r\n"
    "pedia i\r\n"
    "B\r\n"
    "n \r\nchunks.\r\n"
    "0\r\n"
    "Expires: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
    "X-Checksum:  abc \r\n"
    "\r\n";

HttpMessage curl_get(uint64_t first_ns, uint64_t last_ns) {
  return {.version = "1.1",
          .method = "GET",
          .target = "/index.html",
          .authority = "example.com",
          .headers = {{"Host", "example.com"}, {"User-Agent", "curl/7.88.1"}, {"Accept", "*/*"}},
          .first_byte_ns = first_ns,
          .last_byte_ns = last_ns};
}

HttpMessage curl_post(uint64_t first_ns, uint64_t last_ns) {
  return {.version = "1.1",
          .method = "POST",
          .target = "/api/items?x=1",
          .authority = "api.example.com:8443",
          .headers = {{"Host", "api.example.com:8443"},
                      {"content-type", "application/json"},
                      {"content-length", "11"}},
          .body_length = 11,
          .body = "{\"id\": 42}\n",
          .first_byte_ns = first_ns,
          .last_byte_ns = last_ns};
}

HttpMessage nginx_ok(uint64_t first_ns, uint64_t last_ns) {
  return {.version = "1.1",
          .status = 200,
          .headers = {{"Server", "nginx/1.22.1"},
                      {"Date", "Tue, 25 Nov 2025 04:00:00 GMT"},
                      {"Content-Type", "text/html"},
                      {"Content-Length", "13"},
                      {"Connection", "keep-alive"},
                      {"ETag", "\"6560a1b2-d\""}},
          .body_length = 13,
          .body = "Hello, world!",
          .first_byte_ns = first_ns,
          .last_byte_ns = last_ns};
}

HttpMessage chunked_with_trailer(uint64_t first_ns, uint64_t last_ns) {
  return {
      .version = "1.1",
      .status = 200,
      .headers = {{"Content-Type", "text/plain"}, {"Transfer-Encoding", "chunked"}, {"Trailer", "Expires"}},
      .trailers = {{"Expires", "Wed, 21 Oct 2015 07:28:00 GMT"}, {"X-Checksum", "abc"}},
      .body_length = 22,
      .body = "Wikipedia in \r\nchunks.",
      .first_byte_ns = first_ns,
      .last_byte_ns = last_ns};
}

// A response with no body, e.g. 204 or the answer to HEAD.
HttpMessage bodiless_response(int status, Headers headers, uint64_t ns) {
  return {.version = "1.1",
          .status = status,
          .headers = std::move(headers),
          .first_byte_ns = ns,
          .last_byte_ns = ns};
}

void expect_message(const HttpMessage& got, const HttpMessage& want) {
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.method, want.method);
  EXPECT_EQ(got.target, want.target);
  EXPECT_EQ(got.authority, want.authority);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.headers, want.headers);
  EXPECT_EQ(got.trailers, want.trailers);
  EXPECT_EQ(got.body_length, want.body_length);
  EXPECT_EQ(got.body, want.body);
  EXPECT_EQ(got.headers_unknown, want.headers_unknown);
  EXPECT_EQ(got.first_byte_ns, want.first_byte_ns);
  EXPECT_EQ(got.last_byte_ns, want.last_byte_ns);
}

void expect_messages(const std::vector<HttpMessage>& got, const std::vector<HttpMessage>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("message " + std::to_string(i));
    expect_message(got[i], want[i]);
  }
}

// One parser and what it reported.
struct Capture {
  explicit Capture(Kind kind, size_t max_body_bytes = 1024) : parser(kind, max_body_bytes) {}
  ParseState feed(std::string_view bytes, uint64_t time_ns = 1) {
    return parser.feed(as_bytes(bytes), time_ns, out);
  }
  Http1Parser parser;
  std::vector<HttpMessage> out;
};

// Feeds `stream` in chunks ending at `cuts` (all at time 1), then closes it.
std::vector<HttpMessage> parse_cut(Kind kind, std::string_view stream, const std::vector<size_t>& cuts,
                                   const std::vector<std::string>& methods = {}) {
  Capture capture(kind);
  for (const std::string& method : methods) capture.parser.expect_response_to(method);
  size_t begin = 0;
  for (size_t cut : cuts) {
    capture.feed(stream.substr(begin, cut - begin));
    begin = cut;
  }
  capture.feed(stream.substr(begin));
  capture.parser.finish(2, capture.out);
  return capture.out;
}

// Every cut of `stream` into two chunks, and byte by byte, gives `want`.
void expect_cut_invariant(Kind kind, std::string_view stream, const std::vector<HttpMessage>& want,
                          const std::vector<std::string>& methods = {}) {
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    expect_messages(parse_cut(kind, stream, {cut}, methods), want);
    if (testing::Test::HasFailure()) return;
  }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < stream.size(); ++i) every_byte.push_back(i);
  SCOPED_TRACE("byte by byte");
  expect_messages(parse_cut(kind, stream, every_byte, methods), want);
}

std::string concat(std::initializer_list<std::string_view> parts) {
  std::string all;
  for (std::string_view part : parts) all += part;
  return all;
}

TEST(Http1Request, CurlGetEveryField) {
  Capture capture(Kind::request);
  EXPECT_EQ(capture.feed(kCurlGet, 77), ParseState::done);
  expect_messages(capture.out, {curl_get(77, 77)});
}

TEST(Http1Response, NginxContentLengthEveryField) {
  Capture capture(Kind::response);
  capture.parser.expect_response_to("GET");
  EXPECT_EQ(capture.feed(kNginxOk, 5), ParseState::done);
  expect_messages(capture.out, {nginx_ok(5, 5)});
}

TEST(Http1Request, HttpOneZeroWithoutLengthHasNoBodyAndLfLineEnds) {
  Capture capture(Kind::request);
  EXPECT_EQ(capture.feed("\r\nGET / HTTP/1.0\nUser-Agent: Wget/1.21\n\nGET /b HTTP/1.0\r\n\r\n"),
            ParseState::done);
  expect_messages(
      capture.out,
      {{.version = "1.0",
        .method = "GET",
        .target = "/",
        .headers = {{"User-Agent", "Wget/1.21"}},
        .first_byte_ns = 1,
        .last_byte_ns = 1},
       {.version = "1.0", .method = "GET", .target = "/b", .first_byte_ns = 1, .last_byte_ns = 1}});
}

TEST(Http1Split, KeepAliveRequestsAtEveryCut) {
  std::string stream = concat({kCurlGet, kCurlPost, kCurlGet});
  expect_cut_invariant(Kind::request, stream, {curl_get(1, 1), curl_post(1, 1), curl_get(1, 1)});
}

TEST(Http1Split, KeepAliveResponsesAtEveryCut) {
  std::string stream =
      concat({kNginxOk, kChunkedWithTrailer, "HTTP/1.1 204 No Content\r\nServer: nginx\r\n\r\n",
              "HTTP/1.1 100 Continue\r\n\r\n", kNginxOk});
  expect_cut_invariant(Kind::response, stream,
                       {nginx_ok(1, 1), chunked_with_trailer(1, 1),
                        bodiless_response(204, {{"Server", "nginx"}}, 1), nginx_ok(1, 1)},
                       {"GET", "GET", "DELETE", "POST"});
}

TEST(Http1Split, ResponseReadUntilCloseAtEveryCut) {
  std::string_view stream = "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<p>bye</p>\n";
  expect_cut_invariant(Kind::response, stream,
                       {{.version = "1.0",
                         .status = 200,
                         .headers = {{"Content-Type", "text/html"}},
                         .body_length = 11,
                         .body = "<p>bye</p>\n",
                         .first_byte_ns = 1,
                         .last_byte_ns = 1}},
                       {"GET"});
}

TEST(Http1Chunked, ExtensionsAndTrailers) {
  Capture capture(Kind::response);
  capture.parser.expect_response_to("GET");
  EXPECT_EQ(capture.feed(kChunkedWithTrailer, 3), ParseState::done);
  expect_messages(capture.out, {chunked_with_trailer(3, 3)});
}

TEST(Http1Chunked, RequestBodyWithoutTrailersAndLowerCaseCoding) {
  Capture capture(Kind::request);
  EXPECT_EQ(capture.feed("PUT /f HTTP/1.1\r\nHost: h\r\ntransfer-encoding: gzip, Chunked\r\n\r\n"
                         "3\r\nabc\r\n000\r\n\r\n"),
            ParseState::done);
  expect_messages(capture.out, {{.version = "1.1",
                                 .method = "PUT",
                                 .target = "/f",
                                 .authority = "h",
                                 .headers = {{"Host", "h"}, {"transfer-encoding", "gzip, Chunked"}},
                                 .body_length = 3,
                                 .body = "abc",
                                 .first_byte_ns = 1,
                                 .last_byte_ns = 1}});
}

TEST(Http1Pipelining, HeadInTheMiddleOfPipelinedRequestsAndResponses) {
  std::string_view head_request = "HEAD /big.iso HTTP/1.1\r\nHost: example.com\r\n\r\n";
  Capture requests(Kind::request);
  EXPECT_EQ(requests.feed(concat({kCurlGet, head_request, kCurlPost}), 10), ParseState::done);
  expect_messages(requests.out, {curl_get(10, 10),
                                 {.version = "1.1",
                                  .method = "HEAD",
                                  .target = "/big.iso",
                                  .authority = "example.com",
                                  .headers = {{"Host", "example.com"}},
                                  .first_byte_ns = 10,
                                  .last_byte_ns = 10},
                                 curl_post(10, 10)});

  // The answer to HEAD announces a length but has no body: the next response follows at once.
  std::string_view head_response = "HTTP/1.1 200 OK\r\nContent-Length: 4700000000\r\n\r\n";
  Capture responses(Kind::response);
  for (const HttpMessage& request : requests.out) responses.parser.expect_response_to(request.method);
  EXPECT_EQ(responses.feed(concat({kNginxOk, head_response}), 20), ParseState::done);
  EXPECT_EQ(responses.feed(kNginxOk, 30), ParseState::done);
  expect_messages(
      responses.out,
      {nginx_ok(20, 20), bodiless_response(200, {{"Content-Length", "4700000000"}}, 20), nginx_ok(30, 30)});
}

TEST(Http1Pipelining, ResponsesWaitForTheirRequestMethod) {
  std::string_view head_response = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n";
  Capture capture(Kind::response);
  EXPECT_EQ(capture.feed(head_response, 10), ParseState::need_more_data);
  EXPECT_EQ(capture.feed(kNginxOk, 20), ParseState::need_more_data);
  EXPECT_TRUE(capture.out.empty());
  capture.parser.expect_response_to("HEAD");
  EXPECT_TRUE(capture.out.empty());  // reported by the next feed
  EXPECT_EQ(capture.feed("", 30), ParseState::need_more_data);
  expect_messages(capture.out, {bodiless_response(200, {{"Content-Length", "13"}}, 10)});
  capture.parser.expect_response_to("GET");
  EXPECT_EQ(capture.feed("", 40), ParseState::done);
  ASSERT_EQ(capture.out.size(), 2u);
  expect_message(capture.out[1], nginx_ok(20, 20));
}

TEST(Http1Pipelining, FinishFramesAResponseWhoseMethodNeverCameAsNotHead) {
  Capture capture(Kind::response);
  EXPECT_EQ(capture.feed(kNginxOk, 10), ParseState::need_more_data);
  capture.parser.finish(20, capture.out);
  expect_messages(capture.out, {nginx_ok(10, 10)});
  // Its method, arriving late, is not given to the next response.
  capture.parser.expect_response_to("GET");
  capture.parser.expect_response_to("HEAD");
  EXPECT_EQ(capture.feed("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", 30), ParseState::done);
  ASSERT_EQ(capture.out.size(), 2u);
  expect_message(capture.out[1], bodiless_response(200, {{"Content-Length", "9"}}, 30));
}

TEST(Http1Pipelining, WithoutMethodsResponsesAreFramedAtOnce) {
  Capture capture(Kind::response);
  EXPECT_EQ(capture.feed(kNginxOk, 10), ParseState::need_more_data);
  EXPECT_TRUE(capture.out.empty());
  capture.parser.stop_waiting_for_methods(capture.out);  // the one held comes out
  expect_messages(capture.out, {nginx_ok(10, 10)});
  EXPECT_EQ(capture.feed(kNginxOk, 20), ParseState::done);
  ASSERT_EQ(capture.out.size(), 2u);
  expect_message(capture.out[1], nginx_ok(20, 20));
}

TEST(Http1Pipelining, TooMuchHeldBackIsFramedAsNotHead) {
  std::string body(http1::kMaxBufferedBytes + 100, 'x');
  std::string response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  Capture capture(Kind::response, 8);
  EXPECT_EQ(capture.feed(response, 1), ParseState::need_more_data);
  EXPECT_EQ(capture.feed(body.substr(0, 1000), 2), ParseState::need_more_data);
  EXPECT_TRUE(capture.out.empty());
  EXPECT_EQ(capture.feed(body.substr(1000), 3), ParseState::done);
  expect_messages(capture.out, {{.version = "1.1",
                                 .status = 200,
                                 .headers = {{"Content-Length", std::to_string(body.size())}},
                                 .body_length = body.size(),
                                 .body = "xxxxxxxx",
                                 .first_byte_ns = 1,
                                 .last_byte_ns = 3}});
  capture.parser.expect_response_to("HEAD");  // the late method of that response: skipped
  capture.parser.expect_response_to("GET");
  EXPECT_EQ(capture.feed(kNginxOk, 4), ParseState::done);
  ASSERT_EQ(capture.out.size(), 2u);
  HttpMessage want = nginx_ok(4, 4);
  want.body = "Hello, w";
  expect_message(capture.out[1], want);
}

TEST(Http1KeepAlive, OneMessagePerChunkDoneBetween) {
  Capture requests(Kind::request);
  Capture responses(Kind::response);
  for (uint64_t t = 1; t <= 3; ++t) {
    EXPECT_EQ(requests.feed(kCurlGet, t * 10), ParseState::done);
    responses.parser.expect_response_to("GET");
    EXPECT_EQ(responses.feed(kNginxOk, t * 10 + 5), ParseState::done);
  }
  expect_messages(requests.out, {curl_get(10, 10), curl_get(20, 20), curl_get(30, 30)});
  expect_messages(responses.out, {nginx_ok(15, 15), nginx_ok(25, 25), nginx_ok(35, 35)});
}

TEST(Http1Continue, InterimResponseIsSkippedAndKeepsTheMethod) {
  std::string_view head =
      "POST /upload HTTP/1.1\r\nHost: files.example.com\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
  Capture requests(Kind::request);
  EXPECT_EQ(requests.feed(head, 10), ParseState::need_more_data);
  Capture responses(Kind::response);
  responses.parser.expect_response_to("POST");
  responses.parser.expect_response_to("HEAD");
  EXPECT_EQ(responses.feed("HTTP/1.1 100 Continue\r\n\r\n", 20), ParseState::done);
  EXPECT_TRUE(responses.out.empty());
  EXPECT_EQ(requests.feed("12345", 30), ParseState::done);
  EXPECT_EQ(responses.feed("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 40), ParseState::done);
  EXPECT_EQ(responses.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 50), ParseState::done);

  expect_messages(
      requests.out,
      {{.version = "1.1",
        .method = "POST",
        .target = "/upload",
        .authority = "files.example.com",
        .headers = {{"Host", "files.example.com"}, {"Content-Length", "5"}, {"Expect", "100-continue"}},
        .body_length = 5,
        .body = "12345",
        .first_byte_ns = 10,
        .last_byte_ns = 30}});
  expect_messages(responses.out, {{.version = "1.1",
                                   .status = 201,
                                   .headers = {{"Content-Length", "2"}},
                                   .body_length = 2,
                                   .body = "ok",
                                   .first_byte_ns = 40,
                                   .last_byte_ns = 40},
                                  bodiless_response(200, {{"Content-Length", "2"}}, 50)});
}

TEST(Http1Upgrade, WebSocketThenRawFramesIgnored) {
  std::string_view upgrade =
      "GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  // A masked text frame "Hello", as a browser sends it.
  std::string_view client_frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  Capture requests(Kind::request);
  EXPECT_EQ(requests.feed(upgrade, 1), ParseState::done);
  EXPECT_FALSE(requests.parser.switched_protocols());
  EXPECT_EQ(requests.feed(client_frame, 2), ParseState::done);
  EXPECT_TRUE(requests.parser.switched_protocols());
  EXPECT_EQ(requests.parser.take_tunneled_bytes(),
            client_frame);  // the first frame, for the WebSocket parser
  EXPECT_EQ(requests.parser.take_tunneled_bytes(), "");
  EXPECT_EQ(requests.feed(kCurlGet, 3), ParseState::done);
  expect_messages(requests.out, {{.version = "1.1",
                                  .method = "GET",
                                  .target = "/chat",
                                  .authority = "ws.example.com",
                                  .headers = {{"Host", "ws.example.com"},
                                              {"Upgrade", "websocket"},
                                              {"Connection", "Upgrade"},
                                              {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                              {"Sec-WebSocket-Version", "13"}},
                                  .first_byte_ns = 1,
                                  .last_byte_ns = 1}});

  Capture responses(Kind::response);
  responses.parser.expect_response_to("GET");
  std::string switching =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05Hello";
  EXPECT_EQ(responses.feed(switching, 4), ParseState::done);
  EXPECT_TRUE(responses.parser.switched_protocols());
  EXPECT_EQ(responses.parser.take_tunneled_bytes(), "\x81\x05Hello");  // shared the 101's chunk
  EXPECT_EQ(responses.feed(kNginxOk, 5), ParseState::done);
  responses.parser.finish(6, responses.out);
  expect_messages(responses.out,
                  {bodiless_response(101,
                                     {{"Upgrade", "websocket"},
                                      {"Connection", "Upgrade"},
                                      {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}},
                                     4)});
}

TEST(Http1Upgrade, RefusedUpgradeKeepsParsingRequests) {
  std::string_view h2c =
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
      "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
  Capture requests(Kind::request);
  EXPECT_EQ(requests.feed(h2c), ParseState::done);
  EXPECT_EQ(requests.feed("GE"), ParseState::need_more_data);  // could still be a request
  EXPECT_EQ(requests.feed(kCurlGet.substr(2)), ParseState::done);
  EXPECT_FALSE(requests.parser.switched_protocols());
  ASSERT_EQ(requests.out.size(), 2u);
  expect_message(requests.out[1], curl_get(1, 1));
  // After another upgrade, the HTTP/2 preface is not a request: the stream switched.
  EXPECT_EQ(requests.feed(h2c), ParseState::done);
  EXPECT_EQ(requests.feed("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), ParseState::done);
  EXPECT_TRUE(requests.parser.switched_protocols());
  EXPECT_EQ(requests.out.size(), 3u);
}

TEST(Http1Connect, TunnelAfterSuccessNotAfterRefusal) {
  std::string_view connect = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
  std::string_view client_hello = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"sv;
  HttpMessage connect_message{.version = "1.1",
                              .method = "CONNECT",
                              .target = "example.com:443",
                              .authority = "example.com:443",
                              .headers = {{"Host", "example.com:443"}},
                              .first_byte_ns = 1,
                              .last_byte_ns = 1};
  Capture requests(Kind::request);
  EXPECT_EQ(requests.feed(concat({connect, client_hello})), ParseState::done);
  EXPECT_TRUE(requests.parser.switched_protocols());
  EXPECT_EQ(requests.parser.take_tunneled_bytes(), client_hello);
  expect_messages(requests.out, {connect_message});

  Capture responses(Kind::response);
  responses.parser.expect_response_to("CONNECT");
  responses.parser.expect_response_to("CONNECT");
  std::string_view refused = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!";
  std::string_view established = "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x7a\x02"sv;
  EXPECT_EQ(responses.feed(concat({refused, established})), ParseState::done);
  EXPECT_TRUE(responses.parser.switched_protocols());
  EXPECT_EQ(responses.parser.take_tunneled_bytes(), "\x16\x03\x03\x00\x7a\x02"sv);
  expect_messages(responses.out, {{.version = "1.1",
                                   .status = 407,
                                   .headers = {{"Content-Length", "3"}},
                                   .body_length = 3,
                                   .body = "no!",
                                   .first_byte_ns = 1,
                                   .last_byte_ns = 1},
                                  bodiless_response(200, {}, 1)});
}

TEST(Http1Body, LargerThanTheLimitIsCountedWhole) {
  std::string body;
  for (int i = 0; i < 10000; ++i) body += "0123456789";
  Capture capture(Kind::response, 16);
  capture.parser.expect_response_to("GET");
  capture.parser.expect_response_to("GET");
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
  EXPECT_EQ(capture.feed(head + body.substr(0, 5), 1), ParseState::need_more_data);
  EXPECT_EQ(capture.feed(body.substr(5, 50000), 2), ParseState::need_more_data);
  EXPECT_EQ(capture.feed(body.substr(50005), 3), ParseState::done);
  // The same body chunked in two chunks.
  EXPECT_EQ(capture.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n" + body +
                             "\r\n10\r\n" + body.substr(0, 16) + "\r\n0\r\n\r\n",
                         4),
            ParseState::done);
  expect_messages(capture.out, {{.version = "1.1",
                                 .status = 200,
                                 .headers = {{"Content-Length", "100000"}},
                                 .body_length = 100000,
                                 .body = "0123456789012345",
                                 .first_byte_ns = 1,
                                 .last_byte_ns = 3},
                                {.version = "1.1",
                                 .status = 200,
                                 .headers = {{"Transfer-Encoding", "chunked"}},
                                 .body_length = 100016,
                                 .body = "0123456789012345",
                                 .first_byte_ns = 4,
                                 .last_byte_ns = 4}});
}

TEST(Http1Body, ZeroLimitKeepsNothing) {
  Capture capture(Kind::request, 0);
  EXPECT_EQ(capture.feed(kCurlPost), ParseState::done);
  HttpMessage want = curl_post(1, 1);
  want.body.clear();
  expect_messages(capture.out, {want});
}

TEST(Http1UntilClose, BodyEndsAtFinishWithTheTimeOfItsLastChunk) {
  Capture capture(Kind::response);
  capture.parser.expect_response_to("GET");
  EXPECT_EQ(capture.feed("HTTP/1.1 200 OK\r\nServer: legacy\r\nConnection: close\r\n\r\nfirst ", 5),
            ParseState::need_more_data);
  EXPECT_EQ(capture.feed("second", 7), ParseState::need_more_data);
  EXPECT_TRUE(capture.out.empty());
  capture.parser.finish(9, capture.out);
  expect_messages(capture.out, {{.version = "1.1",
                                 .status = 200,
                                 .headers = {{"Server", "legacy"}, {"Connection", "close"}},
                                 .body_length = 12,
                                 .body = "first second",
                                 .first_byte_ns = 5,
                                 .last_byte_ns = 7}});
}

TEST(Http1UntilClose, UnknownTransferCodingInAResponseReadsUntilClose) {
  Capture capture(Kind::response);
  capture.parser.expect_response_to("GET");
  EXPECT_EQ(capture.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabc", 5),
            ParseState::need_more_data);
  capture.parser.finish(9, capture.out);
  ASSERT_EQ(capture.out.size(), 1u);
  EXPECT_EQ(capture.out[0].body, "abc");
  EXPECT_EQ(capture.out[0].body_length, 3u);
}

TEST(Http1Finish, PartialMessagesAreDropped) {
  Capture requests(Kind::request);
  EXPECT_EQ(requests.feed(kCurlPost.substr(0, kCurlPost.size() - 3)), ParseState::need_more_data);
  requests.parser.finish(2, requests.out);
  Capture responses(Kind::response);
  responses.parser.expect_response_to("GET");
  EXPECT_EQ(responses.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
            ParseState::need_more_data);
  responses.parser.finish(2, responses.out);
  EXPECT_EQ(responses.feed("HTTP/1.1 200 OK\r\nContent-"), ParseState::need_more_data);
  responses.parser.finish(3, responses.out);
  EXPECT_TRUE(requests.out.empty());
  EXPECT_TRUE(responses.out.empty());
}

TEST(Http1Finish, ResponsesWithoutBodyNeedNoClose) {
  Capture capture(Kind::response);
  for (const char* method : {"GET", "GET", "GET"}) capture.parser.expect_response_to(method);
  EXPECT_EQ(capture.feed("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
                         "HTTP/1.1 204 No Content\r\n\r\n"
                         "HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n"),
            ParseState::done);
  expect_messages(capture.out, {bodiless_response(304, {{"ETag", "\"x\""}}, 1), bodiless_response(204, {}, 1),
                                bodiless_response(302, {{"Location", "/b"}, {"Content-Length", "0"}}, 1)});
}

struct InvalidCase {
  const char* name;
  Kind kind;
  std::string bytes;
};

class Http1Invalid : public testing::TestWithParam<InvalidCase> {};

TEST_P(Http1Invalid, StaysInvalidAndReportsNothing) {
  const InvalidCase& c = GetParam();
  Capture capture(c.kind);
  capture.parser.expect_response_to("GET");
  EXPECT_EQ(capture.feed(c.bytes), ParseState::invalid);
  EXPECT_EQ(capture.feed(c.kind == Kind::request ? kCurlGet : kNginxOk), ParseState::invalid);
  capture.parser.finish(2, capture.out);
  EXPECT_TRUE(capture.out.empty());
  EXPECT_FALSE(capture.parser.switched_protocols());
}

INSTANTIATE_TEST_SUITE_P(
    Http1Garbage, Http1Invalid,
    testing::Values(
        // Decided before a whole line arrives.
        InvalidCase{"TlsRecord", Kind::request, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc"s},
        InvalidCase{"TlsRecordAsResponse", Kind::response, "\x16\x03\x03\x00\x7a"s},
        InvalidCase{"Http2Preface", Kind::response, "PRI * HTTP/2.0\r\n"},
        InvalidCase{"TextWithoutRequestLine", Kind::request, "hello world, this is not http"},
        InvalidCase{"EmptyMethod", Kind::request, " /x HTTP/1.1\r\n"},
        InvalidCase{"MethodTooLong", Kind::request, std::string(40, 'A')},
        // Decided on a whole head.
        InvalidCase{"Http2Version", Kind::request, "GET / HTTP/2.0\r\n\r\n"},
        InvalidCase{"DoubleSpace", Kind::request, "GET  / HTTP/1.1\r\n\r\n"},
        InvalidCase{"NoVersion", Kind::request, "GET /\r\n\r\n"},
        InvalidCase{"SpaceBeforeColon", Kind::request, "GET / HTTP/1.1\r\nHost : a\r\n\r\n"},
        InvalidCase{"ObsFold", Kind::request, "GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n"},
        InvalidCase{"NoColon", Kind::response, "HTTP/1.1 200 OK\r\nServer nginx\r\n\r\n"},
        InvalidCase{"BareCr", Kind::response, "HTTP/1.1 200 OK\r\nServer: a\rb\r\n\r\n"},
        InvalidCase{"ControlInValue", Kind::response, "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"s},
        InvalidCase{"StatusNotThreeDigits", Kind::response, "HTTP/1.1 20 OK\r\n\r\n"},
        InvalidCase{"NoSpaceBeforeReason", Kind::response, "HTTP/1.1 200OK\r\n\r\n"},
        // Framing.
        InvalidCase{"NegativeLength", Kind::request, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"},
        InvalidCase{"ConflictingLengths", Kind::response,
                    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
        InvalidCase{"LengthOverflow", Kind::response,
                    "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n"},
        InvalidCase{"RequestTransferCodingNotChunked", Kind::request,
                    "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"},
        InvalidCase{"BadChunkSize", Kind::response,
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
        InvalidCase{"ChunkSizeOverflow", Kind::response,
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n"},
        InvalidCase{"ChunkWithoutCrlf", Kind::response,
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n"},
        InvalidCase{"BadTrailer", Kind::response,
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a trailer\r\n\r\n"},
        InvalidCase{"HeadTooLong", Kind::request,
                    "GET / HTTP/1.1\r\nX-Big: " + std::string(http1::kMaxBufferedBytes, 'a') + "\r\n\r\n"}),
    [](const testing::TestParamInfo<InvalidCase>& param) { return std::string(param.param.name); });

TEST(Http1InvalidStream, AfterValidMessagesKeepsThem) {
  Capture capture(Kind::request);
  EXPECT_EQ(capture.feed(concat({kCurlGet, "\x16\x03\x01"})), ParseState::invalid);
  expect_messages(capture.out, {curl_get(1, 1)});
}

TEST(Http1InvalidStream, HeadTooLongAcrossChunks) {
  Capture capture(Kind::request);
  EXPECT_EQ(capture.feed("GET / HTTP/1.1\r\n"), ParseState::need_more_data);
  std::string header = "X-Big: " + std::string(1000, 'a') + "\r\n";
  ParseState state = ParseState::need_more_data;
  for (int i = 0; i < 70 && state != ParseState::invalid; ++i) state = capture.feed(header);
  EXPECT_EQ(state, ParseState::invalid);
  EXPECT_TRUE(capture.out.empty());
}

TEST(Http1Lost, DropsTheCutMessageAndResyncsOnAChunkStartingARequest) {
  Capture capture(Kind::request);
  EXPECT_EQ(capture.feed(concat({kCurlGet, kCurlPost.substr(0, 40)}), 1), ParseState::need_more_data);
  capture.parser.lost(500);
  EXPECT_EQ(capture.feed("ody of something else\r\n\r\nGET /not-at-a-chunk-start HTTP/1.1\r\n\r\n", 2),
            ParseState::done);
  EXPECT_EQ(capture.feed("POST mid-body text that looks like a method but is not HTTP\r\n\r\n", 3),
            ParseState::done);  // starts like a request, fails to parse: still resyncing
  EXPECT_EQ(capture.feed(kCurlPost, 4), ParseState::done);
  expect_messages(capture.out, {curl_get(1, 1), curl_post(4, 4)});
}

TEST(Http1Lost, ResponseResyncsOnAStatusLineAndKeepsMethodsInOrder) {
  Capture capture(Kind::response);
  capture.parser.expect_response_to("GET");
  capture.parser.expect_response_to("HEAD");
  EXPECT_EQ(capture.feed(kNginxOk.substr(0, 100), 1), ParseState::need_more_data);
  capture.parser.lost(10);
  EXPECT_EQ(capture.feed("world!", 2), ParseState::done);
  EXPECT_EQ(capture.feed("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n", 3), ParseState::done);
  expect_messages(capture.out, {bodiless_response(200, {{"Content-Length", "13"}}, 3)});
}

TEST(Http1Lost, AResponseCutWhileWaitingForItsMethodUsesItUp) {
  Capture capture(Kind::response);
  EXPECT_EQ(capture.feed("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello", 1),
            ParseState::need_more_data);
  capture.parser.lost(100);
  capture.parser.expect_response_to("HEAD");  // the method of the cut response
  capture.parser.expect_response_to("GET");
  EXPECT_EQ(capture.feed(kNginxOk, 2), ParseState::done);
  expect_messages(capture.out, {nginx_ok(2, 2)});
}

TEST(Http1Lost, ATunnelStaysATunnel) {
  Capture capture(Kind::response);
  capture.parser.expect_response_to("GET");
  EXPECT_EQ(capture.feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"), ParseState::done);
  capture.parser.lost(10);
  EXPECT_EQ(capture.feed(kNginxOk), ParseState::done);
  EXPECT_TRUE(capture.parser.switched_protocols());
  EXPECT_EQ(capture.out.size(), 1u);
}

TEST(Http1Timestamps, FirstAndLastByteChunks) {
  Capture capture(Kind::request);
  EXPECT_EQ(capture.feed("GET /index.html HT", 10), ParseState::need_more_data);
  EXPECT_EQ(capture.feed(concat({kCurlGet.substr(18), kCurlPost.substr(0, 30)}), 20),
            ParseState::need_more_data);
  EXPECT_EQ(capture.feed(kCurlPost.substr(30, kCurlPost.size() - 31), 30), ParseState::need_more_data);
  EXPECT_EQ(capture.feed(kCurlPost.substr(kCurlPost.size() - 1), 40), ParseState::done);
  // Empty lines before a message are not part of it.
  EXPECT_EQ(capture.feed("\r\n", 50), ParseState::done);
  EXPECT_EQ(capture.feed(kCurlGet, 60), ParseState::done);
  expect_messages(capture.out, {curl_get(10, 20), curl_post(20, 40), curl_get(60, 60)});
}

TEST(Http1Detect, LooksLikeRequestOrResponse) {
  EXPECT_TRUE(looks_like_http1_request("GET / HTTP/1.1\r\n"));
  EXPECT_TRUE(looks_like_http1_request("OPTIONS "));
  EXPECT_TRUE(looks_like_http1_request("PATCH /x"));
  EXPECT_FALSE(looks_like_http1_request("GET"));  // too short to tell
  EXPECT_FALSE(looks_like_http1_request("GETS / HTTP/1.1"));
  EXPECT_FALSE(looks_like_http1_request("get / HTTP/1.1"));
  EXPECT_FALSE(looks_like_http1_request("PRI * HTTP/2.0\r\n"));
  EXPECT_FALSE(looks_like_http1_request("\x16\x03\x01"));
  EXPECT_FALSE(looks_like_http1_request(""));
  EXPECT_TRUE(looks_like_http1_response("HTTP/1.1 200 OK"));
  EXPECT_TRUE(looks_like_http1_response("HTTP/1.0"));
  EXPECT_FALSE(looks_like_http1_response("HTTP/2 200"));
  EXPECT_FALSE(looks_like_http1_response("HTTP/1"));
  EXPECT_FALSE(looks_like_http1_response("GET / HTTP/1.1"));
}

TEST(Http1Pure, MatchRequestStart) {
  EXPECT_EQ(http1::match_request_start(""), http1::Match::partial);
  EXPECT_EQ(http1::match_request_start("P"), http1::Match::partial);
  EXPECT_EQ(http1::match_request_start("DELETE"), http1::Match::partial);
  EXPECT_EQ(http1::match_request_start("DELETE /"), http1::Match::yes);
  EXPECT_EQ(http1::match_request_start("DELETEX"), http1::Match::no);
  EXPECT_EQ(http1::match_request_start("\x81\x85"), http1::Match::no);
}

TEST(Http1Pure, CouldStartALine) {
  EXPECT_TRUE(http1::could_start_request(""));
  EXPECT_TRUE(http1::could_start_request("PROPFIND"));
  EXPECT_TRUE(http1::could_start_request("M-SEARCH * HTTP/1.1"));
  EXPECT_FALSE(http1::could_start_request("GET\r\n"));
  EXPECT_FALSE(http1::could_start_request("GET  /"));
  EXPECT_FALSE(http1::could_start_request(std::string(33, 'A')));
  EXPECT_TRUE(http1::could_start_request(std::string(32, 'A') + " /"));
  EXPECT_TRUE(http1::could_start_response("HTT"));
  EXPECT_TRUE(http1::could_start_response("HTTP/1.1 404 whatever"));
  EXPECT_FALSE(http1::could_start_response("HTTP/1.x"));
  EXPECT_FALSE(http1::could_start_response("HTTP/1.1 2x"));
  EXPECT_FALSE(http1::could_start_response("HTTP/1.1 2000"));
  EXPECT_TRUE(http1::could_start_response("HTTP/1.1 200\r"));
  EXPECT_TRUE(http1::could_start_request("GET /index.html HTTP/1.1\r\nHost"));
  EXPECT_TRUE(http1::could_start_request("GET /index.html HTTP/1."));
  EXPECT_FALSE(http1::could_start_request("GET /index.html HTTP/2"));
  EXPECT_FALSE(http1::could_start_request("GET /index.html HTTP/1.10"));
  EXPECT_FALSE(http1::could_start_request("hello world, this"));
  // Only the first bytes are checked: a long target leaves the version unchecked.
  EXPECT_TRUE(http1::could_start_request("GET /" + std::string(300, 'a') + " SPDY/3"));
}

TEST(Http1Pure, FindEnds) {
  EXPECT_EQ(http1::find_line_end("ab\r\ncd"), 4u);
  EXPECT_EQ(http1::find_line_end("ab\r"), std::string_view::npos);
  EXPECT_EQ(http1::find_block_end("a: b\r\n\r\nbody"), 8u);
  EXPECT_EQ(http1::find_block_end("a: b\n\nbody"), 6u);
  EXPECT_EQ(http1::find_block_end("\r\nrest"), 2u);
  EXPECT_EQ(http1::find_block_end("\nrest"), 1u);
  EXPECT_EQ(http1::find_block_end("a: b\r\nc: d\r\n"), std::string_view::npos);
  EXPECT_EQ(http1::find_block_end("a: b\r\r\n"), std::string_view::npos);
  // Resuming after the first line feed still finds an end that straddles it.
  EXPECT_EQ(http1::find_block_end("a: b\r\n\r\n", 7), 8u);
}

TEST(Http1Pure, ChunkSizeLine) {
  auto size = http1::parse_chunk_size_line("1a;name=value\r\nrest");
  EXPECT_EQ(size.state, ParseState::done);
  EXPECT_EQ(size.consumed, 15u);
  EXPECT_EQ(size.value, 26u);
  size = http1::parse_chunk_size_line("FFFFFFFFFFFFFFFF \t\n");
  EXPECT_EQ(size.state, ParseState::done);
  EXPECT_EQ(size.value, UINT64_MAX);
  EXPECT_EQ(http1::parse_chunk_size_line("1a").state, ParseState::need_more_data);
  EXPECT_EQ(http1::parse_chunk_size_line("\r\n").state, ParseState::invalid);
  EXPECT_EQ(http1::parse_chunk_size_line("1a x\r\n").state, ParseState::invalid);
  EXPECT_EQ(http1::parse_chunk_size_line("-1\r\n").state, ParseState::invalid);
}

TEST(Http1Pure, HeadConsumesExactlyTheHead) {
  auto head = http1::parse_request_head(concat({kCurlGet, "trailing"}));
  EXPECT_EQ(head.state, ParseState::done);
  EXPECT_EQ(head.consumed, kCurlGet.size());
  expect_message(head.value, curl_get(0, 0));
  EXPECT_EQ(http1::parse_response_head("HTTP/1.1 200 OK\r\n").state, ParseState::need_more_data);
  EXPECT_EQ(http1::parse_response_head("HTTP/1.1 200 OK\r\nX: y\r\n").state, ParseState::need_more_data);
  EXPECT_EQ(http1::parse_response_head("HTTPS").state, ParseState::invalid);
  auto no_reason = http1::parse_response_head("HTTP/1.1 503\r\n\r\n");
  EXPECT_EQ(no_reason.state, ParseState::done);
  EXPECT_EQ(no_reason.value.status, 503);
  EXPECT_EQ(no_reason.value.version, "1.1");
}

TEST(Http1Pure, Framing) {
  using http1::BodyKind;
  using http1::Framing;
  auto response = [](int status, Headers headers) {
    return HttpMessage{.status = status, .headers = headers};
  };
  Headers length = {{"content-length", "7, 7"}};
  Headers chunked = {{"Transfer-Encoding", "chunked"}, {"Content-Length", "7"}};
  EXPECT_EQ(http1::response_framing(response(200, length), "GET"), (Framing{BodyKind::length, 7}));
  EXPECT_EQ(http1::response_framing(response(200, length), "HEAD"), Framing{BodyKind::none});
  EXPECT_EQ(http1::response_framing(response(200, length), ""), (Framing{BodyKind::length, 7}));
  EXPECT_EQ(http1::response_framing(response(200, chunked), "GET"), Framing{BodyKind::chunked});
  EXPECT_EQ(http1::response_framing(response(200, {}), "GET"), Framing{BodyKind::until_close});
  EXPECT_EQ(http1::response_framing(response(204, length), "GET"), Framing{BodyKind::none});
  EXPECT_EQ(http1::response_framing(response(304, length), "GET"), Framing{BodyKind::none});
  EXPECT_EQ(http1::response_framing(response(101, {}), "GET"), Framing{BodyKind::tunnel});
  EXPECT_EQ(http1::response_framing(response(200, {}), "CONNECT"), Framing{BodyKind::tunnel});
  EXPECT_EQ(http1::response_framing(response(403, length), "CONNECT"), (Framing{BodyKind::length, 7}));
  EXPECT_FALSE(http1::response_framing(response(200, {{"Content-Length", "7, 8"}}), "GET").has_value());
  HttpMessage request{.method = "POST", .headers = {}};
  EXPECT_EQ(http1::request_framing(request), Framing{BodyKind::none});
  request.headers = chunked;
  EXPECT_EQ(http1::request_framing(request), Framing{BodyKind::chunked});
  request.headers = {{"Content-Length", "0"}};
  EXPECT_EQ(http1::request_framing(request), Framing{BodyKind::none});
  request.headers = {{"Content-Length", ""}};
  EXPECT_FALSE(http1::request_framing(request).has_value());
}

}  // namespace
}  // namespace tlstap::proto
