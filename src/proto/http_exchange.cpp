#include "proto/http_exchange.h"

#include "proto/grpc/grpc_messages.h"

namespace tlstap::proto {
namespace {

std::optional<int> parse_status(const std::string& text) {
  int value = 0;
  if (text.empty() || text.size() > 4) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"); a stray
// '%' is kept as it is, as the spec asks of receivers.
std::string percent_decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    int high = i + 2 < text.size() && text[i] == '%' ? hex_value(text[i + 1]) : -1;
    int low = high >= 0 ? hex_value(text[i + 2]) : -1;
    if (low >= 0) {
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

uint64_t HttpExchange::latency_ns() const {
  if (!request || !response || response->last_byte_ns < request->first_byte_ns) return 0;
  return response->last_byte_ns - request->first_byte_ns;
}

uint64_t HttpExchange::start_ns() const {
  return request ? request->first_byte_ns : response ? response->first_byte_ns : 0;
}

std::optional<GrpcCall> grpc_call_of(Http2Stream& stream) {
  const std::string* content_type = find_header(stream.request.headers, "content-type");
  if (!content_type || !is_grpc_content_type(*content_type)) return std::nullopt;
  GrpcCall call;
  if (auto method = split_grpc_path(stream.request.target)) {
    call.service = method->service;
    call.method = method->method;
  }
  // A call that fails at once answers with headers only ("trailers-only").
  const Headers& trailers =
      stream.response.trailers.empty() ? stream.response.headers : stream.response.trailers;
  if (const std::string* status = find_header(trailers, "grpc-status")) call.status = parse_status(*status);
  if (const std::string* message = find_header(trailers, "grpc-message"))
    call.message = percent_decode(*message);
  call.request_messages = std::move(stream.request_messages);
  call.response_messages = std::move(stream.response_messages);
  call.request_messages_dropped = stream.request_messages_dropped;
  call.response_messages_dropped = stream.response_messages_dropped;
  return call;
}

HttpExchange exchange_from_stream(Http2Stream stream) {
  HttpExchange exchange;
  exchange.version = "2";
  exchange.grpc = grpc_call_of(stream);
  exchange.stream_id = stream.id;
  exchange.reset_code = stream.reset_code;
  exchange.incomplete = stream.incomplete;
  // A stream whose side was never seen keeps an empty message: leave it out.
  if (stream.request.first_byte_ns) exchange.request = std::move(stream.request);
  if (stream.response.first_byte_ns) exchange.response = std::move(stream.response);
  return exchange;
}

}  // namespace tlstap::proto
