// gRPC over HTTP/2: the length-prefixed messages carried in a stream's DATA
// (1 byte compressed flag, 4 bytes big-endian length, the message), and the
// service and method named by the request's :path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http_message.h"

namespace tlstap::proto {

struct GrpcMessage {  // one length-prefixed gRPC message
  bool compressed = false;
  uint32_t length = 0;       // as declared in the prefix
  std::string data;          // first bytes kept (limit given to the reader)
  uint64_t time_ns = 0;      // time of the chunk completing it
  ContentDecoding decoding;  // a compressed message decoded: `data` holds its first decoded bytes
};

// Whether `data` is the whole message as its sender wrote it: kept whole, and
// decoded when it was sent compressed.
inline bool readable_whole(const GrpcMessage& m) {
  return (!m.compressed || m.decoding.decoded()) && !shown_in_part(m.decoding, m.data.size(), m.length);
}

// Reads the messages of one direction of one stream from its DATA payload,
// fed in order in pieces of any size: a message may span frames, a frame may
// hold several messages. Keeps at most `keep_bytes` of each message and at
// most `max_messages` messages, counting the rest.
class GrpcMessageReader {
 public:
  GrpcMessageReader(size_t keep_bytes, size_t max_messages);

  // Appends the messages completed by `data` to `out`.
  void feed(std::span<const std::byte> data, uint64_t time_ns, std::vector<GrpcMessage>& out);
  // A message (or its prefix) was started and not finished.
  bool in_message() const { return prefix_have_ > 0; }
  // A compressed flag other than 0 or 1: not gRPC; the reader ignores the rest.
  bool invalid() const { return invalid_; }
  uint64_t dropped_messages() const { return dropped_; }

 private:
  void start_message();
  void finish_message(uint64_t time_ns, std::vector<GrpcMessage>& out);

  size_t keep_bytes_;
  size_t max_messages_;
  std::array<std::byte, 5> prefix_{};
  size_t prefix_have_ = 0;  // 5 once the prefix is complete: reading the message
  GrpcMessage current_;
  uint32_t left_ = 0;
  size_t emitted_ = 0;
  uint64_t dropped_ = 0;
  bool invalid_ = false;
};

struct GrpcMethod {
  std::string service;  // "package.Service"
  std::string method;   // "Method"
  bool operator==(const GrpcMethod&) const = default;
};
// Splits a gRPC :path "/package.Service/Method"; none when it is not of that form.
std::optional<GrpcMethod> split_grpc_path(std::string_view path);

// The content-type of gRPC: "application/grpc" and its "+proto", "+json"... variants.
bool is_grpc_content_type(std::string_view content_type);

}  // namespace tlstap::proto
