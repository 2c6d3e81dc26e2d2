// libFuzzer target: whatever bytes arrive, however the stream is cut into chunks
// and wherever bytes are lost, the WebSocket parser never crashes, hangs or leaks;
// its states and messages match a walk of the stream frame by frame (with
// parse_websocket_frame_header, itself checked against RFC 6455 section 5.2);
// payloads are kept exactly up to the limit and inflated as a whole-message
// inflater does; and parse_websocket_extensions is consistent.
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/utf8.h"
#include "proto/websocket/websocket_parser.h"

namespace {

using tlstap::proto::ParsedFrameHeader;
using tlstap::proto::ParseState;
using tlstap::proto::WebSocketExtensions;
using tlstap::proto::WebSocketFrameHeader;
using tlstap::proto::WebSocketMessage;
using tlstap::proto::WebSocketOpcode;
using tlstap::proto::WebSocketParser;

// Says which invariant broke, so that a crash report is readable without a debugger.
#define CHECK(condition) ((condition) ? void() : broken(#condition, __LINE__))
[[noreturn]] void broken(const char* what, int line) {
  fprintf(stderr, "websocket_fuzzer.cpp:%d: invariant broken: %s\n", line, what);
  abort();
}

uint8_t u8(std::byte b) {
  return static_cast<uint8_t>(b);
}
uint8_t u8(WebSocketOpcode opcode) {
  return static_cast<uint8_t>(opcode);
}
bool is_control(WebSocketOpcode opcode) {
  return u8(opcode) >= 0x8;
}

// Small limits matter: 0 and 1 keep less than a close code, 125 is a whole control frame.
constexpr size_t kLimits[] = {0, 1, 2, 7, 125, 4096, 65536, 1 << 20};
constexpr size_t kMaxHeader = 14;
constexpr uint64_t kTime0 = 1000;  // chunk i arrives at kTime0 + i

// How to parse and deliver the stream, read from a header at the start of the
// input so that seeds are a few plan bytes followed by plain frames.
struct Plan {
  bool from_client = false;
  WebSocketExtensions extensions;
  size_t limit = 0;
  std::vector<size_t> cuts;  // chunk boundaries, increasing, the last one the end
  uint32_t chaos = 0;        // two bits a chunk: move the parser first; lose its first byte
  std::span<const std::byte> stream;
};

// Plan header: [0] bit 0: from the client, bit 1: permessage-deflate, bit 2:
// client_no_context_takeover, bit 3: server_no_context_takeover, bit 4: byte by
// byte, bits 5-7: the payload limit (kLimits); [1..8] cuts as fractions of the
// stream; [9..12] chaos.
constexpr size_t kPlanBytes = 13;

Plan read_plan(const uint8_t* data, size_t size) {
  uint8_t h[kPlanBytes] = {};
  std::copy_n(data, std::min(size, kPlanBytes), h);
  Plan plan;
  if (size > kPlanBytes)
    plan.stream = {reinterpret_cast<const std::byte*>(data) + kPlanBytes, size - kPlanBytes};
  plan.from_client = h[0] & 1;
  plan.extensions = {.permessage_deflate = (h[0] & 2) != 0,
                     .client_no_context_takeover = (h[0] & 4) != 0,
                     .server_no_context_takeover = (h[0] & 8) != 0};
  plan.limit = kLimits[h[0] >> 5];
  if (h[0] & 16) {
    for (size_t i = 1; i < plan.stream.size(); ++i) plan.cuts.push_back(i);
  } else {
    for (size_t i = 1; i < 9; ++i) plan.cuts.push_back(plan.stream.size() * h[i] / 255);
    std::sort(plan.cuts.begin(), plan.cuts.end());
  }
  plan.cuts.push_back(plan.stream.size());
  plan.chaos = static_cast<uint32_t>(h[9] | h[10] << 8 | h[11] << 16 | h[12] << 24);
  return plan;
}

// What RFC 6455 section 5.2 makes of the first bytes of a frame.
ParseState header_spec(std::span<const std::byte> b) {
  if (b.size() < 2) return ParseState::need_more_data;
  uint8_t b0 = u8(b[0]), b1 = u8(b[1]), opcode = b0 & 0x0f, length7 = b1 & 0x7f;
  bool control = opcode >= 0x8, known = opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xa);
  if ((b0 & 0x30) || !known || (control && (!(b0 & 0x80) || length7 > 125))) return ParseState::invalid;
  size_t length_bytes = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
  if (b.size() < 2 + length_bytes + (b1 & 0x80 ? 4 : 0)) return ParseState::need_more_data;
  if (length7 == 127 && (u8(b[2]) & 0x80)) return ParseState::invalid;
  return ParseState::done;
}

void check_header_fields(const WebSocketFrameHeader& h, std::span<const std::byte> b) {
  uint8_t b0 = u8(b[0]), b1 = u8(b[1]), length7 = b1 & 0x7f;
  size_t length_bytes = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
  CHECK(h.fin == ((b0 & 0x80) != 0) && h.rsv1 == ((b0 & 0x40) != 0) && u8(h.opcode) == (b0 & 0x0f) &&
        h.masked == ((b1 & 0x80) != 0));
  CHECK(h.header_length == 2 + length_bytes + (h.masked ? 4 : 0));
  uint64_t length = length_bytes ? 0 : length7;
  for (size_t i = 0; i < length_bytes; ++i) length = length << 8 | u8(b[2 + i]);
  CHECK(h.payload_length == length);
  for (size_t i = 0; i < 4; ++i) CHECK(h.mask[i] == (h.masked ? u8(b[2 + length_bytes + i]) : 0));
}

// Parses every prefix of a frame's first bytes: each state is the spec's, and
// the header, once done, does not change with more bytes. Returns the parse of
// all of them and, when invalid, how many bytes it took to know.
struct HeaderWalk {
  ParsedFrameHeader parsed;
  size_t invalid_after = 0;
};
HeaderWalk walk_header(std::span<const std::byte> rest) {
  HeaderWalk walk;
  std::optional<WebSocketFrameHeader> done;
  for (size_t k = 0; k <= std::min(rest.size(), kMaxHeader); ++k) {
    walk.parsed = tlstap::proto::parse_websocket_frame_header(rest.first(k));
    CHECK(walk.parsed.state == header_spec(rest.first(k)));
    if (walk.parsed.state == ParseState::invalid) {
      walk.invalid_after = k;
      return walk;
    }
    if (walk.parsed.state != ParseState::done) continue;
    if (!done) {
      check_header_fields(walk.parsed.header, rest);
      done = walk.parsed.header;
    }
    CHECK(walk.parsed.header.header_length == done->header_length &&
          walk.parsed.header.payload_length == done->payload_length);
  }
  return walk;
}

// A message as the stream frames it: the payload unmasked but not inflated.
struct Expected {
  WebSocketOpcode opcode = WebSocketOpcode::text;
  std::string raw;
  uint32_t frames = 0;
  bool masked = false;
  bool compressed = false;
  size_t begin = 0, end = 0;  // stream offsets: its first byte, past its last
  // Compressed: what inflating it gives (see Inflation).
  bool inflate_fails = false;
  uint64_t inflated_length = 0;
  std::string inflated;  // the first bytes, up to the limit
};

struct Model {
  std::vector<Expected> messages;  // in the order they end
  std::vector<bool> between;       // [offset]: between frames
  size_t invalid_at = SIZE_MAX;    // the parser knows the stream is broken once it has this many bytes

  ParseState state_after(size_t offset) const {
    if (offset >= invalid_at) return ParseState::invalid;
    return between[offset] ? ParseState::done : ParseState::need_more_data;
  }
  size_t ended_by(size_t offset) const {
    return std::count_if(messages.begin(), messages.end(),
                         [&](const Expected& e) { return e.end <= offset; });
  }
};

// The frames of the stream one by one, with the rules the header documents: a
// continuation needs a message begun, a data frame may not start inside one,
// and RSV1 needs permessage-deflate and the first frame of a data message.
Model walk_stream(std::span<const std::byte> s, const WebSocketExtensions& extensions) {
  Model model;
  model.between.assign(s.size() + 1, false);
  model.between[0] = true;
  std::optional<Expected> data, control;
  size_t pos = 0;
  while (pos < s.size()) {
    HeaderWalk walk = walk_header(s.subspan(pos));
    if (walk.parsed.state == ParseState::invalid) {
      model.invalid_at = pos + walk.invalid_after;
      break;
    }
    if (walk.parsed.state != ParseState::done) break;
    const WebSocketFrameHeader& h = walk.parsed.header;
    bool is_control_frame = is_control(h.opcode), continuation = h.opcode == WebSocketOpcode::continuation;
    if ((continuation && !data) || (!is_control_frame && !continuation && data) ||
        (h.rsv1 && (!extensions.permessage_deflate || is_control_frame || continuation))) {
      model.invalid_at = pos + h.header_length;
      break;
    }
    std::optional<Expected>& pending = is_control_frame ? control : data;
    if (!continuation)
      pending = Expected{.opcode = h.opcode, .masked = h.masked, .compressed = h.rsv1, .begin = pos};
    ++pending->frames;
    size_t start = pos + h.header_length;
    if (s.size() - start < h.payload_length) break;
    for (size_t i = 0; i < h.payload_length; ++i)
      pending->raw.push_back(static_cast<char>(u8(s[start + i]) ^ (h.masked ? h.mask[i % 4] : 0)));
    pos = start + h.payload_length;
    model.between[pos] = true;
    if (h.fin) {
      pending->end = pos;
      model.messages.push_back(std::move(*pending));
      pending.reset();
    }
  }
  return model;
}

// RFC 7692 section 7.2.2 for one direction, a whole message at a time: the
// messages' DEFLATE data, each with the empty block its sender removed (unless
// it ends with a final block), through one raw inflater, reset between
// messages without context takeover. A final block ends zlib's stream, and the
// next starts with its window. With context takeover, once a message fails
// every later one does (as the header documents).
class Inflation {
 public:
  explicit Inflation(bool reset) : reset_(reset) { ready_ = inflateInit2(&z_, -MAX_WBITS) == Z_OK; }
  ~Inflation() {
    if (ready_) inflateEnd(&z_);
  }
  Inflation(const Inflation&) = delete;
  Inflation& operator=(const Inflation&) = delete;

  void message(Expected& e, size_t limit) {
    bool ended = false;
    bool inflated = !broken_ && inflate_all(e.raw, e, limit, ended);
    std::string tail("\x00\x00\xff\xff", 4);
    if (inflated && !ended) inflated = inflate_all(tail, e, limit, ended);
    e.inflate_fails = !inflated;
    broken_ = e.inflate_fails;
    if (reset_ && ready_) {
      inflateReset(&z_);
      broken_ = false;
    }
  }

 private:
  // `ended`: the input ended with a final block.
  bool inflate_all(std::string& in, Expected& e, size_t limit, bool& ended) {
    if (!ready_) return false;
    ended = false;
    z_.next_in = reinterpret_cast<Bytef*>(in.data());
    z_.avail_in = static_cast<uInt>(in.size());
    for (;;) {
      unsigned char out[16 * 1024];
      z_.next_out = out;
      z_.avail_out = sizeof out;
      int rc = inflate(&z_, Z_SYNC_FLUSH);
      size_t n = sizeof out - z_.avail_out;
      e.inflated_length += n;
      if (e.inflated_length > WebSocketParser::kMaxInflatedBytes) return false;
      e.inflated.append(reinterpret_cast<char*>(out), std::min(n, limit - e.inflated.size()));
      if (rc == Z_STREAM_END) {
        Bytef window[1 << MAX_WBITS];
        uInt size = sizeof window;
        inflateGetDictionary(&z_, window, &size);
        inflateReset(&z_);
        inflateSetDictionary(&z_, window, size);
        if (z_.avail_in == 0) return ended = true;
      } else if (rc == Z_BUF_ERROR || (rc == Z_OK && z_.avail_in == 0 && z_.avail_out != 0)) {
        return true;
      } else if (rc != Z_OK) {
        return false;
      }
    }
  }

  z_stream z_{};
  bool ready_ = false;
  bool reset_ = false;
  bool broken_ = false;
};

uint64_t time_of(const std::vector<size_t>& cuts, size_t offset) {
  return kTime0 + (std::upper_bound(cuts.begin(), cuts.end(), offset) - cuts.begin());
}

// What holds for any message of any run.
void check_any(const WebSocketMessage& m, size_t limit) {
  CHECK(m.opcode != WebSocketOpcode::continuation);
  CHECK(m.frames >= 1);
  CHECK(m.payload.size() <= limit && m.payload.size() <= m.length);
  CHECK(m.first_byte_ns <= m.last_byte_ns);
  CHECK(!m.inflate_failed || (m.compressed && m.payload.empty() && m.length == 0));
  CHECK(!m.close_code || m.opcode == WebSocketOpcode::close);
  CHECK(!m.compressed || !is_control(m.opcode));
}

// What the parser keeps of a payload whose first bytes are `first` (up to the
// limit): a text cut short ends on a whole character.
std::string_view kept(std::string_view first, uint64_t whole_length, WebSocketOpcode opcode) {
  bool cut = first.size() < whole_length;
  return opcode == WebSocketOpcode::text && cut ? tlstap::without_cut_sequence(first) : first;
}

void check_expected(const WebSocketMessage& m, const Expected& e, const Plan& plan,
                    const std::vector<size_t>& cuts) {
  check_any(m, plan.limit);
  CHECK(m.opcode == e.opcode && m.frames == e.frames && m.masked == e.masked && m.compressed == e.compressed);
  // Even when a header is split across chunks, or its frame has no payload.
  CHECK(m.first_byte_ns == time_of(cuts, e.begin) && m.last_byte_ns == time_of(cuts, e.end - 1));
  if (e.compressed) {
    CHECK(!m.close_code && m.inflate_failed == e.inflate_fails);
    if (!e.inflate_fails)
      CHECK(m.length == e.inflated_length && m.payload == kept(e.inflated, e.inflated_length, e.opcode));
    return;
  }
  CHECK(!m.inflate_failed);
  if (e.opcode == WebSocketOpcode::close && e.raw.size() >= 2) {
    // A close body: the code, then the reason, kept up to the limit (or 2 bytes short of it).
    CHECK(m.close_code == (static_cast<uint8_t>(e.raw[0]) << 8 | static_cast<uint8_t>(e.raw[1])));
    std::string_view reason = std::string_view(e.raw).substr(2);
    CHECK(m.length == reason.size() && reason.starts_with(m.payload));
    CHECK(m.payload.size() + 2 >= std::min(e.raw.size(), plan.limit));
  } else {
    CHECK(!m.close_code);
    CHECK(m.length == e.raw.size() &&
          m.payload == kept(std::string_view(e.raw).substr(0, plan.limit), e.raw.size(), e.opcode));
  }
}

bool same_content(const WebSocketMessage& a, const WebSocketMessage& b) {
  return a.opcode == b.opcode && a.length == b.length && a.payload == b.payload && a.frames == b.frames &&
         a.masked == b.masked && a.compressed == b.compressed && a.inflate_failed == b.inflate_failed &&
         a.close_code == b.close_code;
}

// Delivers the stream in the chunks of `cuts` and checks each state and message
// against the model. Chaos moves the parser between chunks (after a lost(0),
// which must change nothing) and, with `lose`, loses a chunk's first byte:
// from then on the stream is invalid and nothing more is reported.
std::vector<WebSocketMessage> deliver(const Plan& plan, const Model& model, const std::vector<size_t>& cuts,
                                      bool lose) {
  WebSocketParser parser(plan.from_client, plan.extensions, plan.limit);
  std::vector<WebSocketMessage> out;
  size_t begin = 0;
  bool lost = false, invalid = false;
  for (size_t i = 0; i < cuts.size(); ++i) {
    uint32_t bits = plan.chaos >> (i % 16 * 2);
    if (bits & 1) {
      parser.lost(0);
      WebSocketParser moved(std::move(parser));
      parser = std::move(moved);
    }
    if (lose && (bits & 2) && begin < cuts[i] && !lost) {
      parser.lost(1);
      lost = true;
      ++begin;
    }
    size_t before = out.size();
    ParseState state = parser.feed(plan.stream.subspan(begin, cuts[i] - begin), kTime0 + i, out);
    CHECK(!invalid || (state == ParseState::invalid && out.size() == before));
    invalid = state == ParseState::invalid;
    if (lost) {
      CHECK(state == ParseState::invalid && out.size() == before);
    } else {
      CHECK(state == model.state_after(cuts[i]));
      CHECK(out.size() == model.ended_by(cuts[i]));
    }
    begin = cuts[i];
  }
  // Past the end, nothing changes.
  size_t before = out.size();
  ParseState state = parser.feed({}, kTime0 + cuts.size(), out);
  CHECK(out.size() == before && (lost ? state == ParseState::invalid : state == model.state_after(begin)));
  for (size_t i = 0; i < out.size(); ++i) check_expected(out[i], model.messages[i], plan, cuts);
  return out;
}

void check_stream(const Plan& plan) {
  Model model = walk_stream(plan.stream, plan.extensions);
  if (plan.extensions.permessage_deflate) {
    Inflation inflation(plan.from_client ? plan.extensions.client_no_context_takeover
                                         : plan.extensions.server_no_context_takeover);
    for (Expected& e : model.messages)
      if (e.compressed) inflation.message(e, plan.limit);
  }
  std::vector<WebSocketMessage> whole = deliver(plan, model, {plan.stream.size()}, false);
  for (const auto& messages :
       {deliver(plan, model, plan.cuts, false), deliver(plan, model, plan.cuts, true)}) {
    CHECK(messages.size() <= whole.size());
    CHECK(std::equal(messages.begin(), messages.end(), whole.begin(), same_content));
  }
}

// An unknown extension, or letters' case, changes nothing.
void check_extensions(std::string_view header) {
  auto parsed = tlstap::proto::parse_websocket_extensions(header);
  auto same = [](const std::optional<WebSocketExtensions>& a, const std::optional<WebSocketExtensions>& b) {
    return a.has_value() == b.has_value() &&
           (!a || (a->permessage_deflate == b->permessage_deflate &&
                   a->client_no_context_takeover == b->client_no_context_takeover &&
                   a->server_no_context_takeover == b->server_no_context_takeover));
  };
  if (parsed)
    CHECK(parsed->permessage_deflate ||
          (!parsed->client_no_context_takeover && !parsed->server_no_context_takeover));
  std::string upper(header);
  for (char& c : upper)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  CHECK(same(parsed, tlstap::proto::parse_websocket_extensions(upper)));
  if (parsed && !header.empty() && header.back() != ',') {
    std::string more = std::string(header) + ", x-unknown; client_no_context_takeover";
    CHECK(same(parsed, tlstap::proto::parse_websocket_extensions(more)));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Plan plan = read_plan(data, size);
  check_stream(plan);
  check_extensions({reinterpret_cast<const char*>(plan.stream.data()), plan.stream.size()});
  return 0;
}
