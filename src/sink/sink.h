// Where decoded, attributed data chunks and the HTTP exchanges and WebSocket
// messages made of them go. A sink formats; an Output
// (output.h) owns where the bytes end up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "event/event.h"
#include "event/process_identity.h"
#include "proto/http_exchange.h"
#include "proto/websocket/websocket_parser.h"

namespace tlstap {

struct DataRecord {
  const DataEvent& event;
  uint64_t wall_time_ns;           // unix time
  const ProcessIdentity& process;  // its exe is "" when the process was already gone
  Role role;
  uint64_t gap_before;         // bytes lost right before this chunk in its direction
  bool opened_before_capture;  // the connection predates tlstap: its start may be missing
};

// The connection an exchange travelled on, as the traced process saw it.
struct ConnectionIdentity {
  uint32_t pid = 0;
  uint64_t conn_uid = 0;
  std::string comm;
  ProcessIdentity process;
  Library library = Library::unknown;
  Endpoint local;
  Endpoint remote;
  Role role = Role::unknown;
};

// The library freed a connection: nothing more comes on it.
struct CloseRecord {
  uint32_t pid = 0;
  uint64_t conn_uid = 0;
  uint64_t wall_time_ns = 0;  // unix time
};

struct ExchangeRecord {
  const proto::HttpExchange& exchange;
  const ConnectionIdentity& connection;
};

// A WebSocket message (data or control) on a connection upgraded from HTTP/1.1.
struct WebSocketRecord {
  const proto::WebSocketMessage& message;
  const ConnectionIdentity& connection;
  bool from_client;
  std::string_view authority;  // of the request that upgraded the connection; "" when it was not seen
  std::string_view path;
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void write(const DataRecord& record) = 0;
  virtual void write_exchange(const ExchangeRecord& /*record*/) {}
  virtual void write_websocket(const WebSocketRecord& /*record*/) {}
  virtual void write_close(const CloseRecord& /*record*/) {}
  virtual void flush() = 0;
  // The process exited: per-connection state of it can go.
  virtual void forget_process(uint32_t /*pid*/) {}
};

}  // namespace tlstap
