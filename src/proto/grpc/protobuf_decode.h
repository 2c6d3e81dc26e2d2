// Schema-less decoding of a protobuf message (the payload of most gRPC
// messages) into JSON for display, from the wire format alone.
//
// A message is an array of its fields in wire order, each an object:
//   {"field":1,"wire":"varint","value":150}         varint, as an unsigned number
//   {"field":2,"wire":"i64","value":4614253070214989087}  fixed64/double bits, unsigned
//   {"field":3,"wire":"i32","value":1078530011}     fixed32/float bits, unsigned
//   {"field":4,"wire":"len","string":"hi"}          printable UTF-8 text
//   {"field":5,"wire":"len","message":[...]}        else, when it parses entirely as a message
//   {"field":6,"wire":"len","hex":"00ff"}           else, raw bytes
// Text is tried before a nested message because short text such as "hi" is
// often also a valid message, while real nested messages hold tag and length
// bytes below 0x20 that are not printable. Groups (wire types 3 and 4) are
// rejected. Nesting is followed to a bounded depth (deeper "len" fields are
// shown as text or hex) and the number of fields is bounded.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>

namespace tlstap::proto {

inline constexpr int kProtobufMaxDepth = 8;
inline constexpr size_t kProtobufMaxFields = 10000;

// None when the bytes are not one whole valid message (truncated, a bad tag
// or wire type, too many fields). An empty input is the empty message: [].
std::optional<nlohmann::ordered_json> decode_protobuf(std::span<const std::byte> bytes);

}  // namespace tlstap::proto
