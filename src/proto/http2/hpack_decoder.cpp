#include "proto/http2/hpack_decoder.h"

#include <nghttp2/nghttp2.h>

#include <new>
#include <string>
#include <vector>

namespace tlstap::proto::http2 {

namespace {

// The default table size (RFC 7541 section 4.2) is what the placeholders fill:
// a larger table the peer may have negotiated only makes old references fail.
constexpr size_t kDefaultTableSize = 4096;
constexpr size_t kEntryOverhead = 32;  // RFC 7541 section 4.1
// Table size updates a peer joined mid-way may send: we never saw its limit.
constexpr size_t kMidConnectionSizeLimit = 65536;
// Decoded fields kept per block; the rest are decoded (HPACK state) but not kept.
constexpr size_t kMaxKeptBlockBytes = 256 * 1024;

// One placeholder representation, "literal with incremental indexing" of an
// empty name and value, as libnghttp2's encoder writes it.
std::vector<uint8_t> encode_placeholder() {
  nghttp2_hd_deflater* deflater = nullptr;
  if (nghttp2_hd_deflate_new(&deflater, kDefaultTableSize) != 0) throw std::bad_alloc();
  static uint8_t nothing[1] = {0};
  nghttp2_nv empty{nothing, nothing, 0, 0, NGHTTP2_NV_FLAG_NONE};
  std::vector<uint8_t> out(16);
  ssize_t n = nghttp2_hd_deflate_hd(deflater, out.data(), out.size(), &empty, 1);
  nghttp2_hd_deflate_del(deflater);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

const std::vector<uint8_t>& placeholder_block() {
  static const std::vector<uint8_t> block = [] {
    std::vector<uint8_t> one = encode_placeholder();
    std::vector<uint8_t> all;
    for (size_t i = 0; i < kDefaultTableSize / kEntryOverhead; ++i)
      all.insert(all.end(), one.begin(), one.end());
    return all;
  }();
  return block;
}

}  // namespace

void HpackDecoder::Deleter::operator()(nghttp2_hd_inflater* inflater) const {
  nghttp2_hd_inflate_del(inflater);
}

HpackDecoder::HpackDecoder() {
  reset(Origin::connection_start);
}

void HpackDecoder::reset(Origin origin) {
  nghttp2_hd_inflater* raw = nullptr;
  if (nghttp2_hd_inflate_new2(&raw, nullptr) != 0) throw std::bad_alloc();
  inflater_.reset(raw);
  size_pending_ = false;
  in_block_ = false;
  failed_ = false;
  block_ = {};
  if (origin == Origin::connection_start) {
    if (settings_size_) nghttp2_hd_inflate_change_table_size(raw, *settings_size_);
    return;
  }
  nghttp2_hd_inflate_change_table_size(raw, kMidConnectionSizeLimit);
  const auto& block = placeholder_block();
  inflate(std::as_bytes(std::span(block)), true);
}

void HpackDecoder::set_max_table_size(uint32_t size) {
  settings_size_ = size;
  size_pending_ = true;
  if (!in_block_) apply_pending_size();
}

void HpackDecoder::apply_pending_size() {
  if (!size_pending_) return;
  size_pending_ = false;
  if (nghttp2_hd_inflate_change_table_size(inflater_.get(), *settings_size_) != 0)
    reset(Origin::mid_connection);
}

void HpackDecoder::begin_block() {
  if (in_block_) abandon_block();
  apply_pending_size();
  in_block_ = true;
  failed_ = false;
  block_ = {};
  block_bytes_ = 0;
}

void HpackDecoder::add(std::span<const std::byte> fragment) {
  if (!in_block_ || failed_) return;
  if (!inflate(fragment, false)) fail();
}

DecodedBlock HpackDecoder::end_block() {
  if (in_block_ && !failed_ && !inflate({}, true)) fail();
  in_block_ = false;
  apply_pending_size();
  return std::move(block_);
}

void HpackDecoder::abandon_block() {
  reset(Origin::mid_connection);
}

void HpackDecoder::fail() {
  DecodedBlock partial = std::move(block_);
  partial.unknown = true;
  // libnghttp2's inflater refuses every later block after an error.
  reset(Origin::mid_connection);
  block_ = std::move(partial);
  in_block_ = true;
  failed_ = true;
}

bool HpackDecoder::inflate(std::span<const std::byte> input, bool final) {
  const auto* in = reinterpret_cast<const uint8_t*>(input.data());
  size_t left = input.size();
  for (;;) {
    nghttp2_nv nv{};
    int flags = 0;
    ssize_t used = nghttp2_hd_inflate_hd2(inflater_.get(), &nv, &flags, in, left, final ? 1 : 0);
    if (used < 0) return false;
    in += used;
    left -= static_cast<size_t>(used);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) keep({nv.name, nv.namelen}, {nv.value, nv.valuelen});
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater_.get());
      return true;
    }
    if (left == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT)) return !final;
  }
}

void HpackDecoder::keep(std::span<const uint8_t> name, std::span<const uint8_t> value) {
  if (!in_block_) return;  // the placeholders
  if (name.empty()) {      // a placeholder: an entry inserted before we joined
    block_.unknown = true;
    return;
  }
  block_bytes_ += name.size() + value.size();
  if (block_bytes_ > kMaxKeptBlockBytes) return;
  block_.fields.push_back({std::string(name.begin(), name.end()), std::string(value.begin(), value.end())});
}

}  // namespace tlstap::proto::http2
