#include "sink/json_sink.h"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/ascii.h"
#include "common/bytes.h"
#include "common/utf8.h"
#include "proto/grpc/protobuf_decode.h"
#include "sink/base64.h"
#include "sink/secrets.h"
#include "sink/text_sink.h"

namespace tlstap {
namespace {

// The letter after the backslash for each character a JSON string escapes
// in printable text; 0 for the bytes that pass as they are, 1 for those that
// make the text not printable (is_printable_text) and the body base64.
constexpr auto kEscape = [] {
  std::array<char, 256> escape{};
  escape.fill(1);
  for (int c = 0x20; c < 0x7f; ++c) escape[c] = 0;
  escape['"'] = '"';
  escape['\\'] = '\\';
  escape['\n'] = 'n';
  escape['\r'] = 'r';
  escape['\t'] = 't';
  return escape;
}();

// Where the run of bytes a JSON string holds as they are (printable ASCII
// but the quote and the backslash) ends in text, from `from`: 16 bytes a
// step with the compiler's vectors (SSE2, NEON), the rest one by one. Bodies
// are mostly such runs: byte by byte this was the agent's top symbol.
size_t plain_run_end(std::string_view text, size_t from) {
  using Bytes = unsigned char __attribute__((vector_size(16)));
  size_t at = from;
  for (; at + sizeof(Bytes) <= text.size(); at += sizeof(Bytes)) {
    Bytes v;
    std::memcpy(&v, text.data() + at, sizeof(v));
    auto special = (v < 0x20) | (v >= 0x7f) | (v == '"') | (v == '\\');
    static_assert(std::endian::native == std::endian::little, "lane 0 is a half's low byte");
    uint64_t halves[2];  // a special byte's lane is all ones
    std::memcpy(halves, &special, sizeof(halves));
    if (halves[0]) return at + std::countr_zero(halves[0]) / 8;
    if (halves[1]) return at + 8 + std::countr_zero(halves[1]) / 8;
  }
  while (at < text.size() && !kEscape[static_cast<unsigned char>(text[at])]) ++at;
  return at;
}

// Appends `text` as a JSON string when it is printable ASCII (as
// is_printable_text has it), escaping as it goes; false, `out` unchanged,
// otherwise. On bodies nlohmann's serializer, which decodes UTF-8 byte by
// byte, was the agent's top cost (perf record under bench/run.py's nginx).
bool append_json_ascii(std::string& out, std::string_view text) {
  const size_t start = out.size();
  out.reserve(start + text.size() + 2);
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    size_t run = plain_run_end(text, i);
    out.append(text.data() + i, run - i);
    if (run == text.size()) break;
    char letter = kEscape[static_cast<unsigned char>(text[run])];
    if (letter == 1) {
      out.resize(start);
      return false;
    }
    const char escape[2] = {'\\', letter};
    out.append(escape, 2);
    i = run + 1;
  }
  out.push_back('"');
  return true;
}

// Any text as a JSON string: the fast path above, else the serializer
// (invalid UTF-8 replaced, never thrown).
void append_json_string(std::string& out, std::string_view text) {
  if (!append_json_ascii(out, text))
    out += nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string base64(std::span<const std::byte> bytes) {
  std::string encoded;
  append_base64(encoded, bytes);
  return encoded;
}

// Writes one JSON object field by field into a line. On the agent's busiest
// paths building a JSON tree first cost more than the rest of the agent
// (perf record under bench/run.py's nginx). Keys are ours: never escaped.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_ += '{'; }
  // Further members of an object whose start `out` already holds.
  struct Continuing {};
  ObjectWriter(std::string& out, Continuing) : out_(out), first_(false) {}
  void key(std::string_view name) {
    separate();
    out_ += '"';
    out_ += name;
    out_ += "\":";
  }
  // A member the traced process named (a header): its name is escaped too.
  std::string& foreign_key(std::string_view name) {
    separate();
    append_json_string(out_, name);
    out_ += ':';
    return out_;
  }
  void string(std::string_view name, std::string_view value) {
    key(name);
    append_json_string(out_, value);
  }
  void number(std::string_view name, std::integral auto value) {
    key(name);
    fmt::format_to(std::back_inserter(out_), FMT_COMPILE("{}"), value);
  }
  void flag(std::string_view name) {
    key(name);
    out_ += "true";
  }
  std::string& raw(std::string_view name) {
    key(name);
    return out_;
  }
  // A member whose value `write` may decline to write (returns false): it
  // then leaves no trace.
  bool try_member(std::string_view name, auto write) {
    const size_t before = out_.size();
    const bool first = first_;
    key(name);
    if (write(out_)) return true;
    out_.resize(before);
    first_ = first;
    return false;
  }
  void end() { out_ += '}'; }

 private:
  void separate() {
    if (!first_) out_ += ',';
    first_ = false;
  }

  std::string& out_;
  bool first_ = true;
};

// Names in lower case, as HTTP/2 sends them, so both versions read alike;
// a repeated header becomes an array, in the place of its first appearance.
// Pseudo-headers have fields of their own.
void append_headers(std::string& out, const proto::Headers& headers, bool show_secrets) {
  std::vector<std::string> names;
  names.reserve(headers.size());
  for (const auto& header : headers) names.push_back(ascii_lower(header.name));
  ObjectWriter object(out);
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers[i].name.starts_with(':') ||
        std::find(names.begin(), names.begin() + i, names[i]) != names.begin() + i)
      continue;  // a pseudo-header, or a name already written
    auto value_of = [&](size_t at) { return shown_header_value(names[at], headers[at].value, show_secrets); };
    size_t count = std::count(names.begin() + i, names.end(), names[i]);
    std::string& line = object.foreign_key(names[i]);
    if (count == 1) {
      append_json_string(line, value_of(i));
      continue;
    }
    line += '[';
    for (size_t j = i, written = 0; j < headers.size(); ++j) {
      if (names[j] != names[i]) continue;
      if (written++) line += ',';
      append_json_string(line, value_of(j));
    }
    line += ']';
  }
  object.end();
}

// The body as text when it is printable ASCII, else base64.
void put_body(ObjectWriter& object, std::string_view side, const proto::HttpMessage& m) {
  if (m.body.empty()) return;
  auto as_text = [&](std::string& line) { return append_json_ascii(line, m.body); };
  if (object.try_member(fmt::format("{}_body", side), as_text)) return;
  std::string& line = object.raw(fmt::format("{}_body_base64", side));
  line += '"';
  append_base64(line, as_bytes(m.body));
  line += '"';
}

void put_message(ObjectWriter& object, std::string_view side, const proto::HttpMessage& m,
                 bool show_secrets) {
  append_headers(object.raw(fmt::format("{}_headers", side)), m.headers, show_secrets);
  if (!m.trailers.empty())
    append_headers(object.raw(fmt::format("{}_trailers", side)), m.trailers, show_secrets);
  if (m.headers_unknown) object.flag(fmt::format("{}_headers_unknown", side));
  object.number(fmt::format("{}_body_len", side), m.body_length);
  if (!m.body.empty() && proto::body_truncated(m)) object.flag(fmt::format("{}_body_truncated", side));
  if (m.decoding.decoded()) object.string(fmt::format("{}_body_decoded", side), m.decoding.codings);
  if (!m.decoding.error.empty()) object.string(fmt::format("{}_body_decode_error", side), m.decoding.error);
}

nlohmann::ordered_json grpc_messages(const std::vector<proto::GrpcMessage>& messages) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& m : messages) {
    nlohmann::ordered_json entry{{"compressed", m.compressed}, {"length", m.length}};
    if (m.decoding.decoded()) entry["decoded"] = m.decoding.codings;
    if (!m.decoding.error.empty()) entry["decode_error"] = m.decoding.error;
    if (proto::shown_in_part(m.decoding, m.data.size(), m.length)) entry["truncated"] = true;
    auto decoded = proto::readable_whole(m) ? proto::decode_protobuf(as_bytes(m.data)) : std::nullopt;
    if (decoded)
      entry["protobuf"] = std::move(*decoded);
    else
      entry["data_base64"] = base64(as_bytes(m.data));
    list.push_back(std::move(entry));
  }
  return list;
}

nlohmann::ordered_json grpc_object(const proto::GrpcCall& call) {
  nlohmann::ordered_json j;
  j["service"] = call.service;
  j["method"] = call.method;
  if (call.status) j["status"] = *call.status;
  if (!call.message.empty()) j["message"] = call.message;
  j["request_messages"] = grpc_messages(call.request_messages);
  j["response_messages"] = grpc_messages(call.response_messages);
  if (call.request_messages_dropped) j["request_messages_dropped"] = call.request_messages_dropped;
  if (call.response_messages_dropped) j["response_messages_dropped"] = call.response_messages_dropped;
  return j;
}

std::string dump(const nlohmann::ordered_json& j) {
  // comm, headers and bodies are whatever the process sent: never let bad UTF-8 throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The process's executable and where it runs: members left out when unknown
// (a host process has no container).
void put_process(ObjectWriter& j, const ProcessIdentity& p) {
  j.string("exe", p.exe);
  if (!p.cgroup.empty()) j.string("cgroup", p.cgroup);
  if (!p.container_id.empty()) j.string("container_id", p.container_id);
  if (!p.pod_uid.empty()) j.string("pod_uid", p.pod_uid);
  if (!p.pod_namespace.empty()) j.string("pod_namespace", p.pod_namespace);
  if (!p.pod_name.empty()) j.string("pod_name", p.pod_name);
  if (!p.container_name.empty()) j.string("container_name", p.container_name);
  if (p.netns) j.number("netns", p.netns);
}

// Who the connection belongs to and where it goes, as every connection-level line has it.
void put_connection(ObjectWriter& j, const ConnectionIdentity& c) {
  j.number("pid", c.pid);
  j.string("comm", c.comm);
  put_process(j, c.process);
  j.string("library", to_string(c.library));
  j.string("local", format_endpoint(c.local));
  j.string("remote", format_endpoint(c.remote));
  j.string("role", to_string(c.role));
  j.number("conn_id", c.conn_uid);
}

void append_json_exchange(std::string& line, const ExchangeRecord& r, bool show_secrets) {
  const proto::HttpExchange& x = r.exchange;
  ObjectWriter j(line);
  j.string("type", "http");
  j.number("ts", x.start_ns());
  j.string("version", x.version);
  put_connection(j, r.connection);
  if (x.version == "2") j.number("stream_id", x.stream_id);
  if (x.request) {
    j.string("method", x.request->method);
    j.string("authority", x.request->authority);
    j.string("path", x.request->target);
  }
  if (x.response) j.number("status", x.response->status);
  if (x.request) put_message(j, "request", *x.request, show_secrets);
  if (x.response) put_message(j, "response", *x.response, show_secrets);
  if (x.request && x.response) j.number("latency_ns", x.latency_ns());
  if (!x.request) j.flag("request_unseen");
  if (x.incomplete) j.flag("incomplete");
  if (x.reset_code) j.number("reset_code", *x.reset_code);
  if (x.switched_protocols) j.flag("switched_protocols");
  if (x.grpc) j.raw("grpc") += dump(grpc_object(*x.grpc));
  if (x.request) put_body(j, "request", *x.request);
  if (x.response) put_body(j, "response", *x.response);
  j.end();
}

// A payload as a JSON string when it is UTF-8 text (a text message's, or a
// control frame's reason or data), else base64: no byte is replaced.
void append_json_websocket(std::string& line, const WebSocketRecord& r) {
  const proto::WebSocketMessage& m = r.message;
  ObjectWriter j(line);
  j.string("type", "websocket");
  j.number("ts", m.first_byte_ns);
  put_connection(j, r.connection);
  if (!r.path.empty()) {
    j.string("authority", r.authority);
    j.string("path", r.path);
  }
  j.string("from", r.from_client ? "client" : "server");
  j.string("opcode", proto::to_string(m.opcode));
  j.number("length", m.length);
  if (m.frames > 1) j.number("frames", m.frames);
  if (m.compressed) j.flag("compressed");
  if (m.inflate_failed) j.flag("inflate_failed");
  if (m.close_code) j.number("close_code", *m.close_code);
  if (m.payload.size() < m.length) j.flag("payload_truncated");
  if (m.opcode != proto::WebSocketOpcode::binary && is_utf8(m.payload)) {
    append_json_string(j.raw("payload"), m.payload);
  } else {
    std::string& out = j.raw("payload_base64");
    out += '"';
    append_base64(out, as_bytes(m.payload));
    out += '"';
  }
  j.end();
}

// One line per chunk, the agent's busiest path, in as few appends as it
// takes; only comm and the process's identity (whatever it is called) may
// need escaping. The base64 payload, most of the line, never does.
void append_json_record(std::string& line, const DataRecord& r) {
  const DataEvent& e = r.event;
  line.reserve(line.size() + 384 + 4 * (e.payload.size() + 2) / 3);
  auto out = std::back_inserter(line);
  fmt::format_to(out, FMT_COMPILE(R"({{"type":"data","ts":{},"pid":{},"tid":{},"comm":)"), r.wall_time_ns,
                 e.pid, e.tid);
  append_json_string(line, e.comm);
  ObjectWriter continuing(line, ObjectWriter::Continuing{});
  put_process(continuing, r.process);
  fmt::format_to(out,
                 FMT_COMPILE(R"(,"library":"{}","function":"{}","direction":"{}","local":"{}","remote":"{}",)"
                             R"("role":"{}","conn_id":{},"stream_offset":{})"),
                 to_string(e.library), to_string(e.function), to_string(e.direction),
                 format_endpoint(e.local), format_endpoint(e.remote), to_string(r.role), e.conn_uid,
                 e.stream_offset);
  if (r.gap_before) fmt::format_to(out, FMT_COMPILE(R"(,"gap_before":{})"), r.gap_before);
  if (r.opened_before_capture) line += R"(,"opened_before_capture":true)";
  fmt::format_to(out, FMT_COMPILE(R"(,"call_len":{},"len":{},"data":")"), e.call_len, e.payload.size());
  append_base64(line, e.payload);
  line += "\"}";
}

void append_json_close(std::string& line, const CloseRecord& r) {
  ObjectWriter j(line);
  j.string("type", "close");
  j.number("ts", r.wall_time_ns);
  j.number("pid", r.pid);
  j.number("conn_id", r.conn_uid);
  j.end();
}

}  // namespace

std::string format_json_exchange(const ExchangeRecord& r, bool show_secrets) {
  std::string line;
  append_json_exchange(line, r, show_secrets);
  return line;
}

std::string format_json_record(const DataRecord& r) {
  std::string line;
  append_json_record(line, r);
  return line;
}

std::string format_json_close(const CloseRecord& r) {
  std::string line;
  append_json_close(line, r);
  return line;
}

std::string format_json_websocket(const WebSocketRecord& r) {
  std::string line;
  append_json_websocket(line, r);
  return line;
}

// Lines are built in one buffer that keeps its capacity: no allocation per line.
void JsonSink::write_close(const CloseRecord& record) {
  line_.clear();
  append_json_close(line_, record);
  emit_line();
}

void JsonSink::write_exchange(const ExchangeRecord& record) {
  line_.clear();
  append_json_exchange(line_, record, show_secrets_);
  emit_line();
}

void JsonSink::write_websocket(const WebSocketRecord& record) {
  line_.clear();
  append_json_websocket(line_, record);
  emit_line();
}

void JsonSink::write(const DataRecord& record) {
  line_.clear();
  append_json_record(line_, record);
  emit_line();
}

void JsonSink::emit_line() {
  line_ += '\n';
  out_.write(line_);
}

}  // namespace tlstap
