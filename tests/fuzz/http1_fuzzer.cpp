// libFuzzer target: whatever bytes arrive, however the stream is cut into chunks,
// the HTTP/1.x request and response parsers never crash, hang or leak; a body is
// kept exactly up to the limit; and, without gaps, the messages reported do not
// depend on where the stream was cut.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http1/http1_parser.h"

namespace {

using tlstap::proto::Header;
using tlstap::proto::Http1Parser;
using tlstap::proto::HttpMessage;
using tlstap::proto::ParseState;

constexpr std::string_view kMethods[] = {"GET", "HEAD", "CONNECT", "POST"};

// How to deliver the stream, read from a header at the start of the input so
// that seeds are a few plan bytes followed by plain HTTP text.
struct Plan {
  size_t max_body_bytes = 0;
  std::vector<size_t> cuts;  // chunk boundaries, increasing, the last one the end
  std::vector<std::string_view> methods;
  uint32_t chaos = 0;  // bits choosing where methods arrive late and bytes are lost
  std::string_view stream;
};

// Plan header: [0] body limit, [1] bit 0: byte by byte, [2..9] cuts as
// fractions of the stream, [10..13] chaos, [14] method count, [15..16] methods
// (two bits each).
constexpr size_t kPlanBytes = 17;

Plan read_plan(const uint8_t* data, size_t size) {
  uint8_t h[kPlanBytes] = {};
  std::copy_n(data, std::min(size, kPlanBytes), h);
  Plan plan;
  if (size > kPlanBytes) plan.stream = {reinterpret_cast<const char*>(data) + kPlanBytes, size - kPlanBytes};
  plan.max_body_bytes = h[0] % 65;
  if (h[1] & 1) {
    for (size_t i = 1; i < plan.stream.size(); ++i) plan.cuts.push_back(i);
  } else {
    for (size_t i = 2; i < 10; ++i) plan.cuts.push_back(plan.stream.size() * h[i] / 255);
    std::sort(plan.cuts.begin(), plan.cuts.end());
  }
  plan.cuts.push_back(plan.stream.size());
  plan.chaos = static_cast<uint32_t>(h[10] | h[11] << 8 | h[12] << 16 | h[13] << 24);
  unsigned method_bits = h[15] | h[16] << 8;
  for (size_t i = 0; i < h[14] % 9u; ++i) plan.methods.push_back(kMethods[method_bits >> (2 * i) & 3]);
  return plan;
}

void check_body(const HttpMessage& message, size_t max_body_bytes) {
  if (message.body.size() != std::min<uint64_t>(message.body_length, max_body_bytes)) abort();
}

bool same(const HttpMessage& a, const HttpMessage& b) {
  return a.version == b.version && a.method == b.method && a.target == b.target &&
         a.authority == b.authority && a.status == b.status && a.headers == b.headers &&
         a.trailers == b.trailers && a.body_length == b.body_length && a.body == b.body &&
         a.first_byte_ns == b.first_byte_ns && a.last_byte_ns == b.last_byte_ns;
}

struct Run {
  std::vector<HttpMessage> messages;
  ParseState state = ParseState::done;
  bool switched = false;
};

// Delivers the stream in the chunks of `cuts` (all at one time, so times match
// across cuts). With chaos, methods arrive between chunks and bytes get lost.
Run deliver(Http1Parser::Kind kind, const Plan& plan, const std::vector<size_t>& cuts, bool chaos) {
  Http1Parser parser(kind, plan.max_body_bytes);
  size_t next_method = 0;
  auto give_method = [&] {
    if (next_method < plan.methods.size()) parser.expect_response_to(plan.methods[next_method++]);
  };
  if (!chaos) {
    while (next_method < plan.methods.size()) give_method();
  }
  Run run;
  size_t begin = 0;
  for (size_t i = 0; i < cuts.size(); ++i) {
    uint32_t bits = plan.chaos >> (i % 16 * 2);
    if (chaos && (bits & 1)) give_method();
    if (chaos && (bits & 2) && begin < cuts[i]) {
      parser.lost(1);  // the first byte of this chunk never arrives
      ++begin;
    }
    std::string_view chunk = plan.stream.substr(begin, cuts[i] - begin);
    run.state = parser.feed(std::as_bytes(std::span(chunk.data(), chunk.size())), 1000, run.messages);
    begin = cuts[i];
  }
  parser.finish(2000, run.messages);
  run.switched = parser.switched_protocols();
  for (const HttpMessage& message : run.messages) check_body(message, plan.max_body_bytes);
  return run;
}

void check_cut_invariance(Http1Parser::Kind kind, const Plan& plan) {
  Run whole = deliver(kind, plan, {plan.stream.size()}, false);
  Run cut = deliver(kind, plan, plan.cuts, false);
  if (whole.state != cut.state || whole.switched != cut.switched ||
      !std::equal(whole.messages.begin(), whole.messages.end(), cut.messages.begin(), cut.messages.end(),
                  same))
    abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Plan plan = read_plan(data, size);
  for (auto kind : {Http1Parser::Kind::request, Http1Parser::Kind::response}) {
    check_cut_invariance(kind, plan);
    deliver(kind, plan, plan.cuts, true);
  }
  (void)tlstap::proto::looks_like_http1_request(plan.stream);
  (void)tlstap::proto::looks_like_http1_response(plan.stream);
  return 0;
}
