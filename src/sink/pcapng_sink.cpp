#include "sink/pcapng_sink.h"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <span>
#include <string_view>

#include "common/bytes.h"
#include "common/log.h"
#include "proto/http1/http1_parser.h"
#include "proto/http2/frame.h"
#include "proto/websocket/websocket_parser.h"
#include "sink/packet_builder.h"
#include "sink/pcapng_format.h"
#include "version.h"

namespace tlstap {
namespace {

constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kHttp2FrameHeader = 9;
// A frame larger than this goes out in pieces as its bytes come, not whole:
// Wireshark refuses packets over 256 KiB, and the sink would hold it meanwhile.
constexpr uint64_t kMaxFramePacket = 192 * 1024;
// frame_size's answer for bytes that are no frame of the protocol.
constexpr uint64_t kNotAFrame = UINT64_MAX;

pcapng::SectionInfo section_info() {
  struct utsname host {};
  uname(&host);
  return {host.machine, std::string(host.sysname) + " " + host.release,
          std::string("tlstap ") + kTlstapVersion,
          std::string("TLS plaintext captured by tlstap on ") + host.nodename};
}

std::string packet_comment(const DataRecord& r) {
  std::string comment = fmt::format(
      "pid={} tid={} comm={} exe={} library={} function={} role={}", r.event.pid, r.event.tid, r.event.comm,
      r.process.exe, to_string(r.event.library), to_string(r.event.function), to_string(r.role));
  if (!r.process.container_id.empty()) comment += " container=" + r.process.container_id;
  if (!r.process.pod_uid.empty()) comment += " pod_uid=" + r.process.pod_uid;
  if (!r.process.pod_name.empty()) comment += " pod=" + r.process.pod_namespace + "/" + r.process.pod_name;
  if (!r.process.container_name.empty()) comment += " container_name=" + r.process.container_name;
  return comment;
}

// Who sent a chunk, and who received it.
std::pair<Endpoint, Endpoint> ends_of(const DataEvent& e) {
  return e.direction == Direction::egress ? std::pair(e.local, e.remote) : std::pair(e.remote, e.local);
}

// The size, header included, of the frame `bytes` start with; 0 while its
// header is incomplete.
uint64_t http2_frame_size(std::string_view bytes) {
  if (bytes.size() < kHttp2FrameHeader) return 0;
  auto byte = [&](size_t i) { return uint64_t{static_cast<uint8_t>(bytes[i])}; };
  return kHttp2FrameHeader + (byte(0) << 16 | byte(1) << 8 | byte(2));
}

uint64_t websocket_frame_size(std::string_view bytes) {
  auto parsed = proto::parse_websocket_frame_header(as_bytes(bytes));
  if (parsed.state == proto::ParseState::invalid) return kNotAFrame;
  if (parsed.state == proto::ParseState::need_more_data) return 0;
  return parsed.header.header_length + parsed.header.payload_length;  // payload < 2^63
}

// Where the WebSocket protocol starts in a chunk that begins a 101 response to
// an upgrade to it: just past the response's head. 0 for any other chunk.
size_t websocket_switch(std::string_view text) {
  if (text.size() < 13 || !text.starts_with("HTTP/1.") || text.substr(8, 4) != " 101")
    return 0;  // most stop here
  size_t head_end = proto::http1::find_block_end(text);
  if (head_end == std::string_view::npos) return 0;
  auto head = proto::http1::parse_response_head(text.substr(0, head_end));
  if (head.state != proto::ParseState::done || head.value.status != 101) return 0;
  const std::string* upgrade = proto::find_header(head.value.headers, "Upgrade");
  return upgrade && ascii_iequals(*upgrade, "websocket") ? head_end : 0;
}

}  // namespace

Result<PcapngSink> PcapngSink::open(const PcapngOptions& options) {
  PcapngSink sink(options);
  if (auto opened = sink.open_file(); !opened) return opened.error();
  return sink;
}

Result<void> PcapngSink::open_file() {
  bool rotated = file_index_ > 0;
  std::string name = rotated ? fmt::format("{}.{}", options_.path, file_index_) : options_.path;
  auto output = Output::open(name);
  if (!output) return output.error();
  file_.emplace(std::move(*output));
  file_bytes_ = 0;
  write_block(pcapng::section_header(section_info()));
  uint16_t linktype = options_.mode == PcapMode::tcp ? pcapng::kLinktypeRaw : pcapng::kLinktypeUpperPdu;
  write_block(pcapng::interface_description(linktype, "tlstap"));
  if (options_.keep_files && file_index_ >= options_.keep_files) {
    uint32_t oldest = file_index_ - options_.keep_files;
    std::string doomed = oldest == 0 ? options_.path : fmt::format("{}.{}", options_.path, oldest);
    std::remove(doomed.c_str());
  }
  return {};
}

void PcapngSink::write_block(const std::string& block) {
  file_->write(block);
  file_bytes_ += block.size();
}

void PcapngSink::write_packet(const DataRecord& record, const std::string& packet) {
  bool stdout_stream = options_.path == "-";
  if (!stdout_stream && options_.rotate_bytes && file_bytes_ >= options_.rotate_bytes) {
    file_->flush();
    ++file_index_;
    if (auto opened = open_file(); !opened) {
      fmt::print(stderr, "tlstap: error: pcapng rotation: {}\n", opened.error().message);
      --file_index_;
    }
  }
  auto bytes = std::span(reinterpret_cast<const std::byte*>(packet.data()), packet.size());
  write_block(pcapng::enhanced_packet(0, record.wall_time_ns, bytes, packet_comment(record)));
}

namespace {

// A flow runs from source to destination. Without addresses, it is one
// direction of one library connection; `reverse` names the other direction.
auto flow_key(const DataEvent& e, const Endpoint& source, const Endpoint& destination, bool reverse) {
  if (source.family != 0)
    return std::make_tuple(source.family, source.address, source.port, destination.address, destination.port);
  std::array<uint8_t, 16> id{};
  std::memcpy(id.data(), &e.pid, sizeof(e.pid));
  std::memcpy(id.data() + 8, &e.conn_uid, sizeof(e.conn_uid));
  uint16_t direction =
      static_cast<uint16_t>(e.direction == Direction::egress) ^ static_cast<uint16_t>(reverse);
  return std::make_tuple(uint16_t{0}, id, direction, id, uint16_t{0});
}

}  // namespace

// Another library connection on the same side means a new connection reuses
// the 4-tuple: the flow starts over, or its offsets would hide the new bytes.
void PcapngSink::claim(Flow& flow, size_t side, const ConnectionEnd& end) {
  if (flow.ends[side] && *flow.ends[side] != end) flow = Flow{};
  flow.ends[side] = end;
}

bool PcapngSink::Flow::finished() const {
  bool any = false;
  for (size_t side : {0, 1}) {
    if (ends[side] && !closed[side]) return false;
    any = any || ends[side];
  }
  return any;
}

size_t PcapngSink::FlowKeyHash::operator()(const FlowKey& key) const {
  const auto& [family, source, source_port, destination, destination_port] = key;
  std::string_view bytes[] = {as_text(std::as_bytes(std::span(source))),
                              as_text(std::as_bytes(std::span(destination)))};
  size_t h = std::hash<std::string_view>()(bytes[0]) * 31 + std::hash<std::string_view>()(bytes[1]);
  return h ^ (size_t{family} << 32 | size_t{source_port} << 16 | destination_port);
}

void PcapngSink::note_flow(const ConnectionEnd& end, const FlowKey& key) {
  auto& keys = connection_flows_[end];
  if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
}

void PcapngSink::write(const DataRecord& record) {
  last_time_ns_ = std::max(last_time_ns_, record.wall_time_ns);
  const DataEvent& e = record.event;
  const auto [source, destination] = ends_of(e);
  if (options_.mode == PcapMode::tcp && source.family == 0) return;  // nothing a TCP tool could use
  const ConnectionEnd end{e.pid, e.conn_uid};
  const FlowKey key = flow_key(e, source, destination, false),
                reverse_key = flow_key(e, destination, source, true);
  Flow& flow = flows_[key];
  Flow& reverse = flows_[reverse_key];
  if (flows_.evicted() && !said_evicting_) {
    said_evicting_ = true;
    log::warn(
        "pcapng: over {} connections open at once: the least recently active are forgotten (when both "
        "ends are traced, the second copy of their later bytes is written too)",
        options_.max_connections);
  }
  size_t side = e.direction == Direction::egress ? 0 : 1;
  claim(flow, side, end);
  claim(reverse, 1 - side, end);
  note_flow(end, key);
  note_flow(end, reverse_key);

  // Skip what this flow already carried (the other end's copy), keep the rest.
  uint64_t stream_end = e.stream_offset + e.payload.size();
  if (source.family != 0 && stream_end <= flow.next_offset && e.stream_offset < flow.next_offset) return;
  uint64_t skip =
      source.family != 0 && e.stream_offset < flow.next_offset ? flow.next_offset - e.stream_offset : 0;
  auto payload = e.payload.subspan(skip);
  uint64_t offset = e.stream_offset + skip;
  if (options_.mode == PcapMode::tcp)
    write_tcp(record, reverse, payload, offset);
  else
    write_pdu(record, flow, reverse, payload, offset);
  flow.next_offset = std::max(flow.next_offset, stream_end);
}

void PcapngSink::write_pdu(const DataRecord& record, Flow& flow, Flow& reverse,
                           std::span<const std::byte> payload, uint64_t offset) {
  const DataEvent& e = record.event;
  const auto [source, destination] = ends_of(e);
  std::string_view text = as_text(payload);
  if (flow.protocol == Protocol::undecided) {
    // A direction seen from its start tells the protocol and tells the other
    // direction too (an HTTP/2 server may speak first); one joined midway
    // takes the other direction's word.
    Protocol own = Protocol::other;
    if (offset == 0 && (proto::starts_with_http2_preface(text) || proto::looks_like_http2_frames(text)))
      own = Protocol::http2;
    else if (offset == 0 && (proto::looks_like_http1_request(text) || proto::looks_like_http1_response(text)))
      own = Protocol::http1;
    bool reverse_knows = reverse.protocol == Protocol::http1 || reverse.protocol == Protocol::http2;
    flow.protocol = own == Protocol::other && reverse_knows ? reverse.protocol : own;
    if (own != Protocol::other && !reverse_knows) reverse.protocol = own;
  }
  if (size_t head = flow.protocol == Protocol::http1 ? websocket_switch(text) : 0) {
    // The 101's head is HTTP; both directions are WebSocket frames from the next byte.
    write_packet(record, exported_pdu("http", source, destination, payload.first(head)));
    for (Flow* f : {&flow, &reverse}) {
      f->protocol = Protocol::websocket;
      f->pending.clear();
      f->aligned = true;
      f->piece_left = 0;
    }
    if (head < payload.size()) write_frames(record, flow, payload.subspan(head), false);
    return;
  }
  if (flow.protocol != Protocol::http2 && flow.protocol != Protocol::websocket) {
    const char* dissector = flow.protocol == Protocol::http1 ? "http" : "data";
    write_packet(record, exported_pdu(dissector, source, destination, payload));
    return;
  }
  if (record.gap_before || offset != flow.next_offset) {
    flow.pending.clear();
    flow.piece_left = 0;
    flow.aligned = false;  // frame boundaries are lost with the missing bytes
  }
  write_frames(record, flow, payload, offset == 0 && flow.pending.empty());
}

// HTTP/2 and WebSocket: each packet holds whole frames; the start of one cut
// by the chunk's end waits for the next chunk, unless the frame is too large
// to hold: then its bytes go out as they come, the first piece to the
// protocol's dissector, the rest as data.
void PcapngSink::write_frames(const DataRecord& record, Flow& flow, std::span<const std::byte> payload,
                              bool at_stream_start) {
  const auto [source, destination] = ends_of(record.event);
  bool http2 = flow.protocol == Protocol::http2;
  const char* dissector = http2 ? "http2" : "websocket";
  if (flow.piece_left > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(flow.piece_left, payload.size()));
    write_packet(record, exported_pdu("data", source, destination, payload.first(n)));
    flow.piece_left -= n;
    payload = payload.subspan(n);
  }
  if (payload.empty()) return;
  if (!flow.aligned) {
    write_packet(record, exported_pdu(dissector, source, destination, payload));
    return;
  }
  flow.pending += as_text(payload);
  std::string_view pending = flow.pending;
  size_t taken = http2 && at_stream_start && pending.starts_with(kHttp2Preface) ? kHttp2Preface.size() : 0;
  uint64_t size = 0;  // of the frame at `taken`
  while (taken < pending.size()) {
    size = http2 ? http2_frame_size(pending.substr(taken)) : websocket_frame_size(pending.substr(taken));
    if (size == 0 || size == kNotAFrame || size > pending.size() - taken) break;
    taken += size;
  }
  if (size == kNotAFrame) {
    flow.aligned = false;  // not this protocol's frames: passed on as they come from now on
    taken = pending.size();
  }
  bool too_large = taken < pending.size() && size != 0 && size > kMaxFramePacket;
  if (too_large) {
    flow.piece_left = size - (pending.size() - taken);
    taken = pending.size();
  }
  if (taken == 0) return;
  auto frames = std::span(reinterpret_cast<const std::byte*>(pending.data()), taken);
  write_packet(record, exported_pdu(dissector, source, destination, frames));
  flow.pending.erase(0, taken);
}

void PcapngSink::write_tcp(const DataRecord& record, const Flow& reverse, std::span<const std::byte> payload,
                           uint64_t offset) {
  const DataEvent& e = record.event;
  const auto [source, destination] = ends_of(e);
  // Sequence numbers are stream offsets (+1 for the SYN we did not see).
  uint32_t seq = static_cast<uint32_t>(offset + 1);
  uint32_t ack = static_cast<uint32_t>(reverse.next_offset + 1);
  write_packet(record, tcp_packet(source, destination, seq, ack, kTcpAck | kTcpPsh, payload));
}

void PcapngSink::flush() {
  if (file_) file_->flush();
}

// A connection's flows end when every library connection writing them has
// closed, two seconds later: when both ends are traced, the receiver's copy
// of the last bytes may come after the sender's close, and would be written
// twice if its flow were gone.
void PcapngSink::write_close(const CloseRecord& record) {
  last_time_ns_ = std::max(last_time_ns_, record.wall_time_ns);
  const ConnectionEnd end{record.pid, record.conn_uid};
  if (const std::vector<FlowKey>* keys = connection_flows_.find(end)) {
    for (const FlowKey& key : *keys) {
      Flow* flow = flows_.peek(key);  // a closed connection's flows are no reason to keep them
      if (!flow) continue;
      Flow& f = *flow;
      for (size_t side : {0, 1})
        if (f.ends[side] == end) f.closed[side] = true;
      if (!f.finished()) continue;
      f.closed_ns = record.wall_time_ns;
      finished_.emplace_back(key, record.wall_time_ns);
    }
    connection_flows_.erase(end);
  }
  forget_finished_flows(record.wall_time_ns);
}

void PcapngSink::forget_finished_flows(uint64_t now_ns) {
  constexpr uint64_t kLingerNs = 2'000'000'000;  // as long as capture.cpp keeps an exited process
  while (!finished_.empty()) {
    const auto& [key, closed_ns] = finished_.front();
    const Flow* flow = flows_.peek(key);
    // Gone with its process, taken by a new connection, or closed again later: not this entry's to end.
    bool current = flow && flow->finished() && flow->closed_ns == closed_ns;
    if (current && closed_ns + kLingerNs > now_ns) break;
    if (current) flows_.erase(key);
    finished_.pop_front();
  }
}

// A process that exits frees no connection: its ends count as closed. Flows
// only it wrote go now; those another traced process writes too (its peer
// on this host) go as usual once that one's end closes as well.
void PcapngSink::forget_process(uint32_t pid) {
  flows_.erase_if([&](const FlowKey& key, Flow& flow) {
    bool was_finished = flow.finished(), other_process = false;
    for (size_t side : {0, 1}) {
      if (!flow.ends[side]) continue;
      if (flow.ends[side]->pid == pid)
        flow.closed[side] = true;
      else
        other_process = true;
    }
    if (other_process && !was_finished && flow.finished()) {
      flow.closed_ns = last_time_ns_;
      finished_.emplace_back(key, last_time_ns_);
    }
    return !other_process;
  });
  connection_flows_.erase_if([pid](const ConnectionEnd& end, const auto&) { return end.pid == pid; });
  forget_finished_flows(last_time_ns_);
}

}  // namespace tlstap
