#include "sink/text_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <ctime>

#include "common/bytes.h"
#include "common/terminal_text.h"
#include "proto/grpc/protobuf_decode.h"
#include "sink/secrets.h"

namespace tlstap {
namespace {

std::string clock_time(uint64_t wall_time_ns) {
  time_t seconds = static_cast<time_t>(wall_time_ns / 1'000'000'000);
  struct tm local {};
  localtime_r(&seconds, &local);
  return fmt::format("{:02}:{:02}:{:02}.{:06}", local.tm_hour, local.tm_min, local.tm_sec,
                     (wall_time_ns / 1000) % 1'000'000);
}

std::string or_unknown(std::string text) {
  return text.empty() ? "?" : text;
}

std::string human_bytes(uint64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < 1024 * 1024) return fmt::format("{:.1f} KiB", n / 1024.0);
  return fmt::format("{:.1f} MiB", n / (1024.0 * 1024.0));
}

std::string human_duration(uint64_t ns) {
  if (ns < 1'000'000) return fmt::format("{:.0f} us", ns / 1e3);
  if (ns < 1'000'000'000) return fmt::format("{:.1f} ms", ns / 1e6);
  return fmt::format("{:.2f} s", ns / 1e9);
}

std::string exchange_summary(const proto::HttpExchange& x) {
  std::string request =
      x.request ? fmt::format("{} {}{}", terminal_field(x.request->method),
                              terminal_field(x.request->authority), terminal_field(x.request->target))
                : std::string("(request not seen)");
  std::string status = x.response ? fmt::format("{}", x.response->status) : std::string("no response");
  std::string line = fmt::format("HTTP/{} {} -> {}", x.version, request, status);
  if (x.grpc) {
    line += fmt::format(" grpc {}/{}", terminal_field(x.grpc->service), terminal_field(x.grpc->method));
    if (x.grpc->status) line += fmt::format(" status {}", *x.grpc->status);
    if (!x.grpc->message.empty()) line += fmt::format(" \"{}\"", terminal_field(x.grpc->message));
  }
  if (x.request && x.response) line += " " + human_duration(x.latency_ns());
  line += fmt::format(" req {} resp {}", human_bytes(x.request ? x.request->body_length : 0),
                      human_bytes(x.response ? x.response->body_length : 0));
  if (x.reset_code) line += fmt::format(" reset({})", *x.reset_code);
  if (x.incomplete) line += " incomplete";
  if (x.switched_protocols) line += " switched protocols";
  return line;
}

// Bytes as a quoted string a terminal shows as it is: quotes and
// backslashes escaped, and whatever terminal_field escapes as \xNN.
std::string quoted_field(std::string_view bytes) {
  std::string escaped;
  for (char c : bytes) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return '"' + terminal_field(escaped) + '"';
}

// The bytes of decode_protobuf's "hex" (its own output: pairs of hex digits).
std::string from_hex(std::string_view hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    unsigned byte = 0;
    std::from_chars(hex.data() + i, hex.data() + i + 2, byte, 16);
    bytes += static_cast<char>(byte);
  }
  return bytes;
}

// A message decoded without its schema, laid out as protoc --decode_raw
// does: "field: value", nested messages in braces, fixed32/fixed64 in hex,
// strings and bytes quoted.
void append_protobuf(std::string& out, char mark, const nlohmann::ordered_json& fields, size_t depth) {
  const std::string indent(2 * depth, ' ');
  for (const auto& field : fields) {
    std::string head = fmt::format("  {} {}{}", mark, indent, field["field"].get<uint64_t>());
    const std::string wire = field["wire"].get<std::string>();
    if (const auto nested = field.find("message"); nested != field.end()) {
      out += head + " {\n";
      append_protobuf(out, mark, *nested, depth + 1);
      out += fmt::format("  {} {}}}\n", mark, indent);
    } else if (const auto text = field.find("string"); text != field.end()) {
      out += fmt::format("{}: {}\n", head, quoted_field(text->get<std::string>()));
    } else if (const auto hex = field.find("hex"); hex != field.end()) {
      out += fmt::format("{}: {}\n", head, quoted_field(from_hex(hex->get<std::string>())));
    } else if (wire == "i32") {
      out += fmt::format("{}: 0x{:08x}\n", head, field["value"].get<uint64_t>());
    } else if (wire == "i64") {
      out += fmt::format("{}: 0x{:016x}\n", head, field["value"].get<uint64_t>());
    } else {
      out += fmt::format("{}: {}\n", head, field["value"].get<uint64_t>());
    }
  }
}

// Shows `bytes` as text when they are printable, else as a hexdump.
void append_bytes(std::string& out, std::string_view bytes) {
  if (bytes.empty()) return;
  if (!is_printable_text(as_bytes(bytes))) {
    out += hexdump(as_bytes(bytes));
    return;
  }
  out += bytes;
  if (bytes.back() != '\n') out += '\n';
}

void append_grpc_message(std::string& out, char mark, size_t number, const proto::GrpcMessage& m) {
  std::string line = fmt::format("  {} (grpc message {}: {}", mark, number, human_bytes(m.length));
  if (m.decoding.decoded())
    line += fmt::format(" {} compressed, decoded", terminal_field(m.decoding.codings));
  else if (m.compressed)
    line += " compressed";
  if (!m.decoding.error.empty()) line += fmt::format("; not decoded: {}", terminal_field(m.decoding.error));
  out += line + ")\n";
  bool whole = proto::readable_whole(m);
  if (auto fields = whole ? proto::decode_protobuf(as_bytes(m.data)) : std::nullopt) {
    append_protobuf(out, mark, *fields, 1);
    return;
  }
  append_bytes(out, m.data);
  if (whole && !is_printable_text(as_bytes(m.data)))
    out += fmt::format("  {} (not a protobuf message)\n", mark);
  else if (m.decoding.decoded() && !m.decoding.whole)
    out += fmt::format("  {} (decoded in part)\n", mark);
  else if (!m.decoding.decoded() && m.data.size() < m.length)
    out += fmt::format("  {} (the rest not kept)\n", mark);
}

// Whether a side's gRPC messages hold every byte of its body (those past the
// first 1000 are counted, not kept, and were whole). Else the body is shown
// too: a proxy's error page, bytes after a message the stream cut short.
bool messages_hold_body(const proto::HttpMessage& m, const std::vector<proto::GrpcMessage>& messages,
                        uint64_t dropped) {
  uint64_t held = 0;
  for (const auto& message : messages) held += 5 + uint64_t{message.length};
  return dropped > 0 || held == m.body_length;
}

// Headers and trailers, then the body unless `with_body` is false.
void append_message(std::string& out, char mark, const proto::HttpMessage& m, bool show_secrets,
                    bool with_body) {
  if (m.headers_unknown) out += fmt::format("  {} (headers unknown: joined mid-connection)\n", mark);
  for (const auto& h : m.headers)
    out += fmt::format("  {} {}: {}\n", mark, terminal_field(h.name),
                       terminal_field(shown_header_value(h.name, h.value, show_secrets)));
  for (const auto& h : m.trailers)
    out += fmt::format("  {} (trailer) {}: {}\n", mark, terminal_field(h.name),
                       terminal_field(shown_header_value(h.name, h.value, show_secrets)));
  if (!with_body) return;
  if (m.body.empty()) return;
  append_bytes(out, m.body);
  if (m.decoding.decoded())
    out += fmt::format("  {} (body decoded from {}: {} bytes sent{})\n", mark,
                       terminal_field(m.decoding.codings), m.body_length,
                       m.decoding.whole ? "" : "; decoded in part");
  else if (m.body.size() < m.body_length)
    out += fmt::format("  {} ({} more body bytes)\n", mark, m.body_length - m.body.size());
  if (!m.decoding.error.empty())
    out += fmt::format("  {} (body not decoded: {})\n", mark, terminal_field(m.decoding.error));
}

// One side of a gRPC call: its headers, then its messages, each readable one
// decoded, in place of the length-prefixed (maybe compressed) HTTP/2 body.
void append_grpc_side(std::string& out, char mark, const proto::HttpMessage& m,
                      const std::vector<proto::GrpcMessage>& messages, uint64_t dropped, bool show_secrets) {
  append_message(out, mark, m, show_secrets, !messages_hold_body(m, messages, dropped));
  for (size_t i = 0; i < messages.size(); ++i) append_grpc_message(out, mark, i + 1, messages[i]);
  if (dropped) out += fmt::format("  {} ({} more grpc messages, not kept)\n", mark, dropped);
}

// " ctr:<short ID>" for a process in a container (the 12 digits `docker ps`
// shows), then " pod:<namespace>/<pod>/<container>" where the runtime named them.
std::string container_tag(const ProcessIdentity& p) {
  std::string tag;
  if (!p.container_id.empty()) tag = " ctr:" + p.container_id.substr(0, 12);
  if (!p.pod_name.empty()) {
    tag += " pod:" + p.pod_namespace + "/" + p.pod_name;
    if (!p.container_name.empty()) tag += "/" + p.container_name;  // none for the pod's sandbox
  }
  return terminal_field(tag);  // a replayed capture's fields are anybody's
}

// The start of a connection's line: when, who, and which way.
std::string connection_prefix(uint64_t time_ns, const ConnectionIdentity& c) {
  return fmt::format("{} {}[{}]{} {} {} {} ({})", clock_time(time_ns), terminal_field(c.comm), c.pid,
                     container_tag(c.process), or_unknown(format_endpoint(c.local)),
                     c.role != Role::server ? "->" : "<-", or_unknown(format_endpoint(c.remote)),
                     to_string(c.role));
}

std::string websocket_summary(const proto::WebSocketMessage& m) {
  std::string line = fmt::format("{} {}", to_string(m.opcode), human_bytes(m.length));
  if (m.close_code) line += fmt::format(" code {}", *m.close_code);
  if (m.compressed) line += " compressed";
  if (m.frames > 1) line += fmt::format(" in {} frames", m.frames);
  if (m.inflate_failed) line += " (could not be inflated)";
  // A short one-line payload fits on the line itself.
  constexpr size_t kInline = 80;
  bool textual = m.opcode != proto::WebSocketOpcode::binary;
  if (textual && !m.payload.empty() && m.payload.size() <= kInline && m.payload.size() == m.length &&
      m.payload.find_first_of("\r\n") == std::string::npos && is_terminal_safe_text(m.payload))
    line += fmt::format(" \"{}\"", m.payload);
  return line;
}

}  // namespace

std::string format_text_websocket(const WebSocketRecord& r, const TextOptions& options) {
  const proto::WebSocketMessage& m = r.message;
  std::string path = r.path.empty() ? std::string() : terminal_field(r.path) + " ";
  std::string out = fmt::format("{} WebSocket {}{} {}\n", connection_prefix(m.first_byte_ns, r.connection),
                                path, r.from_client ? '>' : '<', websocket_summary(m));
  if (!options.details || m.payload.empty()) return out;
  if (m.opcode != proto::WebSocketOpcode::binary && is_terminal_safe_text(m.payload)) {
    out += m.payload;
    if (m.payload.back() != '\n') out += '\n';
  } else {
    out += hexdump(std::span(reinterpret_cast<const std::byte*>(m.payload.data()), m.payload.size()));
  }
  if (m.payload.size() < m.length)
    out += fmt::format("  {} ({} more bytes)\n", r.from_client ? '>' : '<', m.length - m.payload.size());
  return out;
}

std::string format_text_exchange(const ExchangeRecord& r, const TextOptions& options) {
  std::string out = fmt::format("{} {}\n", connection_prefix(r.exchange.start_ns(), r.connection),
                                exchange_summary(r.exchange));
  if (!options.details) return out;
  const auto& grpc = r.exchange.grpc;
  if (r.exchange.request) {
    if (grpc)
      append_grpc_side(out, '>', *r.exchange.request, grpc->request_messages, grpc->request_messages_dropped,
                       options.show_secrets);
    else
      append_message(out, '>', *r.exchange.request, options.show_secrets, true);
  }
  if (r.exchange.response) {
    if (grpc)
      append_grpc_side(out, '<', *r.exchange.response, grpc->response_messages,
                       grpc->response_messages_dropped, options.show_secrets);
    else
      append_message(out, '<', *r.exchange.response, options.show_secrets, true);
  }
  return out;
}

bool is_printable_text(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) {
    auto c = static_cast<unsigned char>(b);
    return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t';
  });
}

std::string hexdump(std::span<const std::byte> bytes) {
  std::string out;
  for (size_t row = 0; row < bytes.size(); row += 16) {
    out += fmt::format("  {:08x}  ", row);
    std::string ascii;
    for (size_t i = row; i < row + 16; ++i) {
      if (i < bytes.size()) {
        auto c = static_cast<unsigned char>(bytes[i]);
        out += fmt::format("{:02x} ", c);
        ascii += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
      } else {
        out += "   ";
      }
      if (i == row + 7) out += ' ';
    }
    out += " |" + ascii + "|\n";
  }
  return out;
}

std::string format_text_record(const DataRecord& r) {
  const DataEvent& e = r.event;
  bool egress = e.direction == Direction::egress;
  std::string header = fmt::format(
      "{} {}[{}/{}]{} {} {} {} {} {} {} ({}) {} bytes", clock_time(r.wall_time_ns), terminal_field(e.comm),
      e.pid, e.tid, container_tag(r.process), to_string(e.library), to_string(e.function),
      to_string(e.direction), or_unknown(format_endpoint(e.local)), egress ? "->" : "<-",
      or_unknown(format_endpoint(e.remote)), to_string(r.role), e.payload.size());
  if (e.call_len != e.payload.size())
    header += fmt::format(" [{}..{} of {}]", e.chunk_offset, e.chunk_offset + e.payload.size(), e.call_len);
  if (r.gap_before) header += fmt::format(" (after {} lost bytes)", r.gap_before);
  header += '\n';
  if (is_printable_text(e.payload)) {
    header.append(reinterpret_cast<const char*>(e.payload.data()), e.payload.size());
    if (!e.payload.empty() && e.payload.back() != std::byte{'\n'}) header += '\n';
  } else {
    header += hexdump(e.payload);
  }
  return header;
}

}  // namespace tlstap
