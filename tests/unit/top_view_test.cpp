// The live view's statistics and screen, with a fake clock.
#include "cli/top_view.h"

#include <gtest/gtest.h>

#include <optional>

#include "test_support.h"

namespace tlstap {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

proto::HttpExchange exchange(std::string target, int status, uint64_t latency_ns) {
  proto::HttpExchange x;
  x.version = "1.1";
  x.request.emplace();
  x.request->method = "GET";
  x.request->authority = "api.local";
  x.request->target = std::move(target);
  x.request->first_byte_ns = 100;
  x.response.emplace();
  x.response->status = status;
  x.response->first_byte_ns = 100 + latency_ns;
  x.response->last_byte_ns = 100 + latency_ns;
  return x;
}

ConnectionIdentity process(std::string comm, uint32_t pid) {
  ConnectionIdentity c;
  c.comm = std::move(comm);
  c.pid = pid;
  return c;
}

TEST(TopStats, AProcessInAKubernetesPodShowsThePod) {
  TopStats stats;
  ConnectionIdentity in_pod = process("nginx", 30);
  in_pod.process.pod_name = "web-7d9f8c6b5-x2x9q";
  stats.add({exchange("/", 200, 1000), in_pod}, kSecond);
  auto rows = stats.rows(kSecond);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].process, "web-7d9f8c6b5-x2x9q/nginx[30]");
}

TEST(TopStats, RatesErrorsAndPercentilesPerProcessAndEndpoint) {
  TopStats stats;
  ConnectionIdentity curl = process("curl", 10), nginx = process("nginx", 20);
  uint64_t now = 1000 * kSecond;
  auto old = exchange("/slow", 200, kSecond);
  stats.add({old, nginx}, now - 20 * kSecond);  // outside the window by now: counted, not rated
  // 100 requests to /items (ids in the query are one endpoint), latencies 1..100 ms, 3 of them 503.
  for (int i = 1; i <= 100; ++i) {
    auto x = exchange("/items?id=" + std::to_string(i), i % 40 == 0 ? 503 : 200, i * 1'000'000ull);
    stats.add({x, curl}, now - kSecond + i);
  }
  auto slow = exchange("/slow", 200, 2 * kSecond);
  stats.add({slow, nginx}, now);

  auto rows = stats.rows(now);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].process, "curl[10]");
  EXPECT_EQ(rows[1].process, "nginx[20]");
  EXPECT_EQ(rows[0].endpoint, "GET api.local/items");
  EXPECT_EQ(rows[0].total, 100u);
  EXPECT_EQ(rows[0].errors, 2u);  // 40 and 80
  EXPECT_DOUBLE_EQ(rows[0].per_second, 10.0);
  EXPECT_EQ(rows[0].p50_ns, 51'000'000u);
  EXPECT_EQ(rows[0].p90_ns, 91'000'000u);
  EXPECT_EQ(rows[0].p99_ns, 100'000'000u);
  EXPECT_EQ(rows[1].process, "nginx[20]");
  EXPECT_EQ(rows[1].total, 2u);
  EXPECT_DOUBLE_EQ(rows[1].per_second, 0.1);
  EXPECT_EQ(rows[1].p50_ns, 2 * kSecond);
  EXPECT_EQ(stats.exchanges(), 102u);
}

TEST(TopStats, GrpcFailuresAndResetsAreErrors) {
  TopStats stats;
  ConnectionIdentity client = process("greeter", 5);
  auto x = exchange("/helloworld.Greeter/SayHello", 200, 1000);
  x.grpc = proto::GrpcCall{"helloworld.Greeter", "SayHello", 14, "unavailable", {}, {}};
  stats.add({x, client}, 1);
  auto reset = exchange("/helloworld.Greeter/SayHello", 200, 1000);
  reset.grpc = proto::GrpcCall{"helloworld.Greeter", "SayHello", 0, "", {}, {}};
  reset.reset_code = 8;
  stats.add({reset, client}, 2);
  auto rows = stats.rows(3);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].endpoint, "grpc helloworld.Greeter/SayHello");
  EXPECT_EQ(rows[0].errors, 2u);
}

TEST(TopStats, ForgetProcessDropsItsRowsAndKeepsTheTotal) {
  TopStats stats;
  // Two processes of one name: only the pid tells them apart.
  ConnectionIdentity first = process("nginx", 10), second = process("nginx", 11);
  auto a = exchange("/a", 200, 1000), b = exchange("/b", 200, 1000);
  stats.add({a, first}, 1);
  stats.add({b, first}, 2);
  stats.add({a, second}, 3);
  TopSink sink(stats);
  static_cast<Sink&>(sink).forget_process(10);  // as the pipeline calls it
  auto rows = stats.rows(4);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].process, "nginx[11]");
  EXPECT_EQ(stats.exchanges(), 3u);  // the header counts the whole run
  stats.forget_process(99);
  EXPECT_EQ(stats.rows(5).size(), 1u);
}

TEST(TopStats, PastTheCapTheLeastRecentlyActiveRowGoes) {
  TopStats stats(/*max_rows=*/2);
  ConnectionIdentity client = process("curl", 10);
  auto a = exchange("/a", 200, 1000), b = exchange("/b", 200, 1000), c = exchange("/c", 200, 1000);
  stats.add({a, client}, 1);
  stats.add({b, client}, 2);
  stats.add({a, client}, 3);  // /a is now the most recently active
  stats.add({c, client}, 4);  // /b goes
  auto rows = stats.rows(5);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].endpoint, "GET api.local/a");
  EXPECT_EQ(rows[0].total, 2u);
  EXPECT_EQ(rows[1].endpoint, "GET api.local/c");
  EXPECT_EQ(stats.exchanges(), 4u);
  // Many endpoints (ids in the path): the rows stay at the cap.
  for (int i = 0; i < 100; ++i)
    stats.add({exchange("/items/" + std::to_string(i), 200, 1000), client}, 6 + i);
  rows = stats.rows(200);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].endpoint, "GET api.local/items/98");
  EXPECT_EQ(rows[1].endpoint, "GET api.local/items/99");
}

TEST(TopStats, EqualRatesInNameOrder) {
  TopStats stats;
  ConnectionIdentity client = process("curl", 10);
  for (const char* target : {"/c", "/a", "/b"}) stats.add({exchange(target, 200, 1000), client}, 1);
  auto rows = stats.rows(2);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].endpoint, "GET api.local/a");
  EXPECT_EQ(rows[1].endpoint, "GET api.local/b");
  EXPECT_EQ(rows[2].endpoint, "GET api.local/c");
}

proto::WebSocketMessage message(proto::WebSocketOpcode opcode, std::optional<uint16_t> close_code = {}) {
  proto::WebSocketMessage m;
  m.opcode = opcode;
  m.close_code = close_code;
  return m;
}

TEST(TopStats, WebSocketMessagesRowPerConnectionEndpoint) {
  using proto::WebSocketOpcode;
  TopStats stats;
  ConnectionIdentity node = process("node", 40);
  uint64_t now = 1000 * kSecond;
  for (int i = 0; i < 20; ++i) {
    auto m = message(i % 2 ? WebSocketOpcode::text : WebSocketOpcode::binary);
    stats.add(WebSocketRecord{m, node, i % 2 == 0, "chat.local", "/room"}, now - kSecond + i);
  }
  // Pings, pongs and a normal close are not messages; an abnormal close and a
  // message that could not be inflated are errors.
  for (auto m : {message(WebSocketOpcode::ping), message(WebSocketOpcode::pong),
                 message(WebSocketOpcode::close, 1000), message(WebSocketOpcode::close, 1011)})
    stats.add(WebSocketRecord{m, node, false, "chat.local", "/room"}, now);
  auto broken = message(WebSocketOpcode::text);
  broken.inflate_failed = true;
  stats.add(WebSocketRecord{broken, node, false, "chat.local", "/room"}, now);

  auto rows = stats.rows(now);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].endpoint, "ws chat.local/room");
  EXPECT_EQ(rows[0].total, 21u);
  EXPECT_EQ(rows[0].errors, 2u);
  EXPECT_DOUBLE_EQ(rows[0].per_second, 2.1);
  EXPECT_EQ(rows[0].p50_ns, 0u);  // shown as "-"
  EXPECT_EQ(stats.websocket_messages(), 21u);
  EXPECT_EQ(stats.exchanges(), 0u);
  EXPECT_TRUE(render_top(rows, {0, 21, 0, ""}, 100, 10)
                  .starts_with("tlstap top - 0 exchanges, 21 WebSocket messages"));
}

TEST(RenderTop, FitsTheScreen) {
  std::vector<TopRow> rows;
  for (int i = 0; i < 50; ++i)
    rows.push_back({"curl[" + std::to_string(i) + "]", "GET host/" + std::string(200, 'p'), 2.5, 7, 1,
                    1'500'000, 2'000'000, 3'000'000'000});
  std::string screen = render_top(rows, {123, 0, 3 << 20, "ring_buffer_full 0 events/0 bytes"}, 100, 20);
  std::vector<std::string> lines;
  for (size_t start = 0, end; (end = screen.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(screen.substr(start, end - start));
  ASSERT_EQ(lines.size(), 19u);  // the last line of the terminal stays free
  for (const auto& line : lines) EXPECT_LE(line.size(), 100u) << line;
  EXPECT_EQ(lines[0], "tlstap top - 123 exchanges, 3.0 MiB of plaintext - q quits");
  EXPECT_EQ(lines[1], "dropped: ring_buffer_full 0 events/0 bytes");
  EXPECT_TRUE(lines[2].starts_with("PROCESS")) << lines[2];
  EXPECT_TRUE(lines[3].starts_with(
      "curl[0]                               2.5        7       1    1.5ms    2.0ms    3.00s GET host/ppp"))
      << lines[3];
}

}  // namespace
}  // namespace tlstap
