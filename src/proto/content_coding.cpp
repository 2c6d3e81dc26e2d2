#include "proto/content_coding.h"

#include <brotli/decode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "common/ascii.h"

namespace tlstap::proto {
namespace {

// What one coding left between two of a chain: a later one may expand it
// again, so more is kept than will be shown.
constexpr size_t kIntermediateMax = 1 << 20;
// Real senders apply one coding, rarely two; a long list costs a decoder each.
constexpr size_t kMaxCodings = 4;
// RFC 9659: HTTP's zstd decoders need not accept windows above 8 MiB; a
// larger one would have tlstap allocate what the peer asks for.
constexpr int kZstdWindowLogMax = 23;
// Decoded bytes of one side of a gRPC call, all its messages together (at
// least one message's --max-body).
constexpr size_t kGrpcDecodeBudget = 16 << 20;

std::vector<std::string> codings_of(std::string_view content_encoding) {
  std::vector<std::string> codings;
  while (!content_encoding.empty()) {
    size_t comma = content_encoding.find(',');
    std::string_view coding = trim_ows(content_encoding.substr(0, comma));
    if (!coding.empty() && !ascii_iequals(coding, "identity")) codings.push_back(ascii_lower(coding));
    content_encoding =
        comma == std::string_view::npos ? std::string_view{} : content_encoding.substr(comma + 1);
  }
  return codings;
}

// A zlib header (RFC 1950): deflate as HTTP defines it. Some servers send the
// raw deflate stream instead; both are read.
bool has_zlib_header(std::string_view in) {
  if (in.size() < 2) return false;
  auto cmf = static_cast<unsigned char>(in[0]);
  auto flg = static_cast<unsigned char>(in[1]);
  return (cmf & 0x0f) == Z_DEFLATED && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
}

bool starts_with_bytes(std::string_view in, size_t offset, std::string_view magic) {
  return in.substr(std::min(offset, in.size())).starts_with(magic);
}

// Where a decoder writes: grown as it fills, up to max_bytes (a small body
// does not cost --max-body bytes).
class Output {
 public:
  explicit Output(size_t max_bytes) : max_(max_bytes) {
    bytes_.resize(std::min<size_t>(max_bytes, 16 << 10));
  }
  char* free_space() { return bytes_.data() + used_; }
  size_t free_size() const { return bytes_.size() - used_; }
  void filled(size_t n) { used_ += n; }
  // More room, unless max_bytes are there: then the decoder stops.
  bool grow() {
    if (bytes_.size() >= max_) return false;
    bytes_.resize(std::min(max_, bytes_.size() * 2));
    return true;
  }
  std::string take() {
    bytes_.resize(used_);
    return std::move(bytes_);
  }

 private:
  std::string bytes_;
  size_t used_ = 0;
  size_t max_;
};

Result<DecodedContent> inflate_body(std::string_view in, size_t max_bytes, int window_bits,
                                    std::string_view name) {
  z_stream stream{};
  if (inflateInit2(&stream, window_bits) != Z_OK) return Error{fmt::format("{}: zlib could not start", name)};
  std::unique_ptr<z_stream, int (*)(z_stream*)> end(&stream, inflateEnd);
  Output out(max_bytes);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  stream.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (out.free_size() == 0 && !out.grow()) break;
    stream.next_out = reinterpret_cast<Bytef*>(out.free_space());
    stream.avail_out = static_cast<uInt>(out.free_size());
    rc = inflate(&stream, Z_NO_FLUSH);
    out.filled(out.free_size() - stream.avail_out);
    // gzip bodies may hold several members, one after the other (RFC 1952);
    // bytes after the last (padding) are ignored, as curl and gzip do.
    bool next_member = starts_with_bytes(in, in.size() - stream.avail_in, "\x1f\x8b");
    if (rc == Z_STREAM_END && window_bits > MAX_WBITS && next_member) rc = inflateReset(&stream);
  }
  if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)  // Z_BUF_ERROR: out of input
    return Error{fmt::format("{}: {}", name, stream.msg ? stream.msg : "not that coding")};
  return DecodedContent{out.take(), rc == Z_STREAM_END};
}

Result<DecodedContent> unbrotli(std::string_view in, size_t max_bytes) {
  std::unique_ptr<BrotliDecoderState, void (*)(BrotliDecoderState*)> state(
      BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), BrotliDecoderDestroyInstance);
  if (!state) return Error{"br: the decoder could not start"};
  Output out(max_bytes);
  size_t avail_in = in.size();
  auto next_in = reinterpret_cast<const uint8_t*>(in.data());
  BrotliDecoderResult result = BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT;
  while (result == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT && (out.free_size() > 0 || out.grow())) {
    size_t avail_out = out.free_size();
    auto next_out = reinterpret_cast<uint8_t*>(out.free_space());
    result = BrotliDecoderDecompressStream(state.get(), &avail_in, &next_in, &avail_out, &next_out, nullptr);
    out.filled(out.free_size() - avail_out);
  }
  if (result == BROTLI_DECODER_RESULT_ERROR)
    return Error{fmt::format("br: {}", BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state.get())))};
  // Bytes after the stream's end are ignored, as with gzip.
  return DecodedContent{out.take(), result == BROTLI_DECODER_RESULT_SUCCESS};
}

Result<DecodedContent> unzstd(std::string_view in, size_t max_bytes) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!context || ZSTD_isError(ZSTD_DCtx_setParameter(context.get(), ZSTD_d_windowLogMax, kZstdWindowLogMax)))
    return Error{"zstd: the decoder could not start"};
  Output out(max_bytes);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  size_t left = 1;           // 0 once a frame is decoded and flushed
  bool output_full = false;  // the decoder may hold more: call again, input or not
  while (true) {
    if (left == 0) {
      // A body may hold several frames; bytes after the last (padding) are ignored.
      if (!starts_with_bytes(in, input.pos, "\x28\xb5\x2f\xfd")) break;
    } else if (input.pos == input.size && !output_full) {
      break;  // the rest of the frame was not kept
    }
    if (out.free_size() == 0 && !out.grow()) break;
    ZSTD_outBuffer output{out.free_space(), out.free_size(), 0};
    size_t in_before = input.pos;
    left = ZSTD_decompressStream(context.get(), &output, &input);
    if (ZSTD_isError(left)) return Error{fmt::format("zstd: {}", ZSTD_getErrorName(left))};
    out.filled(output.pos);
    output_full = output.pos == output.size;
    if (input.pos == in_before && output.pos == 0) break;  // no progress possible
  }
  return DecodedContent{out.take(), left == 0};
}

Result<DecodedContent> undo(std::string_view coding, std::string_view in, size_t max_bytes) {
  if (coding == "gzip" || coding == "x-gzip") return inflate_body(in, max_bytes, MAX_WBITS + 16, "gzip");
  if (coding == "deflate")
    return inflate_body(in, max_bytes, has_zlib_header(in) ? MAX_WBITS : -MAX_WBITS, "deflate");
  if (coding == "br") return unbrotli(in, max_bytes);
  if (coding == "zstd") return unzstd(in, max_bytes);
  return Error{fmt::format("{}: a content coding tlstap does not decode", coding)};
}

// Every Content-Encoding line, in order: two lines mean what one listing both does (RFC 9110 5.3).
std::string content_encoding_of(const Headers& headers) {
  std::string joined;
  for (const Header& header : headers) {
    if (!ascii_iequals(header.name, "content-encoding")) continue;
    if (!joined.empty()) joined += ", ";
    joined += header.value;
  }
  return joined;
}

// Up to kMaxCodings codings, undone last to first: each one's output is the
// input of the one applied before it.
Result<DecodedContent> undo_all(const std::vector<std::string>& codings, std::string_view sent,
                                bool sent_whole, size_t max_bytes) {
  if (codings.size() > kMaxCodings)
    return Error{
        fmt::format("{} content codings: more than tlstap decodes ({})", codings.size(), kMaxCodings)};
  if (codings.empty()) return DecodedContent{std::string(sent), sent_whole};
  DecodedContent content;
  std::string_view input = sent;  // what the coding undone next reads: no copy of `sent`
  bool input_whole = sent_whole;
  for (auto coding = codings.rbegin(); coding != codings.rend(); ++coding) {
    bool last = coding + 1 == codings.rend();
    auto undone = undo(*coding, input, last ? max_bytes : std::max(kIntermediateMax, max_bytes));
    if (!undone) return undone.error();
    // Whole only when its input was whole too: a stream cut short may still end early by chance.
    undone->whole = undone->whole && input_whole;
    content = std::move(*undone);
    if (content.bytes.empty() && !content.whole) break;  // nothing for the codings before it
    input = content.bytes;
    input_whole = content.whole;
  }
  return content;
}

// `bytes` (the first bytes of `sent_length` sent with `codings`) replaced by
// their decoding, or left as they are with the reason. `what` names them.
ContentDecoding decode_in_place(std::string& bytes, uint64_t sent_length,
                                const std::vector<std::string>& codings, size_t max_bytes,
                                std::string_view what) {
  std::string listed = fmt::format("{}", fmt::join(codings, ", "));
  bool sent_whole = bytes.size() == sent_length;
  auto decoded = undo_all(codings, bytes, sent_whole, max_bytes);
  if (!decoded) return ContentDecoding{.error = decoded.error().message};
  // zstd and br decode a block at a time: a short prefix of a big block gives nothing.
  if (decoded->bytes.empty() && !decoded->whole)
    return ContentDecoding{
        .error = sent_whole
                     ? fmt::format("{}: the {} decodes to nothing", listed, what)
                     : fmt::format("{}: the first {} bytes kept decode to nothing yet (raise --max-body)",
                                   listed, bytes.size())};
  bytes = std::move(decoded->bytes);
  return ContentDecoding{.codings = std::move(listed), .whole = decoded->whole};
}

}  // namespace

void decode_body(HttpMessage& message, size_t max_bytes) {
  if (message.body.empty()) return;
  std::vector<std::string> codings = codings_of(content_encoding_of(message.headers));
  if (codings.empty()) return;
  if (message.status == 206) {
    message.decoding.error =
        fmt::format("{}: a 206's body is a slice of the coded content", fmt::join(codings, ", "));
    return;
  }
  message.decoding = decode_in_place(message.body, message.body_length, codings, max_bytes, "body");
}

void decode_grpc_messages(std::vector<GrpcMessage>& messages, const Headers& headers, size_t max_bytes) {
  if (std::none_of(messages.begin(), messages.end(), [](const GrpcMessage& m) { return m.compressed; }))
    return;
  const std::string* encoding = find_header(headers, "grpc-encoding");
  std::vector<std::string> codings = encoding ? codings_of(*encoding) : std::vector<std::string>{};
  // gRPC names one coding per side. A list would make each of up to 1000
  // messages a chain of decoders: refused, as is a flag with no coding named.
  std::string refused;
  if (!encoding)
    refused = "compressed, but no grpc-encoding header names the coding";
  else if (codings.empty())
    refused = "compressed, but grpc-encoding is identity";
  else if (codings.size() > 1)
    refused = fmt::format("grpc-encoding lists {} codings; gRPC uses one", codings.size());
  // Each message may decode to max_bytes: a side's total is bounded too, or
  // small messages that inflate well would cost up to 1000 times max_bytes.
  size_t budget = std::max(kGrpcDecodeBudget, max_bytes);
  for (GrpcMessage& message : messages) {
    if (!message.compressed) continue;
    if (!refused.empty()) {
      message.decoding.error = refused;
    } else if (message.length == 0) {
      message.decoding = ContentDecoding{.codings = codings.front(), .whole = true};  // nothing to undo
    } else if (budget == 0) {
      message.decoding.error =
          fmt::format("this side's messages already decoded to {} bytes: no more are", kGrpcDecodeBudget);
    } else {
      message.decoding =
          decode_in_place(message.data, message.length, codings, std::min(max_bytes, budget), "message");
      if (message.decoding.decoded()) budget -= std::min(budget, message.data.size());
    }
  }
}

void decode_exchange(HttpExchange& exchange, size_t max_bytes) {
  if (exchange.request) decode_body(*exchange.request, max_bytes);
  if (exchange.response) decode_body(*exchange.response, max_bytes);
  if (!exchange.grpc) return;
  if (exchange.request)
    decode_grpc_messages(exchange.grpc->request_messages, exchange.request->headers, max_bytes);
  if (exchange.response)
    decode_grpc_messages(exchange.grpc->response_messages, exchange.response->headers, max_bytes);
}

Result<DecodedContent> decode_content(std::string_view content_encoding, std::string_view sent,
                                      bool sent_whole, size_t max_bytes) {
  return undo_all(codings_of(content_encoding), sent, sent_whole, max_bytes);
}

}  // namespace tlstap::proto
