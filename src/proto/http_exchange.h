// One request paired with its response, of either HTTP version, and what
// gRPC adds on top of HTTP/2. Built by conn/exchange_tracker from what the
// parsers report; formatted by the sinks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/http2/http2_session.h"
#include "proto/http_message.h"

namespace tlstap::proto {

struct GrpcCall {
  std::string service;        // "grpc.health.v1.Health"
  std::string method;         // "Check"
  std::optional<int> status;  // grpc-status, from the trailers (or a trailers-only response)
  std::string message;        // grpc-message
  std::vector<GrpcMessage> request_messages;
  std::vector<GrpcMessage> response_messages;
  // Messages past Http2Session::kMaxGrpcMessages of a side: counted, not kept.
  uint64_t request_messages_dropped = 0;
  uint64_t response_messages_dropped = 0;
};

struct HttpExchange {
  std::string version;                  // "1.0", "1.1" or "2"
  std::optional<HttpMessage> request;   // absent: the request predates the capture
  std::optional<HttpMessage> response;  // absent: the connection ended first
  uint32_t stream_id = 0;               // HTTP/2
  std::optional<uint32_t> reset_code;   // HTTP/2 RST_STREAM
  bool incomplete = false;              // the connection ended mid-exchange
  bool switched_protocols = false;      // 101 or CONNECT: what follows is not HTTP
  std::optional<GrpcCall> grpc;

  // From the first byte of the request to the last byte of the response, as
  // seen by the traced process; 0 when either side is missing.
  uint64_t latency_ns() const;
  uint64_t start_ns() const;  // time of the first byte seen
};

// gRPC's view of an HTTP/2 exchange: present when its content type is
// application/grpc*. Takes the stream's messages.
std::optional<GrpcCall> grpc_call_of(Http2Stream& stream);
HttpExchange exchange_from_stream(Http2Stream stream);

}  // namespace tlstap::proto
