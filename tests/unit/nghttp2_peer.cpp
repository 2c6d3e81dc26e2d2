#include "nghttp2_peer.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace tlstap::test {

namespace {

std::vector<nghttp2_nv> to_nv(const NameValues& headers) {
  std::vector<nghttp2_nv> nva;
  for (const auto& [name, value] : headers) {
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                   NGHTTP2_NV_FLAG_NONE});
  }
  return nva;
}

void check(int rv, const char* what) {
  if (rv < 0) throw std::runtime_error(std::string(what) + ": " + nghttp2_strerror(rv));
}

ssize_t read_body(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length, uint32_t* flags,
                  nghttp2_data_source* source, void*) {
  auto* body = static_cast<Nghttp2Peers::Body*>(source->ptr);
  size_t n = std::min({length, body->data.size() - body->offset, body->peers->options().max_data_frame});
  std::memcpy(buf, body->data.data() + body->offset, n);
  body->offset += n;
  if (body->offset == body->data.size()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!body->trailers.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      auto nva = to_nv(body->trailers);
      check(nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size()), "trailer");
    }
  }
  return static_cast<ssize_t>(n);
}

ssize_t select_padding(nghttp2_session* session, const nghttp2_frame* frame, size_t max_payload, void* user) {
  auto* peers = static_cast<Nghttp2Peers*>(user);
  bool is_client = nghttp2_session_check_server_session(session) == 0;
  size_t padding = is_client ? peers->options().client_padding : peers->options().server_padding;
  return static_cast<ssize_t>(std::min(frame->hd.length + padding, max_payload));
}

nghttp2_session* make_session(bool server, Nghttp2Peers* peers, const H2PeerOptions& options) {
  nghttp2_session_callbacks* callbacks = nullptr;
  check(nghttp2_session_callbacks_new(&callbacks), "callbacks");
  nghttp2_session_callbacks_set_select_padding_callback(callbacks, select_padding);
  nghttp2_option* option = nullptr;
  check(nghttp2_option_new(&option), "option");
  if (server) nghttp2_option_set_max_deflate_dynamic_table_size(option, options.server_deflate_table_size);
  nghttp2_session* session = nullptr;
  int rv = server ? nghttp2_session_server_new2(&session, callbacks, peers, option)
                  : nghttp2_session_client_new2(&session, callbacks, peers, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  check(rv, "session");
  std::vector<nghttp2_settings_entry> settings;
  if (!server) settings.push_back({NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, options.client_header_table_size});
  check(nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings.data(), settings.size()), "settings");
  return session;
}

}  // namespace

Nghttp2Peers::Nghttp2Peers(H2PeerOptions options)
    : options_(options),
      client_(make_session(false, this, options)),
      server_(make_session(true, this, options)) {}

Nghttp2Peers::~Nghttp2Peers() {
  nghttp2_session_del(client_);
  nghttp2_session_del(server_);
}

nghttp2_data_provider* Nghttp2Peers::body_provider(nghttp2_data_provider& provider, std::string data,
                                                   NameValues trailers) {
  // No provider: nghttp2 ends the stream with the headers.
  if (data.empty() && trailers.empty()) return nullptr;
  provider.source.ptr = &bodies_.emplace_back(Body{std::move(data), 0, std::move(trailers), this});
  provider.read_callback = read_body;
  return &provider;
}

int32_t Nghttp2Peers::request(const NameValues& headers, std::string body, NameValues trailers) {
  auto nva = to_nv(headers);
  nghttp2_data_provider provider{};
  int32_t id = nghttp2_submit_request(client_, nullptr, nva.data(), nva.size(),
                                      body_provider(provider, std::move(body), std::move(trailers)), nullptr);
  check(id, "request");
  return id;
}

void Nghttp2Peers::respond(int32_t stream_id, const NameValues& headers, std::string body,
                           NameValues trailers) {
  auto nva = to_nv(headers);
  nghttp2_data_provider provider{};
  check(nghttp2_submit_response(server_, stream_id, nva.data(), nva.size(),
                                body_provider(provider, std::move(body), std::move(trailers))),
        "response");
}

int32_t Nghttp2Peers::push(int32_t associated, const NameValues& request_headers) {
  auto nva = to_nv(request_headers);
  int32_t id =
      nghttp2_submit_push_promise(server_, NGHTTP2_FLAG_NONE, associated, nva.data(), nva.size(), nullptr);
  check(id, "push");
  return id;
}

void Nghttp2Peers::reset(int32_t stream_id, uint32_t error_code, bool from_client) {
  check(nghttp2_submit_rst_stream(from_client ? client_ : server_, NGHTTP2_FLAG_NONE, stream_id, error_code),
        "rst");
}

void Nghttp2Peers::pump() {
  for (bool progress = true; progress;) {
    progress = false;
    for (bool from_client : {true, false}) {
      nghttp2_session* sender = from_client ? client_ : server_;
      nghttp2_session* receiver = from_client ? server_ : client_;
      for (;;) {
        const uint8_t* data = nullptr;
        ssize_t n = nghttp2_session_mem_send(sender, &data);
        check(static_cast<int>(n), "send");
        if (n == 0) break;
        chunks_.push_back(
            {from_client, std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(n))});
        check(static_cast<int>(nghttp2_session_mem_recv(receiver, data, static_cast<size_t>(n))), "recv");
        progress = true;
      }
    }
  }
}

std::string join(const std::vector<H2Chunk>& chunks, bool from_client) {
  std::string out;
  for (const auto& chunk : chunks) {
    if (chunk.from_client == from_client) out += chunk.bytes;
  }
  return out;
}

}  // namespace tlstap::test
