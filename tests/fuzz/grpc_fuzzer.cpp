// libFuzzer target: the gRPC message reader fed any bytes in any pieces, and
// the schema-less protobuf decoder on each message and on the whole input,
// never crash, hang or read out of bounds; a decoded message is valid JSON.
//
// Input: one byte giving the piece size ((byte & 63) + 1) and the kept bytes
// per message ((byte >> 6) * 64 + 1), then the DATA bytes of one direction.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "proto/grpc/grpc_messages.h"
#include "proto/grpc/protobuf_decode.h"

namespace {

void decode(std::span<const std::byte> bytes) {
  if (auto json = tlstap::proto::decode_protobuf(bytes)) {
    if (!json->is_array()) __builtin_trap();
    (void)json->dump();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = (data[0] & 63) + 1;
  size_t keep = (data[0] >> 6) * 64 + 1;
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data) + 1, size - 1);

  tlstap::proto::GrpcMessageReader reader(keep, 8);
  std::vector<tlstap::proto::GrpcMessage> messages;
  for (size_t at = 0; at < input.size(); at += piece) {
    reader.feed(input.subspan(at, std::min(piece, input.size() - at)), at, messages);
  }
  for (const auto& message : messages) {
    if (message.data.size() > keep || message.data.size() > message.length) __builtin_trap();
    decode(std::as_bytes(std::span(message.data.data(), message.data.size())));
  }
  decode(input);
  return 0;
}
