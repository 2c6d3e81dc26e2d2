// A real HTTP/2 client and server (libnghttp2 sessions) talking in memory, so
// that the HTTP/2 and gRPC parsers are tested on bytes a real implementation
// writes: HPACK with its dynamic table, CONTINUATION, padding, flow control.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tlstap::test {

using NameValues = std::vector<std::pair<std::string, std::string>>;

struct H2Chunk {  // what one side wrote in one go (one frame, usually)
  bool from_client = false;
  std::string bytes;
  std::span<const std::byte> span() const { return std::as_bytes(std::span(bytes.data(), bytes.size())); }
};

struct H2PeerOptions {
  size_t client_padding = 0;  // padding added to the client's DATA and HEADERS frames
  size_t server_padding = 0;
  size_t max_data_frame = 16384;             // DATA payload per frame at most
  uint32_t client_header_table_size = 4096;  // SETTINGS_HEADER_TABLE_SIZE the client announces
  size_t server_deflate_table_size = 4096;   // the most the server's encoder uses
};

class Nghttp2Peers {
 public:
  explicit Nghttp2Peers(H2PeerOptions options = {});
  ~Nghttp2Peers();
  Nghttp2Peers(const Nghttp2Peers&) = delete;
  Nghttp2Peers& operator=(const Nghttp2Peers&) = delete;

  // The client opens a stream: headers (pseudo-headers first), then the body
  // and trailers if given. Returns the stream id.
  int32_t request(const NameValues& headers, std::string body = {}, NameValues trailers = {});
  // The server answers a stream whose request it has received (pump() first).
  void respond(int32_t stream_id, const NameValues& headers, std::string body = {}, NameValues trailers = {});
  // The server promises a pushed stream on `associated`; returns its id.
  int32_t push(int32_t associated, const NameValues& request_headers);
  void reset(int32_t stream_id, uint32_t error_code, bool from_client);
  // Both sides send what they have until neither has anything left.
  void pump();

  // Everything written so far, in order; take_chunks() empties the record.
  const std::vector<H2Chunk>& chunks() const { return chunks_; }
  std::vector<H2Chunk> take_chunks() { return std::exchange(chunks_, {}); }

  struct Body {
    std::string data;
    size_t offset = 0;
    NameValues trailers;
    Nghttp2Peers* peers = nullptr;
  };
  const H2PeerOptions& options() const { return options_; }

 private:
  // Points `provider` at a new body; nullptr when there is nothing after the headers.
  nghttp2_data_provider* body_provider(nghttp2_data_provider& provider, std::string data,
                                       NameValues trailers);

  H2PeerOptions options_;
  nghttp2_session* client_ = nullptr;
  nghttp2_session* server_ = nullptr;
  std::list<Body> bodies_;  // stable addresses for the data providers
  std::vector<H2Chunk> chunks_;
};

// Concatenation of chunks (e.g. a whole direction).
std::string join(const std::vector<H2Chunk>& chunks, bool from_client);

}  // namespace tlstap::test
