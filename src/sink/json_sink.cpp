#include "sink/json_sink.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <nlohmann/json.hpp>

#include "proto/grpc/protobuf_decode.h"
#include "sink/secrets.h"
#include "sink/text_sink.h"

namespace tlstap {
namespace {

void append_base64(std::string& out, std::span<const std::byte> bytes) {
  size_t at = out.size();
  out.resize(at + 4 * ((bytes.size() + 2) / 3) + 1);
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(at + n);
}

// Appends `text` as a JSON string when it is printable ASCII (as
// is_printable_text has it), escaping as it goes; false, `out` unchanged,
// otherwise. On bodies nlohmann's serializer, which decodes UTF-8 byte by
// byte, was the agent's top cost (perf record under bench/run.py's nginx).
bool append_json_ascii(std::string& out, std::string_view text) {
  const size_t start = out.size();
  out.reserve(start + text.size() + 2);
  out.push_back('"');
  auto plain = [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; };
  for (size_t i = 0; i < text.size();) {
    size_t run = i;
    while (run < text.size() && plain(text[run])) ++run;
    out.append(text, i, run - i);
    if (run == text.size()) break;
    switch (text[run]) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out.resize(start);
        return false;
    }
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

std::span<const std::byte> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

// Names in lower case, as HTTP/2 sends them, so both versions read alike;
// a repeated header becomes an array. Pseudo-headers have fields of their own.
nlohmann::ordered_json headers_object(const proto::Headers& headers, bool show_secrets) {
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  for (const auto& header : headers) {
    if (header.name.starts_with(':')) continue;
    std::string name = header.name;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = shown_header_value(name, header.value, show_secrets);
    auto it = object.find(name);
    if (it == object.end()) {
      object[name] = value;
    } else {
      if (!it->is_array()) *it = nlohmann::ordered_json::array({*it});
      it->push_back(value);
    }
  }
  return object;
}

void put_message(nlohmann::ordered_json& j, std::string_view side, const proto::HttpMessage& m,
                 bool show_secrets) {
  std::string prefix(side);
  j[prefix + "_headers"] = headers_object(m.headers, show_secrets);
  if (!m.trailers.empty()) j[prefix + "_trailers"] = headers_object(m.trailers, show_secrets);
  if (m.headers_unknown) j[prefix + "_headers_unknown"] = true;
  j[prefix + "_body_len"] = m.body_length;
  if (!m.body.empty() && m.body.size() < m.body_length) j[prefix + "_body_truncated"] = true;
}

// The body goes behind the fields the serializer wrote (see append_json_ascii):
// `line` is a JSON object without its closing brace.
void append_body(std::string& line, std::string_view side, const proto::HttpMessage& m) {
  if (m.body.empty()) return;
  const size_t start = line.size();
  fmt::format_to(std::back_inserter(line), R"(,"{}_body":)", side);
  if (append_json_ascii(line, m.body)) return;
  line.resize(start);
  fmt::format_to(std::back_inserter(line), R"(,"{}_body_base64":")", side);
  append_base64(line, as_bytes(m.body));
  line += '"';
}

nlohmann::ordered_json grpc_messages(const std::vector<proto::GrpcMessage>& messages) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& m : messages) {
    nlohmann::ordered_json entry{{"compressed", m.compressed}, {"length", m.length}};
    auto decoded =
        m.compressed || m.data.size() < m.length ? std::nullopt : proto::decode_protobuf(as_bytes(m.data));
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
  return j;
}

std::string dump(const nlohmann::ordered_json& j) {
  // comm, headers and bodies are whatever the process sent: never let bad UTF-8 throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string format_json_exchange(const ExchangeRecord& r, bool show_secrets) {
  const proto::HttpExchange& x = r.exchange;
  const ConnectionIdentity& c = r.connection;
  nlohmann::ordered_json j;
  j["type"] = "http";
  j["ts"] = x.start_ns();
  j["version"] = x.version;
  j["pid"] = c.pid;
  j["comm"] = c.comm;
  j["exe"] = c.exe;
  j["library"] = to_string(c.library);
  j["local"] = format_endpoint(c.local);
  j["remote"] = format_endpoint(c.remote);
  j["role"] = to_string(c.role);
  j["conn_id"] = c.conn_uid;
  if (x.version == "2") j["stream_id"] = x.stream_id;
  if (x.request) {
    j["method"] = x.request->method;
    j["authority"] = x.request->authority;
    j["path"] = x.request->target;
  }
  if (x.response) j["status"] = x.response->status;
  if (x.request) put_message(j, "request", *x.request, show_secrets);
  if (x.response) put_message(j, "response", *x.response, show_secrets);
  if (x.request && x.response) j["latency_ns"] = x.latency_ns();
  if (!x.request) j["request_unseen"] = true;
  if (x.incomplete) j["incomplete"] = true;
  if (x.reset_code) j["reset_code"] = *x.reset_code;
  if (x.switched_protocols) j["switched_protocols"] = true;
  if (x.grpc) j["grpc"] = grpc_object(*x.grpc);
  std::string line = dump(j);
  line.pop_back();  // the closing brace
  if (x.request) append_body(line, "request", *x.request);
  if (x.response) append_body(line, "response", *x.response);
  line += '}';
  return line;
}

std::string format_json_record(const DataRecord& r) {
  // One line per chunk, the agent's busiest path: written straight, without a
  // JSON tree; only comm and exe (whatever the process is called) may need the
  // serializer. The base64 payload, most of the line, never needs escaping.
  const DataEvent& e = r.event;
  std::string line;
  line.reserve(384 + 4 * (e.payload.size() + 2) / 3);
  auto out = std::back_inserter(line);
  fmt::format_to(out, R"({{"type":"data","ts":{},"pid":{},"tid":{},"comm":)", r.wall_time_ns, e.pid, e.tid);
  append_json_string(line, e.comm);
  line += R"(,"exe":)";
  append_json_string(line, r.exe);
  fmt::format_to(out,
                 R"(,"library":"{}","function":"{}","direction":"{}","local":"{}","remote":"{}","role":"{}",)"
                 R"("conn_id":{},"stream_offset":{})",
                 to_string(e.library), to_string(e.function), to_string(e.direction),
                 format_endpoint(e.local), format_endpoint(e.remote), to_string(r.role), e.conn_uid,
                 e.stream_offset);
  if (r.gap_before) fmt::format_to(out, R"(,"gap_before":{})", r.gap_before);
  if (r.opened_before_capture) line += R"(,"opened_before_capture":true)";
  fmt::format_to(out, R"(,"call_len":{},"len":{},"data":")", e.call_len, e.payload.size());
  append_base64(line, e.payload);
  line += "\"}";
  return line;
}

std::string format_json_close(const CloseRecord& r) {
  return dump(nlohmann::ordered_json{
      {"type", "close"}, {"ts", r.wall_time_ns}, {"pid", r.pid}, {"conn_id", r.conn_uid}});
}

void JsonSink::write_close(const CloseRecord& record) {
  out_.write(format_json_close(record) + '\n');
}

void JsonSink::write_exchange(const ExchangeRecord& record) {
  std::string line = format_json_exchange(record, show_secrets_);
  line += '\n';
  out_.write(line);
}

void JsonSink::write(const DataRecord& record) {
  std::string line = format_json_record(record);
  line += '\n';
  out_.write(line);
}

}  // namespace tlstap
