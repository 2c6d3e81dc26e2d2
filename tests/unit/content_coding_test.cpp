// HTTP content codings: bodies compressed here by the real encoders (zlib,
// brotli, zstd), decoded whole, in part (a kept prefix), chained, and refused
// with a reason when they are not what the header says.
#include "proto/content_coding.h"

#include <brotli/encode.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tlstap::proto {
namespace {

// Text that compresses well but not trivially: numbered lines.
std::string sample_text(size_t size = 40 << 10) {
  std::string text;
  for (int i = 0; text.size() < size; ++i) text += "line " + std::to_string(i) + ": the quick brown fox\n";
  return text;
}

// window_bits: MAX_WBITS + 16 gzip, MAX_WBITS zlib (HTTP's deflate), -MAX_WBITS raw deflate.
std::string zlib_compress(std::string_view in, int window_bits) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&stream, in.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  stream.avail_in = static_cast<uInt>(in.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::string brotli_compress(std::string_view in) {
  std::string out(BrotliEncoderMaxCompressedSize(in.size()), '\0');
  size_t size = out.size();
  EXPECT_TRUE(BrotliEncoderCompress(BROTLI_DEFAULT_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT,
                                    in.size(), reinterpret_cast<const uint8_t*>(in.data()), &size,
                                    reinterpret_cast<uint8_t*>(out.data())));
  out.resize(size);
  return out;
}

std::string zstd_compress(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t size = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(size));
  out.resize(size);
  return out;
}

std::string encoded(std::string_view coding, std::string_view in) {
  if (coding == "gzip") return zlib_compress(in, MAX_WBITS + 16);
  if (coding == "deflate") return zlib_compress(in, MAX_WBITS);
  if (coding == "br") return brotli_compress(in);
  return zstd_compress(in);
}

class EveryCoding : public testing::TestWithParam<std::string> {};

TEST_P(EveryCoding, AWholeBodyDecodesWhole) {
  const std::string text = sample_text();
  auto decoded = decode_content(GetParam(), encoded(GetParam(), text), true, 1 << 20);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->bytes, text);
  EXPECT_TRUE(decoded->whole);
}

TEST_P(EveryCoding, OnlyTheFirstBytesAreKeptAndTheRestIsSaidToExist) {
  const std::string text = sample_text();
  auto decoded = decode_content(GetParam(), encoded(GetParam(), text), true, 4096);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->bytes, text.substr(0, 4096));
  EXPECT_FALSE(decoded->whole);
}

// --max-body kept the first bytes as sent: they give the first bytes decoded
// (zstd decodes a block at a time, up to 128 KiB of content each: a body of
// several).
TEST_P(EveryCoding, AKeptPrefixDecodesToTheContentsBeginning) {
  const std::string text = sample_text(600 << 10);
  const std::string sent = encoded(GetParam(), text);
  const std::string prefix = sent.substr(0, sent.size() / 2);
  auto decoded = decode_content(GetParam(), prefix, false, 1 << 20);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_FALSE(decoded->whole);
  EXPECT_GT(decoded->bytes.size(), 0u);
  EXPECT_EQ(decoded->bytes, text.substr(0, decoded->bytes.size()));
}

TEST_P(EveryCoding, BytesThatAreNotThatCodingAreRefusedWithItsName) {
  const std::string garbage(3000, '\xff');
  auto decoded = decode_content(GetParam(), garbage, true, 4096);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().message.rfind(GetParam() + ": ", 0), 0u) << decoded.error().message;
}

INSTANTIATE_TEST_SUITE_P(ContentCoding, EveryCoding, testing::Values("gzip", "deflate", "br", "zstd"));

TEST(ContentCoding, NamesAreCaseInsensitiveAndXGzipIsGzip) {
  const std::string text = "hello, compressed world\n";
  for (const char* name : {"GZIP", "x-gzip", " gzip "}) {
    auto decoded = decode_content(name, encoded("gzip", text), true, 4096);
    ASSERT_TRUE(decoded) << name << ": " << decoded.error().message;
    EXPECT_EQ(decoded->bytes, text);
  }
}

// Some servers send deflate without the zlib wrapper HTTP asks for.
TEST(ContentCoding, RawDeflateIsReadToo) {
  const std::string text = sample_text();
  auto decoded = decode_content("deflate", zlib_compress(text, -MAX_WBITS), true, 1 << 20);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->bytes, text);
}

TEST(ContentCoding, ConcatenatedGzipMembersAreOneBody) {
  auto decoded = decode_content("gzip", encoded("gzip", "first ") + encoded("gzip", "second"), true, 4096);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->bytes, "first second");
  EXPECT_TRUE(decoded->whole);
}

// "gzip, br": gzip was applied first, so br is undone first.
TEST(ContentCoding, ChainsAreUndoneLastFirst) {
  const std::string text = sample_text();
  auto decoded = decode_content("gzip, br", encoded("br", encoded("gzip", text)), true, 1 << 20);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->bytes, text);
  EXPECT_TRUE(decoded->whole);
}

// Padding after the last member or frame is ignored, as curl and gzip do.
TEST(ContentCoding, BytesAfterTheLastMemberAreIgnored) {
  for (std::string coding : {"gzip", "zstd", "br"}) {
    auto decoded =
        decode_content(coding, encoded(coding, "content\n") + std::string(7, '\0') + "\n", true, 4096);
    ASSERT_TRUE(decoded) << coding << ": " << decoded.error().message;
    EXPECT_EQ(decoded->bytes, "content\n") << coding;
    EXPECT_TRUE(decoded->whole) << coding;
  }
}

// A chain of many codings would cost a decoder and its buffer each.
TEST(ContentCoding, LongChainsAreRefused) {
  auto decoded = decode_content("br, br, br, br, gzip", encoded("gzip", ""), true, 4096);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().message, "5 content codings: more than tlstap decodes (4)");
}

// A coding whose kept bytes decode to nothing yet ends the chain there.
TEST(ContentCoding, AChainStopsWhereAStepGivesNothing) {
  const std::string sent = encoded("br", encoded("gzip", sample_text()));
  auto decoded = decode_content("gzip, br", sent.substr(0, 10), false, 4096);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->bytes, "");
  EXPECT_FALSE(decoded->whole);
}

// Exactly max_bytes of content that ends there is whole.
TEST(ContentCoding, ContentOfExactlyTheLimitIsWhole) {
  const std::string text = sample_text().substr(0, 4096);
  for (std::string coding : {"gzip", "deflate", "br", "zstd"}) {
    auto decoded = decode_content(coding, encoded(coding, text), true, 4096);
    ASSERT_TRUE(decoded) << coding << ": " << decoded.error().message;
    EXPECT_EQ(decoded->bytes, text) << coding;
  }
}

TEST(ContentCoding, IdentityAndUnknownCodings) {
  auto identity = decode_content("identity", "as sent", true, 4096);
  ASSERT_TRUE(identity) << identity.error().message;
  EXPECT_EQ(identity->bytes, "as sent");
  EXPECT_TRUE(identity->whole);
  auto unknown = decode_content("compress", "\x1f\x9d", true, 4096);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message, "compress: a content coding tlstap does not decode");
}

// A whole body whose compressed stream stops short: what it held, not whole.
TEST(ContentCoding, AStreamCutShortIsDecodedInPart) {
  const std::string text = sample_text();
  const std::string sent = encoded("gzip", text);
  auto decoded = decode_content("gzip", sent.substr(0, sent.size() - 100), true, 1 << 20);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_FALSE(decoded->whole);
  EXPECT_EQ(decoded->bytes, text.substr(0, decoded->bytes.size()));
}

TEST(DecodeBody, AnEncodedMessageIsDecodedInPlace) {
  const std::string text = sample_text();
  HttpMessage message;
  message.headers = {{"Content-Type", "text/plain"}, {"Content-Encoding", "gzip"}};
  message.body = encoded("gzip", text);
  message.body_length = message.body.size();
  const uint64_t sent = message.body_length;
  decode_body(message, 4096);
  EXPECT_EQ(message.body, text.substr(0, 4096));
  EXPECT_EQ(message.body_length, sent);
  EXPECT_EQ(message.decoding.codings, "gzip");
  EXPECT_FALSE(message.decoding.whole);
  EXPECT_TRUE(body_truncated(message));
}

TEST(DecodeBody, ABodyThatIsNotItsCodingStaysAsSentAndSaysWhy) {
  HttpMessage message;
  message.headers = {{"content-encoding", "br"}};
  message.body = "plain text, whatever the header says";
  message.body_length = message.body.size();
  decode_body(message, 4096);
  EXPECT_EQ(message.body, "plain text, whatever the header says");
  EXPECT_EQ(message.decoding.codings, "");
  EXPECT_NE(message.decoding.error, "");
  EXPECT_FALSE(body_truncated(message));
}

// A kept prefix too short for a whole zstd block decodes to nothing: the
// body stays as sent, and the error says what would help.
TEST(DecodeBody, APrefixThatDecodesToNothingStaysAsSent) {
  HttpMessage message;
  message.headers = {{"content-encoding", "zstd"}};
  const std::string sent = encoded("zstd", sample_text());
  message.body = sent.substr(0, 100);
  message.body_length = sent.size();
  decode_body(message, 4096);
  EXPECT_EQ(message.body, sent.substr(0, 100));
  EXPECT_EQ(message.decoding.codings, "");
  EXPECT_EQ(message.decoding.error,
            "zstd: the first 100 bytes kept decode to nothing yet (raise --max-body)");
  EXPECT_TRUE(body_truncated(message));
}

// Two Content-Encoding lines list the codings as one line with both would.
TEST(DecodeBody, RepeatedContentEncodingLinesAreOneList) {
  const std::string text = sample_text();
  HttpMessage message;
  message.headers = {{"Content-Encoding", "GZIP"}, {"content-encoding", "br"}};
  message.body = encoded("br", encoded("gzip", text));
  message.body_length = message.body.size();
  decode_body(message, 1 << 20);
  EXPECT_EQ(message.decoding.error, "");
  EXPECT_EQ(message.decoding.codings, "gzip, br");
  EXPECT_EQ(message.body, text);
}

// A 206's body is a slice from the middle of the coded content.
TEST(DecodeBody, PartialContentIsNotDecoded) {
  HttpMessage message;
  message.status = 206;
  message.headers = {{"content-encoding", "gzip"}};
  message.body = encoded("gzip", sample_text()).substr(100, 200);
  message.body_length = 200;
  const std::string sent = message.body;
  decode_body(message, 4096);
  EXPECT_EQ(message.body, sent);
  EXPECT_EQ(message.decoding.codings, "");
  EXPECT_EQ(message.decoding.error, "gzip: a 206's body is a slice of the coded content");
}

TEST(DecodeBody, NoContentEncodingOrNoBodyIsLeftAlone) {
  HttpMessage plain;
  plain.body = "as sent";
  plain.body_length = 100;
  decode_body(plain, 4096);
  EXPECT_EQ(plain.body, "as sent");
  EXPECT_TRUE(body_truncated(plain));
  HttpMessage head_response;  // a HEAD's or 304's: the header, no body
  head_response.headers = {{"content-encoding", "gzip"}};
  decode_body(head_response, 4096);
  EXPECT_EQ(head_response.decoding.codings, "");
  EXPECT_EQ(head_response.decoding.error, "");
}

// A protobuf message of field 1 (a string): what a gRPC call carries.
std::string protobuf_text(std::string_view text) {
  std::string message = "\x0a";
  for (size_t n = text.size();; n >>= 7) {  // the length, a varint
    message += static_cast<char>((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    if (n < 0x80) break;
  }
  return message.append(text);
}

GrpcMessage grpc_message(std::string_view data, bool compressed, size_t keep = SIZE_MAX) {
  return GrpcMessage{.compressed = compressed,
                     .length = static_cast<uint32_t>(data.size()),
                     .data = std::string(data.substr(0, keep))};
}

TEST(DecodeGrpcMessages, CompressedMessagesAreDecodedWithTheCodingTheHeadersName) {
  const std::string first = protobuf_text(sample_text(600));
  const std::string second = protobuf_text("short");
  for (std::string coding : {"gzip", "deflate"}) {
    std::vector<GrpcMessage> messages{grpc_message(encoded(coding, first), true),
                                      grpc_message(second, false)};
    decode_grpc_messages(messages, {{"content-type", "application/grpc"}, {"grpc-encoding", coding}}, 4096);
    EXPECT_EQ(messages[0].data, first) << coding;
    EXPECT_EQ(messages[0].decoding.codings, coding);
    EXPECT_EQ(messages[0].decoding.error, "");
    EXPECT_TRUE(readable_whole(messages[0])) << coding;
    EXPECT_EQ(messages[1].data, second) << coding;  // sent as it is: the flag says so
    EXPECT_FALSE(messages[1].decoding.decoded());
    EXPECT_TRUE(readable_whole(messages[1]));
  }
}

TEST(DecodeGrpcMessages, AKeptPrefixIsDecodedInPart) {
  const std::string text = protobuf_text(sample_text());
  std::vector<GrpcMessage> messages{grpc_message(encoded("gzip", text), true, 200)};
  decode_grpc_messages(messages, {{"grpc-encoding", "gzip"}}, 4096);
  EXPECT_EQ(messages[0].decoding.codings, "gzip");
  EXPECT_FALSE(messages[0].decoding.whole);
  ASSERT_FALSE(messages[0].data.empty());
  EXPECT_EQ(messages[0].data, text.substr(0, messages[0].data.size()));
  EXPECT_FALSE(readable_whole(messages[0]));
}

TEST(DecodeGrpcMessages, WhatCannotBeDecodedStaysAsSentAndSaysWhy) {
  const std::string sent = encoded("gzip", protobuf_text("hello"));
  std::vector<GrpcMessage> unnamed{grpc_message(sent, true)};
  decode_grpc_messages(unnamed, {{"content-type", "application/grpc"}}, 4096);
  EXPECT_EQ(unnamed[0].data, sent);
  EXPECT_EQ(unnamed[0].decoding.error, "compressed, but no grpc-encoding header names the coding");
  EXPECT_FALSE(readable_whole(unnamed[0]));
  std::vector<GrpcMessage> snappy{grpc_message("\x05\x10hello", true)};
  decode_grpc_messages(snappy, {{"grpc-encoding", "snappy"}}, 4096);
  EXPECT_EQ(snappy[0].decoding.error, "snappy: a content coding tlstap does not decode");
  EXPECT_FALSE(readable_whole(snappy[0]));
  std::vector<GrpcMessage> listed{grpc_message(sent, true)};
  decode_grpc_messages(listed, {{"grpc-encoding", "gzip, gzip"}}, 4096);
  EXPECT_EQ(listed[0].data, sent);
  EXPECT_EQ(listed[0].decoding.error, "grpc-encoding lists 2 codings; gRPC uses one");
  std::vector<GrpcMessage> not_gzip{grpc_message("plain text", true)};
  decode_grpc_messages(not_gzip, {{"grpc-encoding", "gzip"}}, 4096);
  EXPECT_EQ(not_gzip[0].data, "plain text");
  EXPECT_NE(not_gzip[0].decoding.error, "");
}

TEST(DecodeExchange, BodiesAndGrpcMessagesOfBothSides) {
  const std::string request = protobuf_text(sample_text(300));
  const std::string response = protobuf_text(sample_text(500));
  HttpExchange exchange;
  exchange.request.emplace();
  exchange.request->headers = {{"content-type", "application/grpc"}, {"grpc-encoding", "deflate"}};
  exchange.response.emplace();
  exchange.response->headers = {{"content-type", "application/grpc"}, {"grpc-encoding", "gzip"}};
  exchange.grpc.emplace();
  exchange.grpc->request_messages.push_back(grpc_message(encoded("deflate", request), true));
  exchange.grpc->response_messages.push_back(grpc_message(encoded("gzip", response), true));
  // The HTTP/2 bodies hold the length-prefixed messages, gzip'd ones included,
  // and no Content-Encoding: left as they are.
  exchange.request->body = "\x01" + encoded("gzip", request);
  exchange.request->body_length = exchange.request->body.size();
  const std::string body = exchange.request->body;
  decode_exchange(exchange, 4096);
  EXPECT_EQ(exchange.grpc->request_messages[0].data, request);
  EXPECT_EQ(exchange.grpc->request_messages[0].decoding.codings, "deflate");
  EXPECT_EQ(exchange.grpc->response_messages[0].data, response);
  EXPECT_EQ(exchange.grpc->response_messages[0].decoding.codings, "gzip");
  EXPECT_EQ(exchange.request->body, body);
  EXPECT_FALSE(exchange.request->decoding.decoded());
  EXPECT_EQ(exchange.request->decoding.error, "");
}

TEST(DecodeGrpcMessages, TheFlagWithIdentityOrAnEmptyMessage) {
  std::vector<GrpcMessage> identity{grpc_message("\x0a\x01x", true)};
  decode_grpc_messages(identity, {{"grpc-encoding", "identity"}}, 4096);
  EXPECT_EQ(identity[0].decoding.error, "compressed, but grpc-encoding is identity");
  EXPECT_FALSE(readable_whole(identity[0]));
  // An empty message has nothing to undo: the empty protobuf message, whole.
  std::vector<GrpcMessage> empty{grpc_message("", true)};
  decode_grpc_messages(empty, {{"grpc-encoding", "gzip"}}, 4096);
  EXPECT_EQ(empty[0].decoding.codings, "gzip");
  EXPECT_EQ(empty[0].decoding.error, "");
  EXPECT_TRUE(readable_whole(empty[0]));
}

// Messages that inflate well cannot make one side decode more than 16 MiB,
// whatever --max-body allows each.
TEST(DecodeGrpcMessages, ASidesDecodedBytesAreBounded) {
  const size_t max_body = 1 << 20;
  const std::string content(max_body, 'x');
  const std::string sent = encoded("gzip", content);  // about a thousandth of it
  std::vector<GrpcMessage> messages(20, grpc_message(sent, true));
  decode_grpc_messages(messages, {{"grpc-encoding", "gzip"}}, max_body);
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(messages[i].data.size(), max_body) << i;
    EXPECT_EQ(messages[i].decoding.codings, "gzip") << i;
  }
  for (size_t i = 16; i < messages.size(); ++i) {
    EXPECT_EQ(messages[i].data, sent) << i;
    EXPECT_EQ(messages[i].decoding.error,
              "this side's messages already decoded to 16777216 bytes: no more are")
        << i;
  }
}

}  // namespace
}  // namespace tlstap::proto
