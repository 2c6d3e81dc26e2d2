#include "conn/exchange_tracker.h"

#include <deque>
#include <optional>

#include "common/bytes.h"
#include "proto/content_coding.h"
#include "proto/http1/http1_parser.h"
#include "proto/http2/http2_session.h"

namespace tlstap {

using proto::Http1Parser;
using proto::HttpExchange;
using proto::HttpMessage;
using proto::ParseState;

struct ExchangeTracker::Connection {
  enum class Protocol { undecided, http1, http2, websocket, not_http };

  ConnectionIdentity identity;
  Protocol protocol = Protocol::undecided;
  uint64_t undetected_bytes = 0;
  uint64_t last_seen_ns = 0;  // ends a body delimited by the connection's end
  // HTTP/1: which direction carries the requests. HTTP/2: which carries the client's frames.
  Direction client_direction = Direction::egress;

  std::optional<Http1Parser> requests;
  std::optional<Http1Parser> responses;
  std::deque<HttpMessage> unanswered;  // requests in order, waiting for their responses
  // Too many requests went unanswered: responses are not awaited any more.
  bool responses_unseen = false;

  std::optional<proto::Http2Session> http2;

  // WebSocket: what the 101 response accepted, then one parser per direction.
  std::optional<proto::WebSocketExtensions> websocket_upgrade;
  std::string websocket_authority, websocket_path;  // of the upgrade request, if it was seen
  std::optional<proto::WebSocketParser> client_frames;
  std::optional<proto::WebSocketParser> server_frames;
  bool websocket_lost[2] = {false, false};  // [from_client]: counted once
};

namespace {

using Connection = ExchangeTracker::Connection;

// Requests waiting for their responses, per connection. Pipelining stays far
// below; past it the responses are taken as unseen (a peer that answers
// nothing, a read function tlstap could not probe) rather than kept for.
constexpr size_t kMaxUnansweredRequests = 1024;

Direction opposite(Direction d) {
  return d == Direction::egress ? Direction::ingress : Direction::egress;
}

// The direction the client writes, for HTTP/2 frames that are not the preface:
// from the role when known, else a server is the one that speaks first.
Direction http2_client_direction(const DataRecord& record) {
  Direction d = record.event.direction;
  if (record.role == Role::client) return Direction::egress;
  if (record.role == Role::server) return Direction::ingress;
  return record.event.stream_offset == 0 ? opposite(d) : Direction::egress;
}

void start_http1(Connection& c, Direction requests, size_t max_body) {
  c.protocol = Connection::Protocol::http1;
  c.client_direction = requests;
  c.requests.emplace(Http1Parser::Kind::request, max_body);
  c.responses.emplace(Http1Parser::Kind::response, max_body);
}

// Decides the protocol from the first bytes of a chunk; false when they say nothing yet.
bool detect(Connection& c, const DataRecord& record, const ExchangeTrackerLimits& limits) {
  std::string_view text = as_text(record.event.payload);
  Direction d = record.event.direction;
  if (proto::starts_with_http2_preface(text)) {
    c.protocol = Connection::Protocol::http2;
    c.client_direction = d;
  } else if (proto::looks_like_http1_request(text)) {
    start_http1(c, d, limits.max_body_bytes);
  } else if (proto::looks_like_http1_response(text)) {
    start_http1(c, opposite(d), limits.max_body_bytes);
    c.responses->expect_response_to("");  // its request was never seen: it cannot be HEAD's
  } else if (proto::looks_like_http2_frames(text)) {
    c.protocol = Connection::Protocol::http2;
    c.client_direction = http2_client_direction(record);
  } else {
    return false;
  }
  if (c.protocol == Connection::Protocol::http2) c.http2.emplace(limits.max_body_bytes);
  return true;
}

// A 101 response switching to WebSocket: the extensions it accepted.
std::optional<proto::WebSocketExtensions> websocket_upgrade(const HttpMessage& response) {
  const std::string* upgrade = find_header(response.headers, "Upgrade");
  if (response.status != 101 || !upgrade || !ascii_iequals(*upgrade, "websocket")) return std::nullopt;
  const std::string* extensions = find_header(response.headers, "Sec-WebSocket-Extensions");
  // Malformed extensions: frames are still read, and compressed ones make the stream invalid.
  return extensions ? proto::parse_websocket_extensions(*extensions).value_or(proto::WebSocketExtensions{})
                    : proto::WebSocketExtensions{};
}

HttpExchange http1_exchange(std::optional<HttpMessage> request, std::optional<HttpMessage> response) {
  HttpExchange exchange;
  exchange.version = request ? request->version : response->version;
  exchange.request = std::move(request);
  exchange.response = std::move(response);
  return exchange;
}

HttpExchange unanswered_exchange(HttpMessage request) {
  HttpExchange exchange = http1_exchange(std::move(request), std::nullopt);
  exchange.incomplete = true;
  return exchange;
}

// Responses come in the order of their requests; one without a request, or
// that started before the oldest waiting request, answers one never seen.
HttpExchange answer(Connection& c, HttpMessage response) {
  std::optional<HttpMessage> request;
  if (!c.unanswered.empty() && c.unanswered.front().first_byte_ns <= response.first_byte_ns) {
    request = std::move(c.unanswered.front());
    c.unanswered.pop_front();
  }
  return http1_exchange(std::move(request), std::move(response));
}

}  // namespace

ExchangeTracker::ExchangeTracker(ExchangeTrackerLimits limits, Emit emit, EmitWebSocket emit_websocket)
    : limits_(limits),
      emit_(std::move(emit)),
      emit_websocket_(std::move(emit_websocket)),
      connections_(limits.max_connections) {}

ExchangeTracker::~ExchangeTracker() = default;

ExchangeTracker::Connection& ExchangeTracker::connection_for(const DataRecord& record) {
  std::unique_ptr<Connection>& connection = connections_[Key{record.event.pid, record.event.conn_uid}];
  if (!connection) {
    connection = std::make_unique<Connection>();
    stats_.evicted_connections = connections_.evicted();  // making room for it may have evicted one
  }
  // The latest chunk knows best: addresses appear once the socket is seen.
  ConnectionIdentity& id = connection->identity;
  const DataEvent& e = record.event;
  id.pid = e.pid;
  id.conn_uid = e.conn_uid;
  id.library = e.library;
  if (id.comm != e.comm) id.comm = e.comm;
  if (!record.process.exe.empty() && id.process != record.process) id.process = record.process;
  if (e.local.family) id.local = e.local;
  if (e.remote.family) id.remote = e.remote;
  if (record.role != Role::unknown) id.role = record.role;
  return *connection;
}

void ExchangeTracker::observe(const DataRecord& record) {
  Connection& c = connection_for(record);
  const DataEvent& e = record.event;
  if (c.protocol == Connection::Protocol::not_http) return;
  if (c.protocol == Connection::Protocol::undecided && !detect(c, record, limits_)) {
    c.undetected_bytes += e.payload.size();
    if (c.undetected_bytes > limits_.detection_bytes) {
      c.protocol = Connection::Protocol::not_http;
      ++stats_.unknown_protocol_connections;
    }
    return;
  }
  uint64_t t = record.wall_time_ns;
  c.last_seen_ns = t;
  bool from_client = e.direction == c.client_direction;

  if (c.protocol == Connection::Protocol::websocket)
    return feed_websocket(c, from_client, e.payload, record.gap_before, t);

  if (c.protocol == Connection::Protocol::http2) {
    std::vector<proto::Http2Stream> ended;
    if (record.gap_before) c.http2->lost(from_client, record.gap_before, ended);
    // A chunk it cannot read is skipped: the session synchronises again on a later one.
    (void)c.http2->feed(from_client, e.payload, t, ended);
    for (auto& stream : ended) report(c, proto::exchange_from_stream(std::move(stream)));
    return;
  }

  if (record.gap_before) restart_http1(c, record.gap_before);
  Http1Parser& parser = from_client ? *c.requests : *c.responses;
  std::vector<HttpMessage> messages;
  ParseState state = parser.feed(e.payload, t, messages);
  if (from_client) {
    for (auto& request : messages) {
      if (c.unanswered.size() == kMaxUnansweredRequests) stop_awaiting_responses(c);
      if (c.responses_unseen) {
        report(c, unanswered_exchange(std::move(request)));
        continue;
      }
      c.responses->expect_response_to(request.method);
      c.unanswered.push_back(std::move(request));
    }
    // A response that waited for its request's method completes now.
    messages.clear();
    if (!c.unanswered.empty()) (void)c.responses->feed({}, t, messages);
  }
  for (auto& response : messages) {
    auto upgrade = websocket_upgrade(response);
    HttpExchange exchange = answer(c, std::move(response));
    if (upgrade) {
      c.websocket_upgrade = upgrade;
      if (exchange.request) {
        c.websocket_authority = exchange.request->authority;
        c.websocket_path = exchange.request->target;
      }
    }
    exchange.switched_protocols = c.responses->switched_protocols();
    report(c, std::move(exchange));
  }
  if (c.responses->switched_protocols() && c.websocket_upgrade) return switch_to_websocket(c, t);
  // Past another protocol switch or garbage, the rest of the connection is not HTTP/1.
  if (state == ParseState::invalid || c.responses->switched_protocols()) {
    finish(c);
    c.protocol = Connection::Protocol::not_http;
  }
}

// The 101 response switched to WebSocket: the bytes both parsers hold past
// the switch are the first frames of each direction.
void ExchangeTracker::switch_to_websocket(Connection& c, uint64_t time_ns) {
  std::string client_bytes = c.requests->take_tunneled_bytes();
  std::string server_bytes = c.responses->take_tunneled_bytes();
  uint64_t client_lost = c.requests->tunneled_bytes_lost(), server_lost = c.responses->tunneled_bytes_lost();
  finish(c);
  c.protocol = Connection::Protocol::websocket;
  c.client_frames.emplace(true, *c.websocket_upgrade, limits_.max_body_bytes);
  c.server_frames.emplace(false, *c.websocket_upgrade, limits_.max_body_bytes);
  c.requests.reset();
  c.responses.reset();
  feed_websocket(c, true, as_bytes(client_bytes), 0, time_ns);
  feed_websocket(c, false, as_bytes(server_bytes), 0, time_ns);
  // Frames the HTTP/1 parsers could not keep: past them the stream cannot be followed.
  if (client_lost) feed_websocket(c, true, {}, client_lost, time_ns);
  if (server_lost) feed_websocket(c, false, {}, server_lost, time_ns);
}

void ExchangeTracker::feed_websocket(Connection& c, bool from_client, std::span<const std::byte> bytes,
                                     uint64_t gap, uint64_t time_ns) {
  proto::WebSocketParser& parser = from_client ? *c.client_frames : *c.server_frames;
  parser.lost(gap);
  std::vector<proto::WebSocketMessage> messages;
  if (parser.feed(bytes, time_ns, messages) == ParseState::invalid && !c.websocket_lost[from_client]) {
    c.websocket_lost[from_client] = true;
    ++stats_.websocket_streams_lost;
  }
  for (const auto& message : messages) {
    ++stats_.websocket_messages;
    if (emit_websocket_)
      emit_websocket_(
          WebSocketRecord{message, c.identity, from_client, c.websocket_authority, c.websocket_path});
  }
}

// Past a gap, which response answers which request is no longer known:
// requests still waiting are reported without their response, both parsers
// start over on the next message start, and a response to a request the gap
// hid may still come (paired with nothing, rather than with a later one).
void ExchangeTracker::restart_http1(Connection& c, uint64_t gap) {
  report_unanswered(c);
  for (auto* parser : {&c.requests, &c.responses}) {
    parser->emplace(parser == &c.requests ? Http1Parser::Kind::request : Http1Parser::Kind::response,
                    limits_.max_body_bytes);
    (*parser)->lost(gap);  // both resynchronise on the next message start
  }
  c.responses->expect_response_to("");
}

void ExchangeTracker::report_unanswered(Connection& c) {
  while (!c.unanswered.empty()) {
    report(c, unanswered_exchange(std::move(c.unanswered.front())));
    c.unanswered.pop_front();
  }
}

// From here on each request is reported as it completes, without a response;
// responses that still come are reported alone, as soon as they complete.
void ExchangeTracker::stop_awaiting_responses(Connection& c) {
  report_unanswered(c);
  c.responses_unseen = true;
  ++stats_.responses_unseen_connections;
  std::vector<HttpMessage> held;
  c.responses->stop_waiting_for_methods(held);
  for (auto& response : held) report(c, answer(c, std::move(response)));
}

void ExchangeTracker::report(Connection& c, proto::HttpExchange exchange) {
  ++stats_.exchanges;
  if (limits_.decode_bodies) proto::decode_exchange(exchange, limits_.max_body_bytes);
  emit_(ExchangeRecord{exchange, c.identity});
}

void ExchangeTracker::finish(Connection& c) {
  if (c.protocol == Connection::Protocol::http2) {
    std::vector<proto::Http2Stream> ended;
    c.http2->finish(c.last_seen_ns, ended);
    for (auto& stream : ended) report(c, proto::exchange_from_stream(std::move(stream)));
  } else if (c.protocol == Connection::Protocol::http1) {
    std::vector<HttpMessage> responses;
    c.responses->finish(c.last_seen_ns, responses);
    for (auto& response : responses) report(c, answer(c, std::move(response)));
    report_unanswered(c);
  }
}

void ExchangeTracker::end_connection(const ConnectionKey& key) {
  if (std::unique_ptr<Connection>* connection = connections_.find(key)) {
    finish(**connection);
    connections_.erase(key);
  }
}

void ExchangeTracker::forget_process(uint32_t pid) {
  connections_.erase_if([&](const Key& key, std::unique_ptr<Connection>& connection) {
    if (key.pid != pid) return false;
    finish(*connection);
    return true;
  });
}

void ExchangeTracker::finish_all() {
  for (auto& [key, connection] : connections_) finish(*connection);
  connections_.clear();
}

}  // namespace tlstap
