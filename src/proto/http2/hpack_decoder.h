// One direction's HPACK state, decoded by libnghttp2's inflater, able to start
// mid-connection.
//
// Joined mid-connection, the dynamic table holds entries inserted before we
// saw anything. The decoder then fills its table with placeholder entries
// (empty name and value, the smallest an entry can be): indices the peer uses
// for entries inserted since still resolve to the right entry (new entries go
// in front; placeholders, being oldest, are evicted first and never before a
// real entry would be), and indices reaching older entries resolve to a
// placeholder, which marks the block unknown instead of producing garbage.
// The placeholders are HPACK bytes produced by libnghttp2's own encoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "proto/http_message.h"

struct nghttp2_hd_inflater;

namespace tlstap::proto::http2 {

struct DecodedBlock {
  Headers fields;        // the fields that could be decoded, in order
  bool unknown = false;  // some field referred to an entry we never saw, or the block was corrupt
};

class HpackDecoder {
 public:
  enum class Origin { connection_start, mid_connection };

  HpackDecoder();
  // Forgets every entry; a decoder of a connection from its start trusts an
  // empty table, one joined mid-way fills it with placeholders.
  void reset(Origin origin);
  // SETTINGS_HEADER_TABLE_SIZE announced by this decoder's side (the peer of
  // the encoder). Applied between blocks.
  void set_max_table_size(uint32_t size);

  void begin_block();
  void add(std::span<const std::byte> fragment);
  DecodedBlock end_block();
  // A block cut short (bytes lost, protocol error): its state is discarded.
  void abandon_block();

 private:
  struct Deleter {
    void operator()(nghttp2_hd_inflater* inflater) const;
  };
  bool inflate(std::span<const std::byte> input, bool final);
  void keep(std::span<const uint8_t> name, std::span<const uint8_t> value);
  void fail();
  void apply_pending_size();

  std::unique_ptr<nghttp2_hd_inflater, Deleter> inflater_;
  std::optional<uint32_t> settings_size_;
  bool size_pending_ = false;
  DecodedBlock block_;
  size_t block_bytes_ = 0;
  bool in_block_ = false;
  bool failed_ = false;  // the current block hit an error; the rest of it is skipped
};

}  // namespace tlstap::proto::http2
