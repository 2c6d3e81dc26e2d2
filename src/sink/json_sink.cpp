#include "sink/json_sink.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
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
  if (m.body.empty()) return;
  if (is_printable_text(as_bytes(m.body)))
    j[prefix + "_body"] = m.body;
  else
    j[prefix + "_body_base64"] = base64(as_bytes(m.body));
  if (m.body.size() < m.body_length) j[prefix + "_body_truncated"] = true;
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
  return dump(j);
}

std::string format_json_record(const DataRecord& r) {
  const DataEvent& e = r.event;
  nlohmann::ordered_json j;
  j["type"] = "data";
  j["ts"] = r.wall_time_ns;
  j["pid"] = e.pid;
  j["tid"] = e.tid;
  j["comm"] = e.comm;
  j["exe"] = r.exe;
  j["library"] = to_string(e.library);
  j["function"] = to_string(e.function);
  j["direction"] = to_string(e.direction);
  j["local"] = format_endpoint(e.local);
  j["remote"] = format_endpoint(e.remote);
  j["role"] = to_string(r.role);
  j["conn_id"] = e.conn_uid;
  j["stream_offset"] = e.stream_offset;
  if (r.gap_before) j["gap_before"] = r.gap_before;
  if (r.opened_before_capture) j["opened_before_capture"] = true;
  j["call_len"] = e.call_len;
  j["len"] = e.payload.size();
  // The payload is most of the line and its base64 never needs escaping: it is
  // appended as is rather than checked by the serializer character by character.
  std::string line = dump(j);
  line.pop_back();  // the closing brace
  line += R"(,"data":")";
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
