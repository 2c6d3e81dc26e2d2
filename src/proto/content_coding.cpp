#include "proto/content_coding.h"

#include <brotli/decode.h>
#include <fmt/format.h>
#include <zlib.h>
#include <zstd.h>

#include <memory>
#include <vector>

#include "common/ascii.h"

namespace tlstap::proto {
namespace {

// What one coding left between two of a chain: a later one may expand it
// again, so more is kept than will be shown.
constexpr size_t kIntermediateMax = 1 << 20;
// RFC 9659: HTTP's zstd decoders need not accept windows above 8 MiB; a
// larger one would have tlstap allocate what the peer asks for.
constexpr int kZstdWindowLogMax = 23;

std::vector<std::string_view> codings_of(std::string_view content_encoding) {
  std::vector<std::string_view> codings;
  while (!content_encoding.empty()) {
    size_t comma = content_encoding.find(',');
    std::string_view coding = trim_ows(content_encoding.substr(0, comma));
    if (!coding.empty() && !ascii_iequals(coding, "identity")) codings.push_back(coding);
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
  return (cmf & 0x0f) == Z_DEFLATED && (cmf * 256 + flg) % 31 == 0;
}

Result<DecodedContent> inflate_body(std::string_view in, size_t max_bytes, int window_bits,
                                    std::string_view name) {
  z_stream stream{};
  if (inflateInit2(&stream, window_bits) != Z_OK) return Error{fmt::format("{}: zlib could not start", name)};
  std::unique_ptr<z_stream, int (*)(z_stream*)> end(&stream, inflateEnd);
  DecodedContent out;
  out.bytes.resize(max_bytes);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  stream.avail_in = static_cast<uInt>(in.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.bytes.data());
  stream.avail_out = static_cast<uInt>(max_bytes);
  int rc = Z_OK;
  while (rc == Z_OK) {
    rc = inflate(&stream, Z_NO_FLUSH);
    // gzip bodies may hold several members, one after the other (RFC 1952).
    if (rc == Z_STREAM_END && stream.avail_in > 0 && window_bits > MAX_WBITS) rc = inflateReset(&stream);
  }
  if (rc != Z_STREAM_END && rc != Z_BUF_ERROR)  // Z_BUF_ERROR: out of input or of room
    return Error{fmt::format("{}: {}", name, stream.msg ? stream.msg : "not that coding")};
  out.whole = rc == Z_STREAM_END;
  out.bytes.resize(max_bytes - stream.avail_out);
  return out;
}

Result<DecodedContent> unbrotli(std::string_view in, size_t max_bytes) {
  std::unique_ptr<BrotliDecoderState, void (*)(BrotliDecoderState*)> state(
      BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), BrotliDecoderDestroyInstance);
  if (!state) return Error{"br: the decoder could not start"};
  DecodedContent out;
  out.bytes.resize(max_bytes);
  size_t avail_in = in.size();
  auto next_in = reinterpret_cast<const uint8_t*>(in.data());
  size_t avail_out = max_bytes;
  auto next_out = reinterpret_cast<uint8_t*>(out.bytes.data());
  BrotliDecoderResult result =
      BrotliDecoderDecompressStream(state.get(), &avail_in, &next_in, &avail_out, &next_out, nullptr);
  if (result == BROTLI_DECODER_RESULT_ERROR)
    return Error{fmt::format("br: {}", BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state.get())))};
  out.whole = result == BROTLI_DECODER_RESULT_SUCCESS;
  out.bytes.resize(max_bytes - avail_out);
  return out;
}

Result<DecodedContent> unzstd(std::string_view in, size_t max_bytes) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!context || ZSTD_isError(ZSTD_DCtx_setParameter(context.get(), ZSTD_d_windowLogMax, kZstdWindowLogMax)))
    return Error{"zstd: the decoder could not start"};
  DecodedContent out;
  out.bytes.resize(max_bytes);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  ZSTD_outBuffer output{out.bytes.data(), max_bytes, 0};
  size_t left = 1;  // 0 once a frame is complete
  // A body may hold several frames; each call goes on until input or room runs out.
  while (input.pos < input.size && output.pos < output.size) {
    size_t before = input.pos + output.pos;
    left = ZSTD_decompressStream(context.get(), &output, &input);
    if (ZSTD_isError(left)) return Error{fmt::format("zstd: {}", ZSTD_getErrorName(left))};
    if (input.pos + output.pos == before) break;  // the decoder holds back output it has no room for
  }
  out.whole = left == 0 && input.pos == input.size;
  out.bytes.resize(output.pos);
  return out;
}

Result<DecodedContent> undo(std::string_view coding, std::string_view in, size_t max_bytes) {
  if (ascii_iequals(coding, "gzip") || ascii_iequals(coding, "x-gzip"))
    return inflate_body(in, max_bytes, MAX_WBITS + 16, "gzip");
  if (ascii_iequals(coding, "deflate"))
    return inflate_body(in, max_bytes, has_zlib_header(in) ? MAX_WBITS : -MAX_WBITS, "deflate");
  if (ascii_iequals(coding, "br")) return unbrotli(in, max_bytes);
  if (ascii_iequals(coding, "zstd")) return unzstd(in, max_bytes);
  return Error{fmt::format("{}: a content coding tlstap does not decode", coding)};
}

}  // namespace

bool is_encoded(std::string_view content_encoding) {
  return !codings_of(content_encoding).empty();
}

void decode_body(HttpMessage& message, size_t max_bytes) {
  const std::string* coding = find_header(message.headers, "content-encoding");
  if (!coding || message.body.empty() || !is_encoded(*coding)) return;
  bool sent_whole = message.body.size() == message.body_length;
  auto decoded = decode_content(*coding, message.body, sent_whole, max_bytes);
  if (!decoded) {
    message.decode_error = decoded.error().message;
    return;
  }
  // zstd and br decode a block at a time: a short prefix of a big block gives nothing.
  if (decoded->bytes.empty() && !decoded->whole) {
    message.decode_error = fmt::format("{}: the first {} bytes kept decode to nothing yet (raise --max-body)",
                                       *coding, message.body.size());
    return;
  }
  message.body = std::move(decoded->bytes);
  message.decoded_from = *coding;
  message.decoded_whole = decoded->whole;
}

Result<DecodedContent> decode_content(std::string_view content_encoding, std::string_view sent,
                                      bool sent_whole, size_t max_bytes) {
  std::vector<std::string_view> codings = codings_of(content_encoding);
  DecodedContent content{std::string(sent), sent_whole};
  // Applied first to last: undone last to first.
  for (auto coding = codings.rbegin(); coding != codings.rend(); ++coding) {
    bool last = coding + 1 == codings.rend();
    auto undone = undo(*coding, content.bytes, last ? max_bytes : kIntermediateMax);
    if (!undone) return undone.error();
    // Whole only when its input was whole too: a stream cut short may still end early by chance.
    undone->whole = undone->whole && content.whole;
    content = std::move(*undone);
  }
  return content;
}

}  // namespace tlstap::proto
