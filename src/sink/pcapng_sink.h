// Writes captured plaintext as pcapng that Wireshark and tshark dissect.
//
// pdu mode (default): one exported PDU per message-aligned piece of
// plaintext, tagged with the dissector ("http", "http2", "websocket", "data")
// and the connection's addresses: dissected with no option set, on any port,
// but without a TCP layer. HTTP/2 and WebSocket (after a 101 upgrade to it)
// are cut at frame boundaries so each packet holds whole frames.
// tcp mode: real IPv4/IPv6 + TCP packets whose sequence numbers are the
// stream offsets, so follow-TCP-stream and TCP tools work; bytes lost to
// drops appear as sequence gaps.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/lru_map.h"
#include "conn/connection_key.h"
#include "conn/connection_table.h"
#include "sink/output.h"
#include "sink/sink.h"

namespace tlstap {

enum class PcapMode { pdu, tcp };

struct PcapngOptions {
  std::string path;  // "-" = stdout
  PcapMode mode = PcapMode::pdu;
  uint64_t rotate_bytes = 0;  // 0: never rotate
  uint32_t keep_files = 0;    // 0: keep all rotated files
  // Connections followed at once; past that the least recently active goes.
  size_t max_connections = ConnectionTable::kMaxConnections;
};

class PcapngSink : public Sink {
 public:
  static Result<PcapngSink> open(const PcapngOptions& options);

  void write(const DataRecord& record) override;
  void write_close(const CloseRecord& record) override;
  void flush() override;
  void forget_process(uint32_t pid) override;
  // Directions of connections held in memory (for tests and measurements).
  size_t flows() const { return flows_.size(); }

 private:
  enum class Protocol { undecided, http1, http2, websocket, other };
  using ConnectionEnd = ConnectionKey;  // a library connection writing a flow
  // One direction of a TCP connection, keyed by (source, destination): when
  // both ends are traced, the receiver's copy of bytes the sender already
  // delivered is skipped, so each connection appears once.
  struct Flow {
    uint64_t next_offset = 0;  // bytes of the stream written so far
    Protocol protocol = Protocol::undecided;
    std::string pending;      // http2, websocket: bytes of an incomplete frame
    bool aligned = true;      // false once a gap broke frame alignment
    uint64_t piece_left = 0;  // bytes still to come of a frame too large for one packet
    // The library connections writing it: [0] the sending end's, [1] the receiving end's.
    std::array<std::optional<ConnectionEnd>, 2> ends;
    std::array<bool, 2> closed{};  // which of them closed
    uint64_t closed_ns = 0;        // when the last of them closed
    bool finished() const;
  };
  using FlowKey = std::tuple<uint16_t, std::array<uint8_t, 16>, uint16_t, std::array<uint8_t, 16>, uint16_t>;
  struct FlowKeyHash {
    size_t operator()(const FlowKey& key) const;
  };

  explicit PcapngSink(PcapngOptions options)
      : options_(std::move(options)),
        flows_(2 * std::max<size_t>(options_.max_connections, 1)),  // a flow and its reverse at least
        connection_flows_(options_.max_connections) {}
  // Notes which library connection writes `flow` from `side` (0: sending, 1: receiving).
  static void claim(Flow& flow, size_t side, const ConnectionEnd& end);
  void note_flow(const ConnectionEnd& end, const FlowKey& key);
  void forget_finished_flows(uint64_t now_ns);
  Result<void> open_file();
  void write_block(const std::string& block);
  void write_pdu(const DataRecord& record, Flow& flow, Flow& reverse, std::span<const std::byte> payload,
                 uint64_t offset);
  void write_frames(const DataRecord& record, Flow& flow, std::span<const std::byte> payload,
                    bool at_stream_start);
  void write_tcp(const DataRecord& record, const Flow& reverse, std::span<const std::byte> payload,
                 uint64_t offset);
  void write_packet(const DataRecord& record, const std::string& packet);

  PcapngOptions options_;
  std::optional<Output> file_;
  uint64_t file_bytes_ = 0;
  uint32_t file_index_ = 0;
  // Bounded (two flows a connection): a connection whose close never comes
  // (its library's free function not probed) goes once max_connections
  // others were more recently active.
  LruMap<FlowKey, Flow, FlowKeyHash> flows_;
  // Each open library connection's flows (up to two a direction: before and
  // after its addresses were known), to end them when it closes.
  LruMap<ConnectionEnd, std::vector<FlowKey>, ConnectionKeyHash> connection_flows_;
  bool said_evicting_ = false;
  // Flows whose every end closed, oldest first, with the time they did: kept
  // a while for the other end's late copy of the bytes.
  std::deque<std::pair<FlowKey, uint64_t>> finished_;
  uint64_t last_time_ns_ = 0;  // of the latest record: the clock of forget_process
};

}  // namespace tlstap
