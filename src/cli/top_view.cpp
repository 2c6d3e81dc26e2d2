#include "cli/top_view.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <tuple>

#include "common/terminal_text.h"

namespace tlstap {
namespace {

// The PROCESS column: a pod's name and the process's.
constexpr size_t kProcessWidth = 32;

// Paths carry ids; the query string more so. Rows group by what is left.
std::string endpoint_of(const proto::HttpExchange& x) {
  if (x.grpc) return fmt::format("grpc {}/{}", x.grpc->service, x.grpc->method);
  if (!x.request) return "(request not seen)";
  std::string_view target = x.request->target;
  target = target.substr(0, target.find('?'));
  return fmt::format("{} {}{}", x.request->method, x.request->authority, target);
}

bool is_error(const proto::HttpExchange& x) {
  if (x.reset_code || x.incomplete || !x.response) return true;
  if (x.grpc && x.grpc->status.value_or(0) != 0) return true;
  return x.response->status >= 500;
}

uint64_t percentile(std::vector<uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
}

std::string duration(uint64_t ns) {
  if (ns == 0) return "-";
  if (ns < 1'000'000) return fmt::format("{:.0f}us", ns / 1e3);
  if (ns < 1'000'000'000) return fmt::format("{:.1f}ms", ns / 1e6);
  return fmt::format("{:.2f}s", ns / 1e9);
}

std::string fit(std::string text, size_t width) {
  if (text.size() > width) text.resize(width);
  return text;
}

// "curl[1234]", or in a Kubernetes pod "web-0/nginx[1234]": pods are what users look for there.
std::string process_label(const ConnectionIdentity& c) {
  std::string label = fmt::format("{}[{}]", c.comm, c.pid);
  return terminal_field(c.process.pod_name.empty() ? label : c.process.pod_name + "/" + label);
}

}  // namespace

void TopStats::add(const ExchangeRecord& record, uint64_t now_ns) {
  const auto& c = record.connection;
  Row& row = rows_[Key{c.pid, process_label(c), terminal_field(endpoint_of(record.exchange))}];
  ++row.total;
  ++exchanges_;
  if (is_error(record.exchange)) ++row.errors;
  row.recent.emplace_back(now_ns, record.exchange.latency_ns());
}

void TopStats::add(const WebSocketRecord& record, uint64_t now_ns) {
  using proto::WebSocketOpcode;
  const proto::WebSocketMessage& m = record.message;
  bool data = m.opcode == WebSocketOpcode::text || m.opcode == WebSocketOpcode::binary;
  constexpr uint16_t kNormal = 1000, kGoingAway = 1001;
  bool failed = m.inflate_failed || (m.opcode == WebSocketOpcode::close && m.close_code &&
                                     *m.close_code != kNormal && *m.close_code != kGoingAway);
  if (!data && !failed) return;  // pings, pongs, a normal close
  const auto& c = record.connection;
  std::string endpoint = fmt::format("ws {}{}", record.authority, record.path);
  Row& row = rows_[Key{c.pid, process_label(c), terminal_field(endpoint)}];
  if (failed) ++row.errors;
  if (!data) return;
  ++row.total;
  ++websocket_messages_;
  row.recent.emplace_back(now_ns, 0);  // a message has no latency
}

void TopStats::forget_process(uint32_t pid) {
  rows_.erase_if([pid](const Key& key, const Row&) { return key.pid == pid; });
}

std::vector<TopRow> TopStats::rows(uint64_t now_ns) {
  std::vector<TopRow> out;
  for (auto& [key, row] : rows_) {
    while (!row.recent.empty() && row.recent.front().first + kWindowNs < now_ns) row.recent.pop_front();
    std::vector<uint64_t> latencies;
    for (auto [when, latency] : row.recent)
      if (latency) latencies.push_back(latency);
    std::sort(latencies.begin(), latencies.end());
    out.push_back(TopRow{key.process, key.endpoint, row.recent.size() * 1e9 / kWindowNs, row.total,
                         row.errors, percentile(latencies, 0.5), percentile(latencies, 0.9),
                         percentile(latencies, 0.99)});
  }
  // Ties in name order, so the screen does not reshuffle rows of equal rates.
  std::sort(out.begin(), out.end(), [](const TopRow& a, const TopRow& b) {
    if (a.per_second != b.per_second) return a.per_second > b.per_second;
    if (a.total != b.total) return a.total > b.total;
    return std::tie(a.process, a.endpoint) < std::tie(b.process, b.endpoint);
  });
  return out;
}

std::string render_top(const std::vector<TopRow>& rows, const TopTotals& totals, int width, int height) {
  size_t w = static_cast<size_t>(std::max(width, 40));
  std::string websocket =
      totals.websocket_messages ? fmt::format(", {} WebSocket messages", totals.websocket_messages) : "";
  std::string screen = fit(fmt::format("tlstap top - {} exchanges{}, {:.1f} MiB of plaintext - q quits",
                                       totals.exchanges, websocket, totals.bytes / (1024.0 * 1024.0)),
                           w) +
                       "\n" + fit("dropped: " + totals.drops, w) + "\n";
  // Fixed columns on the right, the endpoint takes what is left.
  constexpr size_t kFixed = kProcessWidth + 1 + 8 + 1 + 8 + 1 + 7 + 1 + 8 + 1 + 8 + 1 + 8 + 1;
  size_t endpoint_width = w > kFixed + 10 ? w - kFixed : 10;
  screen += fit(fmt::format("{:<{}} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {}", "PROCESS", kProcessWidth,
                            "REQ/S", "TOTAL", "ERRORS", "P50", "P90", "P99", "ENDPOINT"),
                w) +
            "\n";
  int room = std::max(height - 4, 0);  // the last line stays free: writing it would scroll
  for (const TopRow& row : rows) {
    if (room-- == 0) break;
    screen +=
        fit(fmt::format("{:<{}} {:>8.1f} {:>8} {:>7} {:>8} {:>8} {:>8} {}", fit(row.process, kProcessWidth),
                        kProcessWidth, row.per_second, row.total, row.errors, duration(row.p50_ns),
                        duration(row.p90_ns), duration(row.p99_ns), fit(row.endpoint, endpoint_width)),
            w) +
        "\n";
  }
  return screen;
}

namespace {

uint64_t wall_clock_ns() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

void TopSink::write_exchange(const ExchangeRecord& record) {
  stats_.add(record, wall_clock_ns());
}

void TopSink::write_websocket(const WebSocketRecord& record) {
  stats_.add(record, wall_clock_ns());
}

}  // namespace tlstap
