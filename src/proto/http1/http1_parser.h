// HTTP/1.x over one direction of one connection: pure functions that each parse
// one piece of a message from a buffer, and a parser that composes them over a
// stream delivered in chunks. Bodies are counted and kept only up to a limit;
// nothing is buffered but one bounded head, chunk-size line or trailer section
// (and, for a response whose request is not known yet, a bounded backlog).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/http_message.h"

namespace tlstap::proto {

namespace http1 {

// The longest head, chunk-size line or trailer section; a longer one makes the
// stream invalid. Also how many bytes a response waiting for its request's
// method may hold back before the parser assumes the method was not HEAD.
inline constexpr size_t kMaxBufferedBytes = 64 * 1024;

// One parse step over a buffer: done with `value` and the `consumed` bytes,
// need_more_data when the buffer ends first, invalid when it cannot be HTTP/1.x.
template <class T>
struct Parsed {
  ParseState state = ParseState::need_more_data;
  size_t consumed = 0;
  T value{};
};

// Offset just past the line feed that ends the first line, or the first empty
// line (the end of a header section), of `buffer`; npos if none yet. Line feeds
// before `from` are known not to end it, so a scan can resume where it stopped.
size_t find_line_end(std::string_view buffer, size_t from = 0);
size_t find_block_end(std::string_view buffer, size_t from = 0);

// Does `start` begin with a well-known method and a space (yes), could it still
// (partial: a proper prefix of one), or not (no)?
enum class Match { no, partial, yes };
Match match_request_start(std::string_view start);

// Could `start`, the first bytes of a message (maybe less than a line), begin a
// request line / status line? Gives up on garbage before a whole head arrives.
// Never false for a prefix of a head that parse_*_head accepts.
bool could_start_request(std::string_view start);
bool could_start_response(std::string_view start);

// A whole head: start line, header lines and the empty line; lines end in CRLF
// or LF. Header names keep their case; obs-fold is invalid.
Parsed<HttpMessage> parse_request_head(std::string_view buffer);
Parsed<HttpMessage> parse_response_head(std::string_view buffer);
// Header lines up to and including the empty line (a head's or a trailer section).
Parsed<Headers> parse_header_block(std::string_view buffer);
// A chunk-size line with optional extensions: "1a;name=value\r\n" -> 26.
Parsed<uint64_t> parse_chunk_size_line(std::string_view buffer);

// How the body after a head is delimited (RFC 9112 section 6).
enum class BodyKind {
  none,         // no body: the message ends with its head
  length,       // Content-Length bytes
  chunked,      // Transfer-Encoding: chunked
  until_close,  // a response body that ends when the connection closes
  tunnel,       // no body, and the stream is no longer HTTP afterwards (101, CONNECT 2xx)
};
struct Framing {
  BodyKind kind = BodyKind::none;
  uint64_t length = 0;  // kind == length only, never 0 (that is kind none)
  bool operator==(const Framing&) const = default;
};
// nullopt when the framing headers are invalid (bad or conflicting Content-Length,
// a request whose last transfer coding is not chunked). An empty request_method
// stands for an unknown one, taken as neither HEAD nor CONNECT.
std::optional<Framing> request_framing(const HttpMessage& request);
std::optional<Framing> response_framing(const HttpMessage& response, std::string_view request_method);

}  // namespace http1

// One direction of one connection: requests (written by a client) or responses.
//
// Decisions: 1xx responses other than 101 (100 Continue, 103 Early Hints) are
// interim and are not reported; they do not use up a request method. A request
// parser cannot see the response, so after a CONNECT request or a request with
// an Upgrade header it treats the next bytes as a tunnel unless they begin a
// request with a well-known method. Messages that complete because
// expect_response_to() supplied a method are reported by the next feed() (an
// empty one will do) or finish().
class Http1Parser {
 public:
  enum class Kind { request, response };
  // HttpMessage::body keeps at most max_body_bytes bytes; body_length counts all.
  Http1Parser(Kind kind, size_t max_body_bytes);

  // The next bytes of the stream, in order, that arrived at time_ns (one call per
  // captured chunk). Completed messages are appended to `out`. Returns invalid
  // once the stream is not HTTP/1.x (and stays invalid; the bytes are ignored
  // from then on), done when no message is partially parsed, need_more_data otherwise.
  ParseState feed(std::span<const std::byte> bytes, uint64_t time_ns, std::vector<HttpMessage>& out);

  // Response parsers only: the method of the next request on this connection, in
  // order (a HEAD response and a successful CONNECT response have no body).
  // Called before or after the response bytes arrive: a response whose request
  // is not known yet waits (pipelining), holding back at most kMaxBufferedBytes
  // of what follows its head; past that it is taken as the answer to a request
  // that was neither HEAD nor CONNECT, and the method given later is skipped.
  void expect_response_to(std::string_view method);
  // Response parsers only: the requests are not followed any more (too many
  // went unanswered). Responses past the methods already given are framed at
  // once, as answers to neither HEAD nor CONNECT; one held now comes out.
  void stop_waiting_for_methods(std::vector<HttpMessage>& out);

  // The connection closed: a response body delimited by close ends here (its
  // last_byte_ns is still the time of its last chunk); a response still waiting
  // for its method is taken as the answer to neither HEAD nor CONNECT; any other
  // partial message is dropped. The parser can then start a new stream.
  void finish(uint64_t time_ns, std::vector<HttpMessage>& out);

  // After a 101 Switching Protocols or a 2xx answer to CONNECT the stream is no
  // longer HTTP: the rest is raw and ignored by feed(). The message that
  // switched is still reported.
  bool switched_protocols() const { return stage_ == Stage::tunnel; }
  // The bytes fed after the switch, which belong to the new protocol (a
  // WebSocket frame may share a chunk with the 101 response). Taking them
  // empties the store; the caller feeds later chunks to the new protocol itself.
  std::string take_tunneled_bytes() { return std::exchange(tunneled_, {}); }
  // Bytes after the switch not kept (past kMaxBufferedBytes, when nobody took them).
  uint64_t tunneled_bytes_lost() const { return tunneled_lost_; }

  // Bytes lost before the next feed() (a capture gap): the message cut by the gap
  // is dropped, and the parser resynchronises on the first chunk that starts
  // with a request line / status line. A cut response uses up its request's
  // method (unless what was seen of it is a 1xx); responses lost whole in the gap
  // cannot be counted, so their methods stay queued.
  void lost(uint64_t bytes);

 private:
  enum class Stage {
    head,          // between messages, or in a head
    body,          // Content-Length body
    chunk_size,    // expecting a chunk-size line
    chunk_data,    // in a chunk
    chunk_end,     // expecting the CRLF after a chunk
    trailers,      // expecting the trailer section after the last chunk
    until_close,   // response body read until the connection closes
    await_method,  // response head parsed, its request method not known yet
    tunnel,        // switched protocols: bytes ignored
    invalid,       // not HTTP/1.x: bytes ignored
  };
  // A line or block gathered from the buffered bytes and the input.
  struct Unit {
    ParseState state = ParseState::need_more_data;
    std::string_view bytes;
  };
  struct HeldChunk {
    std::string bytes;
    uint64_t time_ns = 0;
  };
  using FindEnd = size_t (*)(std::string_view, size_t);

  void consume(std::string_view in, uint64_t time_ns, std::vector<HttpMessage>& out);
  void read_head(std::string_view& in, uint64_t time_ns, std::vector<HttpMessage>& out);
  bool switches_before(std::string_view start, bool complete);
  void start_request(std::vector<HttpMessage>& out);
  void start_response(std::vector<HttpMessage>& out);
  void answer(std::string_view method, std::vector<HttpMessage>& out);
  void answer_held(bool force, std::vector<HttpMessage>& out);
  std::string take_method();
  void start_body(std::optional<http1::Framing> framing, std::vector<HttpMessage>& out);
  void read_body(std::string_view& in, std::vector<HttpMessage>& out);
  void read_chunk_size(std::string_view& in);
  void read_chunk_end(std::string_view& in);
  void read_trailers(std::string_view& in, std::vector<HttpMessage>& out);
  Unit take_unit(std::string_view& in, FindEnd find_end);
  void fail_head(std::string_view& in);
  void fail();
  void emit(std::vector<HttpMessage>& out);
  void clear_buffer();

  Kind kind_;
  size_t max_body_bytes_;
  Stage stage_ = Stage::head;
  HttpMessage message_;     // the message being parsed, once its head is
  uint64_t first_ns_ = 0;   // time of the chunk with its first byte
  uint64_t last_ns_ = 0;    // time of the chunk with its latest byte
  uint64_t remaining_ = 0;  // of the Content-Length body or the current chunk
  std::string buffer_;      // an incomplete line or block
  size_t scanned_ = 0;      // bytes of buffer_ known not to hold its end
  std::string unit_;        // the last complete line or block taken from buffer_
  std::string tunneled_;    // bytes after a protocol switch, not taken yet
  uint64_t tunneled_lost_ = 0;
  bool resyncing_ = false;           // after a gap, until a head parses
  bool may_switch_ = false;          // requests: after CONNECT or Upgrade
  std::deque<std::string> methods_;  // responses: methods of requests not answered yet
  uint64_t owed_methods_ = 0;        // responses framed before their method arrived
  bool methods_unknown_ = false;     // stop_waiting_for_methods() was called
  std::vector<HeldChunk> held_;      // responses: bytes after a head awaiting its method
  size_t held_bytes_ = 0;
};

// Cheap checks for protocol detection on the first bytes of a stream: the start
// of an HTTP/1.x request (well-known method and a space) or response ("HTTP/1.").
bool looks_like_http1_request(std::string_view start);
bool looks_like_http1_response(std::string_view start);

}  // namespace tlstap::proto
