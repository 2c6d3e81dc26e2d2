#include "proto/http1/http1_parser.h"

#include <algorithm>
#include <array>
#include <utility>

#include "common/ascii.h"

namespace tlstap::proto {

namespace http1 {
namespace {

constexpr size_t npos = std::string_view::npos;
constexpr size_t kMaxMethodBytes = 32;
constexpr std::string_view kVersionTemplate = "HTTP/1.#";  // # is a digit
constexpr std::string_view kStatusTemplate = "HTTP/1.# ###";
constexpr size_t kMaxCheckedBytes = 256;  // of a start line checked before it is whole
constexpr std::array<std::string_view, 9> kKnownMethods = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                           "CONNECT", "OPTIONS", "TRACE", "PATCH"};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != npos;
}

// Visible characters, and bytes above ASCII that some clients send raw.
bool is_target_char(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}

// Field values and reason phrases: anything but control characters, HT allowed.
bool is_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return c == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Could `text` begin like `pattern` (where # is a digit), then one of `next`?
bool could_start_like(std::string_view text, std::string_view pattern, std::string_view next) {
  size_t n = std::min(text.size(), pattern.size());
  for (size_t i = 0; i < n; ++i) {
    bool ok = pattern[i] == '#' ? is_digit(text[i]) : text[i] == pattern[i];
    if (!ok) return false;
  }
  return text.size() <= n || next.find(text[n]) != npos;
}

// Cuts the next line off `rest`, without its LF or CRLF; nullopt when no line
// feed is left or the line holds a bare CR.
std::optional<std::string_view> next_line(std::string_view& rest) {
  size_t lf = rest.find('\n');
  if (lf == npos) return std::nullopt;
  std::string_view line = rest.substr(0, lf);
  rest.remove_prefix(lf + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find('\r') != npos) return std::nullopt;
  return line;
}

// "HTTP/1.1" -> "1.1".
std::optional<std::string> parse_version(std::string_view text) {
  if (text.size() != kVersionTemplate.size() || !could_start_like(text, kVersionTemplate, {}))
    return std::nullopt;
  return std::string(text.substr(5));
}

bool parse_request_line(std::string_view line, HttpMessage& message) {
  size_t first = line.find(' ');
  size_t last = line.rfind(' ');
  if (first == npos || first == last) return false;
  std::string_view method = line.substr(0, first);
  std::string_view target = line.substr(first + 1, last - first - 1);
  auto version = parse_version(line.substr(last + 1));
  if (!is_token(method) || method.size() > kMaxMethodBytes || target.empty() || !version ||
      !std::all_of(target.begin(), target.end(), is_target_char))
    return false;
  message.method = method;
  message.target = target;
  message.version = std::move(*version);
  return true;
}

// "HTTP/1.1 200 OK"; the space before an empty reason phrase may be missing.
bool parse_status_line(std::string_view line, HttpMessage& message) {
  if (line.size() < kStatusTemplate.size() || !could_start_response(line)) return false;
  std::string_view reason = line.substr(kStatusTemplate.size());
  if (!reason.empty() && (reason.front() != ' ' || !is_text(reason))) return false;
  message.version = line.substr(5, 3);
  message.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  return true;
}

std::optional<Header> parse_header_line(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == npos) return std::nullopt;
  std::string_view name = line.substr(0, colon);
  std::string_view value = trim_ows(line.substr(colon + 1));
  // A name that is not a token also rejects obs-fold and whitespace before the colon.
  if (!is_token(name) || !is_text(value)) return std::nullopt;
  return Header{std::string(name), std::string(value)};
}

template <class T>
Parsed<T> invalid() {
  return {ParseState::invalid, 0, {}};
}

// Parses a head whose start line `parse_start_line` reads.
template <class ParseStartLine>
Parsed<HttpMessage> parse_head(std::string_view buffer, bool (*could_start)(std::string_view),
                               ParseStartLine parse_start_line) {
  if (find_block_end(buffer) == npos) {
    return could_start(buffer) ? Parsed<HttpMessage>{} : invalid<HttpMessage>();
  }
  std::string_view rest = buffer;
  auto line = next_line(rest);
  Parsed<HttpMessage> head;
  if (!line || !parse_start_line(*line, head.value)) return invalid<HttpMessage>();
  auto headers = parse_header_block(rest);
  if (headers.state != ParseState::done) return invalid<HttpMessage>();
  head.value.headers = std::move(headers.value);
  head.state = ParseState::done;
  head.consumed = buffer.size() - rest.size() + headers.consumed;
  return head;
}

// Content-Length: absent, a number, or invalid. Repeated or listed identical
// values are one value (RFC 9110 section 8.6).
struct ContentLength {
  bool present = false;
  bool valid = true;
  uint64_t value = 0;
};

std::optional<uint64_t> parse_decimal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (!is_digit(c) || value > (UINT64_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

ContentLength content_length(const Headers& headers) {
  ContentLength length;
  for (const Header& header : headers) {
    if (!ascii_iequals(header.name, "Content-Length")) continue;
    std::string_view list = header.value;
    while (length.valid) {
      size_t comma = list.find(',');
      auto value = parse_decimal(trim_ows(list.substr(0, comma)));
      length.valid = value && (!length.present || *value == length.value);
      length.present = true;
      if (value) length.value = *value;
      if (comma == npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return length;
}

// The last transfer coding of all Transfer-Encoding headers, or nullopt without any.
std::optional<std::string_view> last_transfer_coding(const Headers& headers) {
  std::optional<std::string_view> last;
  for (const Header& header : headers) {
    if (!ascii_iequals(header.name, "Transfer-Encoding")) continue;
    std::string_view list = header.value;
    size_t comma = list.rfind(',');
    last = trim_ows(comma == npos ? list : list.substr(comma + 1));
  }
  return last;
}

// The framing given by Content-Length, or `otherwise` without one.
std::optional<Framing> length_framing(const Headers& headers, BodyKind otherwise) {
  ContentLength length = content_length(headers);
  if (!length.valid) return std::nullopt;
  if (!length.present) return Framing{otherwise};
  if (length.value == 0) return Framing{BodyKind::none};
  return Framing{BodyKind::length, length.value};
}

}  // namespace

size_t find_line_end(std::string_view buffer, size_t from) {
  size_t lf = buffer.find('\n', from);
  return lf == npos ? npos : lf + 1;
}

size_t find_block_end(std::string_view buffer, size_t from) {
  for (size_t i = buffer.find('\n', from); i != npos; i = buffer.find('\n', i + 1)) {
    // The line this LF ends is empty: LF alone, or CR LF.
    if (i == 0 || buffer[i - 1] == '\n') return i + 1;
    if (buffer[i - 1] == '\r' && (i == 1 || buffer[i - 2] == '\n')) return i + 1;
  }
  return npos;
}

Match match_request_start(std::string_view start) {
  for (std::string_view method : kKnownMethods) {
    if (!method.starts_with(start.substr(0, method.size()))) continue;
    if (start.size() <= method.size()) return Match::partial;
    if (start[method.size()] == ' ') return Match::yes;
  }
  return Match::no;
}

bool could_start_request(std::string_view start) {
  start = start.substr(0, kMaxCheckedBytes);
  size_t space = start.find(' ');
  std::string_view method = start.substr(0, space);
  if (method.size() > kMaxMethodBytes || !std::all_of(method.begin(), method.end(), is_tchar)) return false;
  if (space == npos) return true;
  std::string_view rest = start.substr(space + 1);
  size_t second = rest.find(' ');
  std::string_view target = rest.substr(0, second);
  if (method.empty() || !std::all_of(target.begin(), target.end(), is_target_char)) return false;
  if (second == npos) return true;
  return !target.empty() && could_start_like(rest.substr(second + 1), kVersionTemplate, "\r\n");
}

bool could_start_response(std::string_view start) {
  return could_start_like(start, kStatusTemplate, " \r\n");
}

Parsed<HttpMessage> parse_request_head(std::string_view buffer) {
  auto head = parse_head(buffer, could_start_request, parse_request_line);
  if (head.state == ParseState::done) {
    if (const std::string* host = find_header(head.value.headers, "Host")) head.value.authority = *host;
  }
  return head;
}

Parsed<HttpMessage> parse_response_head(std::string_view buffer) {
  return parse_head(buffer, could_start_response, parse_status_line);
}

Parsed<Headers> parse_header_block(std::string_view buffer) {
  Parsed<Headers> block;
  std::string_view rest = buffer;
  while (true) {
    bool complete = rest.find('\n') != npos;
    auto line = next_line(rest);
    if (!line) return complete ? invalid<Headers>() : Parsed<Headers>{};
    if (line->empty()) break;
    auto header = parse_header_line(*line);
    if (!header) return invalid<Headers>();
    block.value.push_back(std::move(*header));
  }
  block.state = ParseState::done;
  block.consumed = buffer.size() - rest.size();
  return block;
}

Parsed<uint64_t> parse_chunk_size_line(std::string_view buffer) {
  std::string_view rest = buffer;
  bool complete = rest.find('\n') != npos;
  auto line = next_line(rest);
  if (!line) return complete ? invalid<uint64_t>() : Parsed<uint64_t>{};
  size_t digits = line->find_first_not_of("0123456789abcdefABCDEF");
  std::string_view hex = line->substr(0, digits);
  std::string_view extensions = trim_ows(digits == npos ? std::string_view() : line->substr(digits));
  if (hex.empty() || (!extensions.empty() && (extensions.front() != ';' || !is_text(extensions))))
    return invalid<uint64_t>();
  Parsed<uint64_t> size{ParseState::done, buffer.size() - rest.size(), 0};
  for (char c : hex) {
    if (size.value >> 60) return invalid<uint64_t>();  // would overflow
    int digit = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
    size.value = size.value << 4 | static_cast<uint64_t>(digit);
  }
  return size;
}

std::optional<Framing> request_framing(const HttpMessage& request) {
  if (auto coding = last_transfer_coding(request.headers)) {
    if (!ascii_iequals(*coding, "chunked")) return std::nullopt;  // the length cannot be known
    return Framing{BodyKind::chunked};
  }
  return length_framing(request.headers, BodyKind::none);
}

std::optional<Framing> response_framing(const HttpMessage& response, std::string_view request_method) {
  int status = response.status;
  if (status == 101 || (request_method == "CONNECT" && status / 100 == 2)) return Framing{BodyKind::tunnel};
  if (request_method == "HEAD" || status / 100 == 1 || status == 204 || status == 304) return Framing{};
  if (auto coding = last_transfer_coding(response.headers)) {
    return Framing{ascii_iequals(*coding, "chunked") ? BodyKind::chunked : BodyKind::until_close};
  }
  return length_framing(response.headers, BodyKind::until_close);
}

}  // namespace http1

using http1::BodyKind;

Http1Parser::Http1Parser(Kind kind, size_t max_body_bytes) : kind_(kind), max_body_bytes_(max_body_bytes) {}

ParseState Http1Parser::feed(std::span<const std::byte> bytes, uint64_t time_ns,
                             std::vector<HttpMessage>& out) {
  answer_held(false, out);
  std::string_view in(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // After a gap, only a chunk that starts a message is worth reading.
  bool at_message_start = stage_ == Stage::head && buffer_.empty();
  bool skip = resyncing_ && at_message_start &&
              !(kind_ == Kind::request ? looks_like_http1_request(in) : looks_like_http1_response(in));
  if (!in.empty() && !skip) {
    consume(in, time_ns, out);
    answer_held(false, out);
  }
  if (stage_ == Stage::invalid) return ParseState::invalid;
  bool idle = (stage_ == Stage::head && buffer_.empty()) || stage_ == Stage::tunnel;
  return idle ? ParseState::done : ParseState::need_more_data;
}

void Http1Parser::expect_response_to(std::string_view method) {
  if (owed_methods_ > 0) {
    --owed_methods_;  // its response was already framed without it
  } else {
    methods_.emplace_back(method);
  }
}

void Http1Parser::stop_waiting_for_methods(std::vector<HttpMessage>& out) {
  methods_unknown_ = true;
  answer_held(true, out);
}

void Http1Parser::finish(uint64_t /*time_ns: a body ends with its last chunk*/,
                         std::vector<HttpMessage>& out) {
  answer_held(true, out);
  if (stage_ == Stage::until_close) emit(out);
  if (stage_ != Stage::tunnel && stage_ != Stage::invalid) stage_ = Stage::head;
  message_ = {};
  clear_buffer();
  may_switch_ = false;
}

void Http1Parser::lost(uint64_t bytes) {
  if (bytes == 0 || stage_ == Stage::tunnel || stage_ == Stage::invalid) return;
  // A response cut by the gap used up its request's method, unless it was interim.
  bool interim = buffer_.size() > 9 && buffer_[9] == '1';
  bool response_begun = kind_ == Kind::response && stage_ == Stage::head && !buffer_.empty() && !interim;
  if (stage_ == Stage::await_method || response_begun) take_method();
  held_.clear();
  held_bytes_ = 0;
  message_ = {};
  clear_buffer();
  stage_ = Stage::head;
  resyncing_ = true;
}

void Http1Parser::consume(std::string_view in, uint64_t time_ns, std::vector<HttpMessage>& out) {
  if (stage_ != Stage::await_method) last_ns_ = time_ns;
  while (!in.empty()) {
    switch (stage_) {
      case Stage::invalid:
        return;
      case Stage::tunnel:
        if (tunneled_.size() < http1::kMaxBufferedBytes)
          tunneled_.append(in);
        else
          tunneled_lost_ += in.size();
        return;
      case Stage::await_method:
        held_bytes_ += in.size();
        held_.push_back({std::string(in), time_ns});
        return;
      case Stage::head:
        read_head(in, time_ns, out);
        break;
      case Stage::body:
      case Stage::chunk_data:
      case Stage::until_close:
        read_body(in, out);
        break;
      case Stage::chunk_size:
        read_chunk_size(in);
        break;
      case Stage::chunk_end:
        read_chunk_end(in);
        break;
      case Stage::trailers:
        read_trailers(in, out);
        break;
    }
  }
}

void Http1Parser::read_head(std::string_view& in, uint64_t time_ns, std::vector<HttpMessage>& out) {
  if (buffer_.empty()) {
    // Empty lines between messages are tolerated (RFC 9112 section 2.2).
    size_t start = in.find_first_not_of("\r\n");
    in.remove_prefix(start == http1::npos ? in.size() : start);
    if (in.empty()) return;
    first_ns_ = time_ns;
  }
  Unit unit = take_unit(in, http1::find_block_end);
  if (unit.state == ParseState::need_more_data) {
    bool possible =
        kind_ == Kind::request ? http1::could_start_request(buffer_) : http1::could_start_response(buffer_);
    if (switches_before(buffer_, false)) return;
    if (!possible) fail_head(in);
    return;
  }
  if (switches_before(unit.bytes, true)) return;
  if (unit.state == ParseState::invalid) return fail_head(in);
  auto head =
      kind_ == Kind::request ? http1::parse_request_head(unit.bytes) : http1::parse_response_head(unit.bytes);
  if (head.state != ParseState::done) return fail_head(in);
  message_ = std::move(head.value);
  resyncing_ = false;
  if (kind_ == Kind::request) {
    start_request(out);
  } else {
    start_response(out);
  }
}

// A request parser after CONNECT or Upgrade: unless `start` begins another
// request, the stream has become a tunnel. Returns whether it has.
bool Http1Parser::switches_before(std::string_view start, bool complete) {
  if (!may_switch_) return false;
  http1::Match match = http1::match_request_start(start);
  if (match == http1::Match::yes) {
    may_switch_ = false;
  } else if (match == http1::Match::no || complete) {
    tunneled_.assign(start);
    clear_buffer();
    stage_ = Stage::tunnel;
    return true;
  }
  return false;
}

void Http1Parser::start_request(std::vector<HttpMessage>& out) {
  may_switch_ = message_.method == "CONNECT" || find_header(message_.headers, "Upgrade");
  start_body(http1::request_framing(message_), out);
}

void Http1Parser::start_response(std::vector<HttpMessage>& out) {
  if (message_.status / 100 == 1 && message_.status != 101) {
    message_ = {};  // interim: the final response follows
    return;
  }
  if (methods_.empty() && message_.status != 101 && !methods_unknown_) {
    stage_ = Stage::await_method;
    return;
  }
  answer(take_method(), out);
}

// The held response's request method is known: frame its body and replay what
// was held back behind it.
void Http1Parser::answer(std::string_view method, std::vector<HttpMessage>& out) {
  std::vector<HeldChunk> held = std::exchange(held_, {});
  held_bytes_ = 0;
  start_body(http1::response_framing(message_, method), out);
  for (const HeldChunk& chunk : held) consume(chunk.bytes, chunk.time_ns, out);
}

// Answers held responses with the methods known, and without (force, or when too
// much is held back) as answers to neither HEAD nor CONNECT.
void Http1Parser::answer_held(bool force, std::vector<HttpMessage>& out) {
  while (stage_ == Stage::await_method &&
         (!methods_.empty() || force || held_bytes_ > http1::kMaxBufferedBytes)) {
    std::string method = take_method();
    answer(method, out);
  }
}

std::string Http1Parser::take_method() {
  if (methods_.empty()) {
    ++owed_methods_;
    return {};
  }
  std::string method = std::move(methods_.front());
  methods_.pop_front();
  return method;
}

void Http1Parser::start_body(std::optional<http1::Framing> framing, std::vector<HttpMessage>& out) {
  if (!framing) return fail();
  switch (framing->kind) {
    case BodyKind::none:
      return emit(out);
    case BodyKind::tunnel:
      emit(out);
      stage_ = Stage::tunnel;
      return;
    case BodyKind::length:
      remaining_ = framing->length;
      stage_ = Stage::body;
      return;
    case BodyKind::chunked:
      stage_ = Stage::chunk_size;
      return;
    case BodyKind::until_close:
      stage_ = Stage::until_close;
      return;
  }
}

void Http1Parser::read_body(std::string_view& in, std::vector<HttpMessage>& out) {
  size_t n = stage_ == Stage::until_close ? in.size()
                                          : static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
  message_.body_length += n;
  size_t room = max_body_bytes_ - message_.body.size();
  message_.body.append(in.substr(0, std::min(n, room)));
  in.remove_prefix(n);
  if (stage_ == Stage::until_close) return;
  remaining_ -= n;
  if (remaining_ > 0) return;
  if (stage_ == Stage::body) {
    emit(out);
  } else {
    stage_ = Stage::chunk_end;
  }
}

void Http1Parser::read_chunk_size(std::string_view& in) {
  Unit unit = take_unit(in, http1::find_line_end);
  if (unit.state == ParseState::need_more_data) return;
  auto size = unit.state == ParseState::done ? http1::parse_chunk_size_line(unit.bytes)
                                             : http1::Parsed<uint64_t>{ParseState::invalid};
  if (size.state != ParseState::done) return fail();
  remaining_ = size.value;
  stage_ = size.value == 0 ? Stage::trailers : Stage::chunk_data;
}

void Http1Parser::read_chunk_end(std::string_view& in) {
  Unit unit = take_unit(in, http1::find_line_end);
  if (unit.state == ParseState::need_more_data) return;
  if (unit.state != ParseState::done || (unit.bytes != "\r\n" && unit.bytes != "\n")) return fail();
  stage_ = Stage::chunk_size;
}

void Http1Parser::read_trailers(std::string_view& in, std::vector<HttpMessage>& out) {
  Unit unit = take_unit(in, http1::find_block_end);
  if (unit.state == ParseState::need_more_data) return;
  auto trailers = unit.state == ParseState::done ? http1::parse_header_block(unit.bytes)
                                                 : http1::Parsed<Headers>{ParseState::invalid};
  if (trailers.state != ParseState::done) return fail();
  message_.trailers = std::move(trailers.value);
  emit(out);
}

// The next line or block from the buffered bytes followed by `in`; only what
// it needs is taken from `in`. Without its end, `in` is buffered, up to the limit.
Http1Parser::Unit Http1Parser::take_unit(std::string_view& in, FindEnd find_end) {
  constexpr size_t limit = http1::kMaxBufferedBytes;
  if (buffer_.empty()) {
    size_t end = find_end(in, 0);
    if (end != http1::npos) {
      std::string_view bytes = in.substr(0, end);
      in.remove_prefix(end);
      return {end <= limit ? ParseState::done : ParseState::invalid, bytes};
    }
    if (in.size() >= limit) return {ParseState::invalid, in};
    buffer_.assign(in);
    scanned_ = in.size();
    in = {};
    return {};
  }
  size_t old = buffer_.size();
  size_t n = std::min(in.size(), limit - old);
  buffer_.append(in.substr(0, n));
  size_t end = find_end(buffer_, scanned_);
  if (end == http1::npos) {
    in.remove_prefix(n);
    scanned_ = buffer_.size();
    if (buffer_.size() >= limit) return {ParseState::invalid, buffer_};
    return {};
  }
  in.remove_prefix(end - old);
  buffer_.resize(end);
  unit_.swap(buffer_);
  clear_buffer();
  return {ParseState::done, unit_};
}

// A head that does not parse: after a gap, wait for the next chunk that starts
// a message; otherwise the stream is not HTTP/1.x.
void Http1Parser::fail_head(std::string_view& in) {
  if (!resyncing_) return fail();
  clear_buffer();
  message_ = {};
  in = {};
}

void Http1Parser::fail() {
  stage_ = Stage::invalid;
  message_ = {};
  clear_buffer();
}

void Http1Parser::emit(std::vector<HttpMessage>& out) {
  message_.first_byte_ns = first_ns_;
  message_.last_byte_ns = last_ns_;
  out.push_back(std::exchange(message_, {}));
  stage_ = Stage::head;
}

void Http1Parser::clear_buffer() {
  buffer_.clear();
  scanned_ = 0;
}

bool looks_like_http1_request(std::string_view start) {
  return http1::match_request_start(start) == http1::Match::yes;
}

bool looks_like_http1_response(std::string_view start) {
  return start.starts_with("HTTP/1.");
}

}  // namespace tlstap::proto
