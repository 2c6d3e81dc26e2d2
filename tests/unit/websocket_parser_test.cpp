// The WebSocket parser against RFC 6455's and RFC 7692's own examples, and
// against frames compressed by zlib's deflate (the witness for inflation):
// headers, masking, fragments with control frames between them, chunk
// boundaries anywhere, payload limits, context takeover, and what makes a
// stream unreadable.
#include "proto/websocket/websocket_parser.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "test_support.h"

namespace tlstap::proto {
namespace {

using namespace std::string_literals;
using Opcode = WebSocketOpcode;

// RFC 6455 section 5.7.
const std::string kHelloUnmasked = "\x81\x05Hello"s;
const std::string kHelloMasked = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"s;
const std::string kHelFragment = "\x01\x03Hel"s;
const std::string kLoFinal = "\x80\x02lo"s;
const std::string kPing = "\x89\x05Hello"s;
// RFC 7692 section 7.2.3.1: "Hello" compressed, in one frame.
const std::string kHelloDeflated = "\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00"s;
// RFC 7692 section 7.2.3.2: a second "Hello" on the same context, in one frame.
const std::string kHelloAgainDeflated = "\xc1\x05\xf2\x00\x11\x00\x00"s;

const WebSocketExtensions kDeflate{.permessage_deflate = true};

std::string hex(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x} ", b);
  return out;
}

struct Capture {
  explicit Capture(bool from_client = false, WebSocketExtensions extensions = {}, size_t max_payload = 4096)
      : parser(from_client, extensions, max_payload) {}
  ParseState feed(const std::string& bytes, uint64_t time_ns = 1) {
    return parser.feed(test::as_bytes(bytes), time_ns, out);
  }
  WebSocketParser parser;
  std::vector<WebSocketMessage> out;
};

std::string frame_header(uint8_t first, uint64_t length, bool masked = false) {
  std::string h(1, static_cast<char>(first));
  uint8_t mask_bit = masked ? 0x80 : 0;
  if (length < 126) {
    h += static_cast<char>(mask_bit | length);
  } else if (length <= 0xffff) {
    h += static_cast<char>(mask_bit | 126);
    for (int shift = 8; shift >= 0; shift -= 8) h += static_cast<char>(length >> shift);
  } else {
    h += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) h += static_cast<char>(length >> shift);
  }
  return h;
}

// A frame as a client sends it: the payload XORed with a mask key.
std::string masked_frame(uint8_t first, const std::string& payload, std::string key = "\x12\x34\x56\x78"s) {
  std::string f = frame_header(first, payload.size(), true) + key;
  for (size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ key[i % 4]);
  return f;
}

// permessage-deflate as a sender does it (RFC 7692 section 7.2.1): raw
// deflate, a sync flush per message, the trailing 00 00 ff ff removed.
class Deflater {
 public:
  Deflater() { deflateInit2(&stream_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY); }
  ~Deflater() { deflateEnd(&stream_); }
  std::string message(const std::string& text) {
    std::string out(deflateBound(&stream_, text.size()) + 16, '\0');
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    stream_.avail_in = text.size();
    stream_.next_out = reinterpret_cast<Bytef*>(out.data());
    stream_.avail_out = out.size();
    EXPECT_EQ(deflate(&stream_, Z_SYNC_FLUSH), Z_OK);
    out.resize(out.size() - stream_.avail_out);
    EXPECT_TRUE(out.ends_with("\x00\x00\xff\xff"s));
    out.resize(out.size() - 4);
    return out;
  }
  void reset() { deflateReset(&stream_); }

 private:
  z_stream stream_{};
};

// --- frame headers -----------------------------------------------------------

TEST(WebSocketFrameHeader, RfcExamples) {
  auto unmasked = parse_websocket_frame_header(test::as_bytes(kHelloUnmasked));
  ASSERT_EQ(unmasked.state, ParseState::done);
  EXPECT_TRUE(unmasked.header.fin);
  EXPECT_EQ(unmasked.header.opcode, Opcode::text);
  EXPECT_FALSE(unmasked.header.masked);
  EXPECT_EQ(unmasked.header.payload_length, 5u);
  EXPECT_EQ(unmasked.header.header_length, 2u);

  auto masked = parse_websocket_frame_header(test::as_bytes(kHelloMasked));
  ASSERT_EQ(masked.state, ParseState::done);
  EXPECT_TRUE(masked.header.masked);
  EXPECT_EQ(masked.header.mask, (std::array<uint8_t, 4>{0x37, 0xfa, 0x21, 0x3d}));
  EXPECT_EQ(masked.header.header_length, 6u);

  auto deflated = parse_websocket_frame_header(test::as_bytes(kHelloDeflated));
  ASSERT_EQ(deflated.state, ParseState::done);
  EXPECT_TRUE(deflated.header.rsv1);
}

TEST(WebSocketFrameHeader, ExtendedLengths) {
  auto medium = frame_header(0x82, 256);
  EXPECT_EQ(medium, "\x82\x7e\x01\x00"s);  // RFC 6455 section 5.7's 256-byte binary frame
  auto parsed = parse_websocket_frame_header(test::as_bytes(medium));
  EXPECT_EQ(parsed.header.payload_length, 256u);
  EXPECT_EQ(parsed.header.header_length, 4u);

  auto large = frame_header(0x82, 65536, true) + "abcd";
  parsed = parse_websocket_frame_header(test::as_bytes(large));
  ASSERT_EQ(parsed.state, ParseState::done);
  EXPECT_EQ(parsed.header.payload_length, 65536u);
  EXPECT_EQ(parsed.header.header_length, 14u);
}

TEST(WebSocketFrameHeader, IncompleteUntilTheLastHeaderByte) {
  std::string large = frame_header(0x82, 65536, true) + "abcd";
  for (size_t n = 0; n < large.size(); ++n)
    EXPECT_EQ(parse_websocket_frame_header(test::as_bytes(large.substr(0, n))).state,
              ParseState::need_more_data)
        << n;
}

TEST(WebSocketFrameHeader, ProtocolViolationsAreInvalid) {
  for (std::string bad : {"\xa1\x00"s,                        // RSV2
                          "\x91\x00"s,                        // RSV3
                          "\x83\x00"s,                        // reserved data opcode
                          "\x8b\x00"s,                        // reserved control opcode
                          "\x09\x00"s,                        // a fragmented ping
                          "\x88\x7e\x00\x7e"s,                // a control frame longer than 125
                          frame_header(0x82, 1ULL << 63)}) {  // a 64-bit length with its top bit
    EXPECT_EQ(parse_websocket_frame_header(test::as_bytes(bad)).state, ParseState::invalid) << hex(bad);
  }
}

// --- extensions --------------------------------------------------------------

TEST(WebSocketExtensions, PermessageDeflateAndItsParameters) {
  auto none = parse_websocket_extensions("");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->permessage_deflate);

  auto chrome = parse_websocket_extensions("permessage-deflate; client_max_window_bits=15");
  ASSERT_TRUE(chrome);
  EXPECT_TRUE(chrome->permessage_deflate);
  EXPECT_FALSE(chrome->client_no_context_takeover || chrome->server_no_context_takeover);

  auto both = parse_websocket_extensions(
      "x-webkit-deflate-frame, Permessage-Deflate ;server_no_context_takeover; client_no_context_takeover");
  ASSERT_TRUE(both);
  EXPECT_TRUE(both->permessage_deflate && both->server_no_context_takeover &&
              both->client_no_context_takeover);

  auto other = parse_websocket_extensions("x-webkit-deflate-frame");
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->permessage_deflate);

  auto empty_element = parse_websocket_extensions(", permessage-deflate,");
  ASSERT_TRUE(empty_element);
  EXPECT_TRUE(empty_element->permessage_deflate);

  EXPECT_FALSE(parse_websocket_extensions("permessage-deflate, ; x"));
}

// --- messages ----------------------------------------------------------------

TEST(WebSocketParser, UnmaskedAndMaskedHello) {
  Capture server;
  EXPECT_EQ(server.feed(kHelloUnmasked, 5), ParseState::done);
  ASSERT_EQ(server.out.size(), 1u);
  EXPECT_EQ(server.out[0].opcode, Opcode::text);
  EXPECT_EQ(server.out[0].payload, "Hello");
  EXPECT_EQ(server.out[0].length, 5u);
  EXPECT_EQ(server.out[0].frames, 1u);
  EXPECT_FALSE(server.out[0].masked);
  EXPECT_EQ(server.out[0].first_byte_ns, 5u);

  Capture client(true);
  EXPECT_EQ(client.feed(kHelloMasked), ParseState::done);
  ASSERT_EQ(client.out.size(), 1u);
  EXPECT_EQ(client.out[0].payload, "Hello");
  EXPECT_TRUE(client.out[0].masked);
}

TEST(WebSocketParser, PingBetweenFragmentsComesFirst) {
  Capture c;
  EXPECT_EQ(c.feed(kHelFragment, 1), ParseState::done);
  EXPECT_TRUE(c.out.empty());
  EXPECT_EQ(c.feed(kPing, 2), ParseState::done);
  EXPECT_EQ(c.feed(kLoFinal, 3), ParseState::done);
  ASSERT_EQ(c.out.size(), 2u);
  EXPECT_EQ(c.out[0].opcode, Opcode::ping);
  EXPECT_EQ(c.out[0].payload, "Hello");
  EXPECT_EQ(c.out[1].opcode, Opcode::text);
  EXPECT_EQ(c.out[1].payload, "Hello");
  EXPECT_EQ(c.out[1].frames, 2u);
  EXPECT_EQ(c.out[1].first_byte_ns, 1u);
  EXPECT_EQ(c.out[1].last_byte_ns, 3u);
}

TEST(WebSocketParser, AnyChunkBoundaryGivesTheSameMessages) {
  Deflater deflater;
  const std::string long_text(300, 'x');
  const std::string stream = kHelloMasked + masked_frame(0x01, "frag-") + masked_frame(0x89, "ping!") +
                             masked_frame(0x80, "end") + masked_frame(0x82, std::string(70000, '\x07')) +
                             masked_frame(0xc1, deflater.message(long_text)) +
                             masked_frame(0x88,
                                          "\x03\xe8"
                                          "bye"s);
  auto summary = [](const std::vector<WebSocketMessage>& out) {
    std::vector<std::tuple<Opcode, uint64_t, std::string, uint32_t, bool>> rows;
    for (const auto& m : out) rows.emplace_back(m.opcode, m.length, m.payload, m.frames, m.compressed);
    return rows;
  };
  Capture whole(true, kDeflate, 100);
  EXPECT_EQ(whole.feed(stream), ParseState::done);
  ASSERT_EQ(whole.out.size(), 6u);
  EXPECT_EQ(summary(whole.out)[4], std::make_tuple(Opcode::text, 300u, std::string(100, 'x'), 1u, true));
  for (size_t cut = 1; cut < stream.size(); cut += cut < 40 ? 1 : 997) {
    Capture split(true, kDeflate, 100);
    split.feed(stream.substr(0, cut));
    EXPECT_EQ(split.feed(stream.substr(cut)), ParseState::done);
    EXPECT_EQ(summary(split.out), summary(whole.out)) << "cut at " << cut;
  }
  Capture bytewise(true, kDeflate, 100);
  for (char ch : stream) bytewise.feed(std::string(1, ch));
  EXPECT_EQ(summary(bytewise.out), summary(whole.out));
}

TEST(WebSocketParser, PayloadKeptUpToTheLimitCountedWhole) {
  Capture c(false, {}, 10);
  const std::string payload(1000, 'a');
  EXPECT_EQ(c.feed(frame_header(0x82, payload.size()).substr(0, 3)), ParseState::need_more_data);
  EXPECT_EQ(c.feed(frame_header(0x82, payload.size()).substr(3) + payload.substr(0, 500)),
            ParseState::need_more_data);
  EXPECT_EQ(c.feed(payload.substr(500)), ParseState::done);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].opcode, Opcode::binary);
  EXPECT_EQ(c.out[0].length, 1000u);
  EXPECT_EQ(c.out[0].payload, std::string(10, 'a'));
}

TEST(WebSocketParser, TextCutByTheLimitEndsOnAWholeCharacter) {
  Capture c(false, {}, 6);
  EXPECT_EQ(c.feed("\x81\x08"
                   "ab\xe2\x82\xac\xe2\x82\xac"s),
            ParseState::done);  // "ab€€"
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].payload, "ab\xe2\x82\xac");  // not "ab€" and half a "€"
  EXPECT_EQ(c.out[0].length, 8u);
}

TEST(WebSocketParser, CloseCarriesItsCodeAndReason) {
  Capture c;
  EXPECT_EQ(c.feed("\x88\x05\x03\xe8"
                   "bye"s +
                   "\x88\x00"s),
            ParseState::done);
  ASSERT_EQ(c.out.size(), 2u);
  EXPECT_EQ(c.out[0].opcode, Opcode::close);
  EXPECT_EQ(c.out[0].close_code, 1000);
  EXPECT_EQ(c.out[0].payload, "bye");
  EXPECT_EQ(c.out[0].length, 3u);
  EXPECT_FALSE(c.out[1].close_code);  // a close without a body
  EXPECT_EQ(c.out[1].length, 0u);
}

TEST(WebSocketParser, CloseCodeReadWhateverThePayloadLimit) {
  for (size_t limit : {0, 1, 2, 4}) {
    Capture c(false, {}, limit);
    EXPECT_EQ(c.feed("\x88\x0a\x03\xe8goodbye!"s), ParseState::done);
    ASSERT_EQ(c.out.size(), 1u);
    EXPECT_EQ(c.out[0].close_code, 1000) << limit;
    EXPECT_EQ(c.out[0].length, 8u);
    EXPECT_EQ(c.out[0].payload, std::string("goodbye!").substr(0, limit));
  }
}

TEST(WebSocketParser, TimesOfAHeaderSplitAcrossChunks) {
  Capture c;
  c.feed("\x89"s, 1000);
  EXPECT_EQ(c.feed("\x00"s, 1001), ParseState::done);  // a ping without a body
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].first_byte_ns, 1000u);
  EXPECT_EQ(c.out[0].last_byte_ns, 1001u);
}

TEST(WebSocketParser, RfcDeflatedHelloTwiceOnOneContext) {
  Capture c(false, kDeflate);
  EXPECT_EQ(c.feed(kHelloDeflated + kHelloAgainDeflated), ParseState::done);
  ASSERT_EQ(c.out.size(), 2u);
  for (const auto& m : c.out) {
    EXPECT_TRUE(m.compressed);
    EXPECT_FALSE(m.inflate_failed);
    EXPECT_EQ(m.payload, "Hello");
    EXPECT_EQ(m.length, 5u);
  }
}

TEST(WebSocketParser, AFinalBlockKeepsTheContextForTheNextMessage) {
  // The sender ends its first message with a final block (Z_FINISH, nothing
  // to strip), then compresses the second against the first's window.
  const std::string text = "the same words again and again, the same words";
  z_stream deflater{};
  deflateInit2(&deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  auto compress = [&](int flush) {
    std::string out(256, '\0');
    deflater.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    deflater.avail_in = text.size();
    deflater.next_out = reinterpret_cast<Bytef*>(out.data());
    deflater.avail_out = out.size();
    deflate(&deflater, flush);
    out.resize(out.size() - deflater.avail_out);
    return out;
  };
  std::string first = compress(Z_FINISH);
  deflateReset(&deflater);
  deflateSetDictionary(&deflater, reinterpret_cast<const Bytef*>(text.data()), text.size());
  std::string second = compress(Z_SYNC_FLUSH);
  deflateEnd(&deflater);
  ASSERT_TRUE(second.ends_with("\x00\x00\xff\xff"s));
  second.resize(second.size() - 4);
  ASSERT_LT(second.size(), 10u);  // it does refer back

  Capture c(false, kDeflate);
  c.feed(frame_header(0xc1, first.size()) + first + frame_header(0xc1, second.size()) + second);
  ASSERT_EQ(c.out.size(), 2u);
  EXPECT_EQ(c.out[0].payload, text);
  EXPECT_EQ(c.out[1].payload, text);
  EXPECT_FALSE(c.out[1].inflate_failed);
}

TEST(WebSocketParser, CompressedFragmentsInflateAsOneMessage) {
  Deflater deflater;
  std::string compressed = deflater.message("a message in three frames");
  std::string stream = frame_header(0x41, 4) + compressed.substr(0, 4) + frame_header(0x00, 3) +
                       compressed.substr(4, 3) + frame_header(0x80, compressed.size() - 7) +
                       compressed.substr(7);
  Capture c(false, kDeflate);
  EXPECT_EQ(c.feed(stream), ParseState::done);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[0].payload, "a message in three frames");
  EXPECT_EQ(c.out[0].frames, 3u);
}

TEST(WebSocketParser, ContextTakeoverFollowsTheNegotiation) {
  const std::string first = "the same words again and again, the same words";
  // The sender keeps its context: the second message refers back to the first.
  Deflater kept;
  std::string stream = masked_frame(0xc1, kept.message(first));
  stream += masked_frame(0xc1, kept.message(first));  // after the first: the order of a + is unspecified
  Capture follows(true, kDeflate);
  follows.feed(stream);
  ASSERT_EQ(follows.out.size(), 2u);
  EXPECT_EQ(follows.out[1].payload, first);

  // The client was told to reset per message: its second message stands alone,
  // and a parser that did not reset would read it from a stale window.
  Deflater reset;
  std::string one = reset.message(first);
  reset.reset();
  std::string two = reset.message("other words");
  WebSocketExtensions no_takeover = kDeflate;
  no_takeover.client_no_context_takeover = true;
  Capture resets(true, no_takeover);
  resets.feed(masked_frame(0xc1, one) + masked_frame(0xc1, two));
  ASSERT_EQ(resets.out.size(), 2u);
  EXPECT_EQ(resets.out[0].payload, first);
  EXPECT_EQ(resets.out[1].payload, "other words");
}

TEST(WebSocketParser, CorruptCompressedMessageIsFlaggedAndSoAreItsSuccessorsOnTheContext) {
  const std::string corrupt = "\xc1\x03\xff\xff\xff"s;  // a reserved block type
  Capture kept(false, kDeflate);
  EXPECT_EQ(kept.feed(corrupt + kHelloDeflated + kHelloUnmasked), ParseState::done);
  ASSERT_EQ(kept.out.size(), 3u);
  EXPECT_TRUE(kept.out[0].inflate_failed);
  EXPECT_EQ(kept.out[0].payload, "");
  EXPECT_TRUE(kept.out[1].inflate_failed);  // its window is unknown
  EXPECT_EQ(kept.out[2].payload, "Hello");  // uncompressed messages still read

  WebSocketExtensions no_takeover = kDeflate;
  no_takeover.server_no_context_takeover = true;
  Capture resets(false, no_takeover);
  resets.feed(corrupt + kHelloDeflated);
  ASSERT_EQ(resets.out.size(), 2u);
  EXPECT_TRUE(resets.out[0].inflate_failed);
  EXPECT_EQ(resets.out[1].payload, "Hello");
}

TEST(WebSocketParser, InflationStopsAtItsLimit) {
  Deflater deflater;
  std::string zeros(WebSocketParser::kMaxInflatedBytes + 1, '\0');
  std::string bomb = deflater.message(zeros);
  ASSERT_LT(bomb.size(), 200'000u);
  Capture c(false, kDeflate);
  c.feed(frame_header(0xc2, bomb.size()) + bomb);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_TRUE(c.out[0].inflate_failed);
}

TEST(WebSocketParser, BrokenStreamsAreInvalidForGood) {
  for (const std::string& bad : {kLoFinal,                       // a continuation with nothing begun
                                 kHelFragment + kHelloUnmasked,  // a new message inside a fragmented one
                                 kHelloDeflated}) {              // RSV1 without permessage-deflate
    Capture c;
    EXPECT_EQ(c.feed(bad), ParseState::invalid) << hex(bad);
    EXPECT_EQ(c.feed(kHelloUnmasked), ParseState::invalid);
    EXPECT_TRUE(c.out.empty());
  }
}

TEST(WebSocketParser, AGapEndsTheStream) {
  Capture c;
  c.feed(kHelloUnmasked);
  c.parser.lost(0);  // nothing lost: nothing changes
  EXPECT_EQ(c.feed(kHelloUnmasked), ParseState::done);
  c.parser.lost(3);
  EXPECT_EQ(c.feed(kHelloUnmasked), ParseState::invalid);
  EXPECT_EQ(c.out.size(), 2u);
}

}  // namespace
}  // namespace tlstap::proto
