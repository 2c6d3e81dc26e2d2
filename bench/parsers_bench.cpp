// Parser throughput on generated keep-alive traffic: 1,000 request/response
// pairs with 1 KiB bodies per pass, fed in 16 KiB chunks (the largest a data
// event carries). HTTP/2 header blocks come from libnghttp2's encoder. Also
// the JSON data lines' base64 against OpenSSL's encoder, on 16 KiB chunks, and
// the JSON http lines' escaping of a 16 KiB text body against nlohmann's, and
// WebSocket: 1,000 masked 1 KiB text messages from a client, plain and
// compressed with permessage-deflate (zlib, context kept). And what showing a
// gzip body decoded adds to its exchange's http line: a 16 KiB text response
// of which --max-body (4096) bytes are kept, as sent (argument 0) or gzip'd
// (argument 1, its kept bytes decoded: the line then shows 4096 bytes of text).
//
//   build/bench/parsers_bench            (bytes/s each, google-benchmark)
#include <benchmark/benchmark.h>
#include <nghttp2/nghttp2.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proto/content_coding.h"
#include "proto/http1/http1_parser.h"
#include "proto/http2/http2_session.h"
#include "proto/websocket/websocket_parser.h"
#include "sink/base64.h"
#include "sink/json_sink.h"

namespace {

using tlstap::proto::HttpMessage;

constexpr int kExchanges = 1000;
constexpr size_t kBody = 1024;
constexpr size_t kChunk = 16384;

std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Calls `feed` with each kChunk-sized piece of `stream`.
template <class Feed>
void in_chunks(const std::string& stream, Feed&& feed) {
  for (size_t at = 0; at < stream.size(); at += kChunk)
    feed(as_bytes(stream).subspan(at, std::min(kChunk, stream.size() - at)));
}

void http1(benchmark::State& state) {
  std::string requests, responses;
  for (int i = 0; i < kExchanges; ++i) {
    requests += "POST /api/items/" + std::to_string(i) +
                " HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nContent-Type: application/json\r\n"
                "Content-Length: 1024\r\n\r\n" +
                std::string(kBody, 'q');
    responses +=
        "HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n" +
        std::string(kBody, 'r');
  }
  for (auto _ : state) {
    tlstap::proto::Http1Parser request_parser(tlstap::proto::Http1Parser::Kind::request, 4096);
    tlstap::proto::Http1Parser response_parser(tlstap::proto::Http1Parser::Kind::response, 4096);
    std::vector<HttpMessage> out;
    in_chunks(requests, [&](auto chunk) { request_parser.feed(chunk, 1, out); });
    for (int i = 0; i < kExchanges; ++i) response_parser.expect_response_to("POST");
    in_chunks(responses, [&](auto chunk) { response_parser.feed(chunk, 2, out); });
    if (out.size() != 2 * kExchanges) state.SkipWithError("not every message was parsed");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(requests.size() + responses.size()));
}
BENCHMARK(http1);

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f = {static_cast<char>(payload.size() >> 16),
                   static_cast<char>(payload.size() >> 8),
                   static_cast<char>(payload.size()),
                   static_cast<char>(type),
                   static_cast<char>(flags),
                   static_cast<char>(stream >> 24),
                   static_cast<char>(stream >> 16),
                   static_cast<char>(stream >> 8),
                   static_cast<char>(stream)};
  return f + payload;
}

struct Deflater {
  Deflater() { nghttp2_hd_deflate_new(&hd, 4096); }
  ~Deflater() { nghttp2_hd_deflate_del(hd); }
  std::string block(std::vector<std::pair<std::string, std::string>> fields) {
    std::vector<nghttp2_nv> nv;
    for (auto& [name, value] : fields)
      nv.push_back({reinterpret_cast<uint8_t*>(name.data()), reinterpret_cast<uint8_t*>(value.data()),
                    name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
    std::string out(nghttp2_hd_deflate_bound(hd, nv.data(), nv.size()), '\0');
    auto n =
        nghttp2_hd_deflate_hd(hd, reinterpret_cast<uint8_t*>(out.data()), out.size(), nv.data(), nv.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }
  nghttp2_hd_deflater* hd = nullptr;
};

void http2(benchmark::State& state) {
  constexpr uint8_t kData = 0, kHeaders = 1, kSettings = 4;
  constexpr uint8_t kEndStream = 1, kEndHeaders = 4;
  Deflater client_hpack, server_hpack;
  std::string client = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(kSettings, 0, 0, "");
  std::string server = frame(kSettings, 0, 0, "");
  for (int i = 0; i < kExchanges; ++i) {
    uint32_t id = 2 * i + 1;
    client += frame(kHeaders, kEndHeaders, id,
                    client_hpack.block({{":method", "POST"},
                                        {":scheme", "https"},
                                        {":authority", "example.com"},
                                        {":path", "/api/items/" + std::to_string(i)},
                                        {"content-type", "application/json"},
                                        {"user-agent", "bench"}}));
    client += frame(kData, kEndStream, id, std::string(kBody, 'q'));
    server += frame(
        kHeaders, kEndHeaders, id,
        server_hpack.block({{":status", "200"}, {"content-type", "application/json"}, {"server", "bench"}}));
    server += frame(kData, kEndStream, id, std::string(kBody, 'r'));
  }
  for (auto _ : state) {
    tlstap::proto::Http2Session session(4096);
    std::vector<tlstap::proto::Http2Stream> out;
    in_chunks(client, [&](auto chunk) { session.feed(true, chunk, 1, out); });
    in_chunks(server, [&](auto chunk) { session.feed(false, chunk, 2, out); });
    if (out.size() != kExchanges) state.SkipWithError("not every stream was parsed");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(client.size() + server.size()));
}
BENCHMARK(http2);

std::vector<std::byte> random_chunk() {
  std::vector<std::byte> chunk(kChunk);
  uint32_t x = 1;
  for (auto& b : chunk) b = static_cast<std::byte>((x = x * 1103515245 + 12345) >> 16);
  return chunk;
}

template <void (*Append)(std::string&, std::span<const std::byte>)>
void base64_tlstap(benchmark::State& state) {
  auto chunk = random_chunk();
  std::string out;
  for (auto _ : state) {
    out.clear();
    Append(out, chunk);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(chunk.size()));
}
// What the JSON sink calls (AVX2 where the CPU has it), and the portable encoder.
BENCHMARK(base64_tlstap<tlstap::append_base64>)->Name("base64_tlstap");
BENCHMARK(base64_tlstap<tlstap::append_base64_portable>)->Name("base64_tlstap_portable");

void base64_openssl(benchmark::State& state) {
  auto chunk = random_chunk();
  std::string out(4 * (kChunk + 2) / 3 + 1, '\0');
  for (auto _ : state) {
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                    reinterpret_cast<const unsigned char*>(chunk.data()), static_cast<int>(chunk.size()));
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(chunk.size()));
}
BENCHMARK(base64_openssl);

// Text bodies: a JSON API's response (a quote every few words, a newline per
// line, as a pretty-printed document has them; argument 0), or HTML prose
// (long plain runs, a newline per line; argument 1).
std::string text_body(int64_t kind) {
  std::string body;
  for (int i = 0; body.size() < kChunk; ++i)
    body += kind == 0 ? "  {\"id\": " + std::to_string(i) + ", \"name\": \"item number " + std::to_string(i) +
                            "\", \"tags\": [\"alpha\", \"beta\"], \"price\": 12.50},\n"
                      : "<p class=item>Item number " + std::to_string(i) +
                            " is in stock and ships within two working days of the order.</p>\n";
  body.resize(kChunk);
  return body;
}

// The whole http line the JSON sink writes for an exchange with this body.
void json_exchange_tlstap(benchmark::State& state) {
  tlstap::proto::HttpExchange exchange;
  exchange.version = "1.1";
  exchange.request.emplace();
  exchange.request->method = "POST";
  exchange.request->target = "/api/items";
  exchange.request->body = text_body(state.range(0));
  exchange.request->body_length = exchange.request->body.size();
  tlstap::ConnectionIdentity connection;
  for (auto _ : state) benchmark::DoNotOptimize(tlstap::format_json_exchange({exchange, connection}, false));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kChunk));
}
BENCHMARK(json_exchange_tlstap)->Arg(0)->Arg(1);

// The same body as nlohmann's serializer escapes it: the baseline.
void json_escape_nlohmann(benchmark::State& state) {
  nlohmann::json body = text_body(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(body.dump());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kChunk));
}
BENCHMARK(json_escape_nlohmann)->Arg(0)->Arg(1);

std::string gzip(std::string_view text) {
  z_stream deflater{};
  deflateInit2(&deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&deflater, text.size()), '\0');
  deflater.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  deflater.avail_in = text.size();
  deflater.next_out = reinterpret_cast<Bytef*>(out.data());
  deflater.avail_out = out.size();
  deflate(&deflater, Z_FINISH);
  out.resize(deflater.total_out);
  deflateEnd(&deflater);
  return out;
}

// A response as the tracker reports it (decoded where it was encoded), then its http line.
void http_line_decoded(benchmark::State& state) {
  constexpr size_t kMaxBody = 4096;
  const bool encoded = state.range(0);
  const std::string text = text_body(1);
  tlstap::proto::HttpExchange exchange;
  exchange.version = "1.1";
  exchange.response.emplace();
  exchange.response->status = 200;
  std::string sent = encoded ? gzip(text) : text;
  if (encoded) exchange.response->headers = {{"content-encoding", "gzip"}};
  exchange.response->body_length = sent.size();
  exchange.response->body = sent.substr(0, kMaxBody);
  tlstap::ConnectionIdentity connection;
  for (auto _ : state) {
    tlstap::proto::HttpExchange reported = exchange;
    tlstap::proto::decode_body(*reported.response, kMaxBody);
    if (reported.response->body != text.substr(0, kMaxBody)) state.SkipWithError("not decoded");
    benchmark::DoNotOptimize(tlstap::format_json_exchange({reported, connection}, false));
  }
  state.counters["exchanges/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(http_line_decoded)->Arg(0)->Arg(1)->ArgName("gzip");

// A client's stream of masked text frames, each message `compress`ed or not.
std::string websocket_stream(bool compress) {
  z_stream deflater{};
  deflateInit2(&deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string stream;
  for (int i = 0; i < kExchanges; ++i) {
    std::string text = "{\"id\":" + std::to_string(i) + ",\"items\":[";
    while (text.size() < kBody - 16) text += "\"item-" + std::to_string(text.size() * 7919 % 100000) + "\",";
    text.resize(kBody - 2);
    text += "]}";
    std::string payload = text;
    if (compress) {
      payload.assign(deflateBound(&deflater, text.size()) + 16, '\0');
      deflater.next_in = reinterpret_cast<Bytef*>(text.data());
      deflater.avail_in = text.size();
      deflater.next_out = reinterpret_cast<Bytef*>(payload.data());
      deflater.avail_out = payload.size();
      deflate(&deflater, Z_SYNC_FLUSH);
      payload.resize(payload.size() - deflater.avail_out - 4);  // without 00 00 ff ff
    }
    stream += static_cast<char>(compress ? 0xc1 : 0x81);
    stream += static_cast<char>(0x80 | 126);
    stream += static_cast<char>(payload.size() >> 8);
    stream += static_cast<char>(payload.size() & 0xff);
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    stream.append(mask, 4);
    for (size_t j = 0; j < payload.size(); ++j) stream += static_cast<char>(payload[j] ^ mask[j % 4]);
  }
  deflateEnd(&deflater);
  return stream;
}

void websocket(benchmark::State& state) {
  bool compressed = state.range(0);
  std::string stream = websocket_stream(compressed);
  for (auto _ : state) {
    tlstap::proto::WebSocketParser parser(true, {.permessage_deflate = compressed}, 4096);
    std::vector<tlstap::proto::WebSocketMessage> out;
    in_chunks(stream, [&](auto chunk) { parser.feed(chunk, 1, out); });
    if (out.size() != kExchanges || out.back().length != kBody)
      state.SkipWithError("not every message was read");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(stream.size()));
  state.counters["messages/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kExchanges, benchmark::Counter::kIsRate);
}
BENCHMARK(websocket)->Arg(0)->Arg(1)->ArgName("compressed");

}  // namespace

BENCHMARK_MAIN();
