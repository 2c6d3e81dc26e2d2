// What the protocol parsers produce: HTTP messages of either version, and the
// parse state every parser reports. Parsers are pure: bytes and times in,
// messages out, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ascii.h"

namespace tlstap::proto {

enum class ParseState {
  need_more_data,  // everything so far is valid; a message is still incomplete
  invalid,         // the bytes are not this protocol: the parser has given up
  done,            // every byte fed so far belongs to complete messages
};

struct Header {
  std::string name;  // as sent for HTTP/1.x; lower case for HTTP/2
  std::string value;
  bool operator==(const Header&) const = default;
};
using Headers = std::vector<Header>;

// The value of the first header called `name` (case-insensitive), or nullptr.
inline const std::string* find_header(const Headers& headers, std::string_view name) {
  for (const Header& header : headers)
    if (ascii_iequals(header.name, name)) return &header.value;
  return nullptr;
}

struct HttpMessage {
  std::string version;    // "1.0", "1.1" or "2"
  std::string method;     // requests
  std::string target;     // requests: the request-target (HTTP/2: :path)
  std::string authority;  // requests: Host, or HTTP/2's :authority
  int status = 0;         // responses
  Headers headers;        // HTTP/2: pseudo-headers first, as received
  Headers trailers;
  uint64_t body_length = 0;  // body bytes after de-chunking, whole even when not all kept
  std::string body;          // the first bytes of the body, up to the parser's limit
  // Set once a body sent with a Content-Encoding (gzip, br...) is decoded
  // (decode_body): `body` then holds the first decoded bytes, up to the same
  // limit, and body_length still counts the bytes as sent.
  std::string decoded_from;      // the codings undone, as listed ("gzip", "gzip, br")
  bool decoded_whole = false;    // `body` is the whole decoded content
  std::string decode_error;      // why it could not be: `body` is as sent
  bool headers_unknown = false;  // HTTP/2 joined mid-connection: the header block could not be decoded
  uint64_t first_byte_ns = 0;    // times of the chunks holding its first and last byte
  uint64_t last_byte_ns = 0;
};

// Whether `body` holds less than the whole body (decoded, where it was).
inline bool body_truncated(const HttpMessage& m) {
  return m.decoded_from.empty() ? m.body.size() < m.body_length : !m.decoded_whole;
}

}  // namespace tlstap::proto
