// `tlstap top`: exchanges per second, errors and latency percentiles per
// process and endpoint over a sliding window. The statistics and the screen
// text are pure; cli/terminal owns the terminal.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "common/lru_map.h"
#include "sink/sink.h"

namespace tlstap {

struct TopRow {
  std::string process;   // "curl[1234]"
  std::string endpoint;  // "GET example.com/path" or "grpc helloworld.Greeter/SayHello"
  double per_second = 0;
  uint64_t total = 0;
  uint64_t errors = 0;  // 5xx, non-zero grpc-status, reset or incomplete, over the whole run
  uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0;  // over the window
};

class TopStats {
 public:
  static constexpr uint64_t kWindowNs = 10'000'000'000;
  // Paths with ids make a row per request: past this many rows the one
  // least recently active goes, whatever the endpoints.
  static constexpr size_t kMaxRows = 2000;

  explicit TopStats(size_t max_rows = kMaxRows) : rows_(max_rows) {}

  void add(const ExchangeRecord& record, uint64_t now_ns);
  // A WebSocket message: its connection's row ("ws" and the upgrade's
  // authority and path) counts text and binary messages, both ways; a close
  // with a code other than normal or going away is an error.
  void add(const WebSocketRecord& record, uint64_t now_ns);
  void add_bytes(uint64_t bytes) { bytes_ += bytes; }
  // The process is gone: its rows go, its exchanges stay in the run's total.
  void forget_process(uint32_t pid);
  // Rows by rate, busiest first.
  std::vector<TopRow> rows(uint64_t now_ns);
  uint64_t bytes() const { return bytes_; }
  uint64_t exchanges() const { return exchanges_; }
  uint64_t websocket_messages() const { return websocket_messages_; }

 private:
  struct Row {
    uint64_t total = 0;
    uint64_t errors = 0;
    std::deque<std::pair<uint64_t, uint64_t>> recent;  // (when, latency), inside the window
  };
  struct Key {
    uint32_t pid;         // what forget_process looks for
    std::string process;  // as shown: the comm can change under one pid
    std::string endpoint;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<std::string>()(k.process) * 31 + std::hash<std::string>()(k.endpoint);
    }
  };

  LruMap<Key, Row, KeyHash> rows_;
  uint64_t bytes_ = 0;
  uint64_t exchanges_ = 0;
  uint64_t websocket_messages_ = 0;
};

struct TopTotals {
  uint64_t exchanges = 0;
  uint64_t websocket_messages = 0;
  uint64_t bytes = 0;
  std::string drops;  // what the kernel could not deliver, by reason
};

// One screen: totals, drops, column titles, as many rows as fit.
std::string render_top(const std::vector<TopRow>& rows, const TopTotals& totals, int width, int height);

class TopSink : public Sink {
 public:
  explicit TopSink(TopStats& stats) : stats_(stats) {}
  void write(const DataRecord& record) override { stats_.add_bytes(record.event.payload.size()); }
  void write_exchange(const ExchangeRecord& record) override;
  void write_websocket(const WebSocketRecord& record) override;
  void forget_process(uint32_t pid) override { stats_.forget_process(pid); }
  void flush() override {}

 private:
  TopStats& stats_;
};

}  // namespace tlstap
