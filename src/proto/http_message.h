// What the protocol parsers produce: HTTP messages of either version, and the
// parse state every parser reports. Parsers are pure: bytes and times in,
// messages out, no I/O.
#pragma once

#include <cstddef>
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

// How bytes sent with a content coding (gzip, br...) were decoded for
// showing (proto/content_coding). Empty when none was to be undone.
struct ContentDecoding {
  std::string codings;  // the codings undone, as listed ("gzip", "gzip, br")
  bool whole = false;   // the decoded bytes are the whole content
  std::string error;    // why they could not be: the bytes stay as sent
  bool decoded() const { return !codings.empty(); }
};

// Whether `kept` bytes, of `sent` sent and then decoded as `decoding` says,
// show less than the whole content.
inline bool shown_in_part(const ContentDecoding& decoding, size_t kept, uint64_t sent) {
  return decoding.decoded() ? !decoding.whole : kept < sent;
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
  // Set when a body sent with a Content-Encoding is decoded (decode_body):
  // `body` then holds the first decoded bytes, up to the same limit, and
  // body_length still counts the bytes as sent.
  ContentDecoding decoding;
  bool headers_unknown = false;  // HTTP/2 joined mid-connection: the header block could not be decoded
  uint64_t first_byte_ns = 0;    // times of the chunks holding its first and last byte
  uint64_t last_byte_ns = 0;
};

// Whether `body` holds less than the whole body (decoded, where it was).
inline bool body_truncated(const HttpMessage& m) {
  return shown_in_part(m.decoding, m.body.size(), m.body_length);
}

}  // namespace tlstap::proto
