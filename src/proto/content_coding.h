// HTTP content codings (RFC 9110 section 8.4: gzip, deflate, br, zstd): a
// message's body as sent, or a compressed gRPC message, decoded for reading.
// Pure: bytes in, bytes out.
//
// Only the first bytes of a body are kept (--max-body), and every coding here
// is a stream whose beginning decodes on its own: the kept prefix gives the
// first decoded bytes, however long the rest was.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proto/grpc/grpc_messages.h"
#include "proto/http_exchange.h"
#include "proto/http_message.h"

namespace tlstap::proto {

struct DecodedContent {
  std::string bytes;   // the first decoded bytes, at most max_bytes
  bool whole = false;  // bytes is the whole content: every coding reached its end
};

// Undoes `content_encoding` (a Content-Encoding header's value: codings in
// the order they were applied, e.g. "gzip" or "deflate, br") on `sent`, the
// first bytes of a body (`sent_whole`: all of them). An Error says why not:
// a coding this build does not know, or bytes that are not that coding.
Result<DecodedContent> decode_content(std::string_view content_encoding, std::string_view sent,
                                      bool sent_whole, size_t max_bytes);

// Decodes a message's body in place when its headers give a Content-Encoding,
// or says why it could not (HttpMessage::decoding).
void decode_body(HttpMessage& message, size_t max_bytes);

// Decodes in place the messages of one direction of a gRPC call sent
// compressed, with the coding its `headers` name (grpc-encoding).
void decode_grpc_messages(std::vector<GrpcMessage>& messages, const Headers& headers, size_t max_bytes);

// Both of the above, for both sides of an exchange.
void decode_exchange(HttpExchange& exchange, size_t max_bytes);

}  // namespace tlstap::proto
