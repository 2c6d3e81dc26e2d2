// HTTP content codings (RFC 9110 section 8.4: gzip, deflate, br, zstd): a
// message's body as sent, decoded for reading. Pure: bytes in, bytes out.
//
// Only the first bytes of a body are kept (--max-body), and every coding here
// is a stream whose beginning decodes on its own: the kept prefix gives the
// first decoded bytes, however long the rest was.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"
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

// Whether a Content-Encoding value asks for any decoding ("identity" does not).
bool is_encoded(std::string_view content_encoding);

// Decodes a message's body in place when its headers give a Content-Encoding
// (HttpMessage::decoded_from), or says why it could not (decode_error).
void decode_body(HttpMessage& message, size_t max_bytes);

}  // namespace tlstap::proto
