// Turns each connection's two ordered byte streams into HTTP exchanges: finds
// the protocol from the first bytes, feeds the parsers of both directions,
// pairs requests with responses, and follows a connection upgraded to
// WebSocket message by message. Gaps are passed on to the parsers, never
// papered over; connections end with their process or are evicted, oldest
// first, past a cap, and both are counted.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "common/lru_map.h"
#include "conn/connection_key.h"
#include "proto/http_exchange.h"
#include "sink/sink.h"

namespace tlstap {

struct ExchangeTrackerLimits {
  size_t max_connections = 4096;
  size_t max_body_bytes = 4096;
  // Show bodies sent with a Content-Encoding, and compressed gRPC messages,
  // decoded (proto/content_coding): off where none is shown (tlstap top).
  bool decode_bodies = true;
  // Bytes seen in each direction without recognising a protocol: give up on the connection.
  size_t detection_bytes = 64 * 1024;
};

struct ExchangeTrackerStats {
  uint64_t exchanges = 0;
  uint64_t evicted_connections = 0;
  uint64_t unknown_protocol_connections = 0;
  uint64_t websocket_messages = 0;
  uint64_t websocket_streams_lost = 0;  // directions given up: a gap or a frame that breaks the protocol
  uint64_t responses_unseen_connections = 0;  // HTTP/1: too many requests unanswered, responses not awaited
};

class ExchangeTracker {
 public:
  using Emit = std::function<void(const ExchangeRecord&)>;
  using EmitWebSocket = std::function<void(const WebSocketRecord&)>;

  ExchangeTracker(ExchangeTrackerLimits limits, Emit emit, EmitWebSocket emit_websocket = {});
  ~ExchangeTracker();

  void observe(const DataRecord& record);
  // The connection closed: what it still holds is reported (a body read until
  // the close is complete now).
  void end_connection(const ConnectionKey& key);
  // The process is gone: its connections end, what they still hold is reported.
  void forget_process(uint32_t pid);
  // Ends every connection (at the end of a capture or a replay).
  void finish_all();

  const ExchangeTrackerStats& stats() const { return stats_; }
  size_t size() const { return connections_.size(); }

  struct Connection;  // public so helpers in the .cpp can name it

 private:
  using Key = ConnectionKey;
  using KeyHash = ConnectionKeyHash;

  Connection& connection_for(const DataRecord& record);
  void finish(Connection& connection);
  void report(Connection& connection, proto::HttpExchange exchange);
  void report_unanswered(Connection& connection);
  void stop_awaiting_responses(Connection& connection);
  void restart_http1(Connection& connection, uint64_t gap);
  void switch_to_websocket(Connection& connection, uint64_t time_ns);
  void feed_websocket(Connection& connection, bool from_client, std::span<const std::byte> bytes,
                      uint64_t gap, uint64_t time_ns);

  ExchangeTrackerLimits limits_;
  Emit emit_;
  EmitWebSocket emit_websocket_;
  ExchangeTrackerStats stats_;
  // Past the cap the least recently active goes, not ended: what it holds may
  // still be partial, and is dropped.
  LruMap<Key, std::unique_ptr<Connection>, KeyHash> connections_;
};

}  // namespace tlstap
