// What user space remembers per library connection (pid, SSL*): the role
// once resolved and the next expected offset of each direction's stream, so a
// chunk that does not follow its predecessor reveals the bytes lost between.
// A connection whose close never arrives (free function not probed, close
// event lost) would stay until its process exits: past a cap the least
// recently observed goes.
//
// The kernel's table of connections is an LRU map too: when it is full it
// forgets the least recently used, which on its next call comes back under a
// new conn_uid with offsets from 0. The same SSL* on the same socket with the
// same addresses, never closed, is that connection: it is followed on under
// its first conn_uid, its offsets continued, and counted (resumed()).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "common/lru_map.h"
#include "conn/connection_key.h"
#include "event/event.h"

namespace tlstap {

struct ConnectionView {
  uint64_t conn_uid = 0;       // to report: the connection's first, when the kernel forgot it since
  uint64_t stream_offset = 0;  // likewise continued
  Role role = Role::unknown;
  uint64_t gap_before = 0;  // bytes of this direction lost right before this chunk
  // The kernel did not see this connection open: it predates tlstap, and a
  // call already in progress when tlstap attached may have gone unseen.
  bool opened_before_capture = false;
};

class ConnectionTable {
 public:
  // Decides the role of a connection the kernel saw no connect/accept for.
  using ListeningCheck = std::function<bool(uint32_t pid, const Endpoint& local)>;

  // The kernel's `connections` LRU map's default size (bpf/conn.bpf.h,
  // --max-connections). The capture keeps twice as many here, so a connection
  // the kernel forgot is still known when it comes back.
  static constexpr size_t kMaxConnections = 65536;

  explicit ConnectionTable(ListeningCheck is_listening, size_t max_connections = kMaxConnections)
      : is_listening_(std::move(is_listening)),
        connections_(max_connections),
        latest_uid_(max_connections),
        resumed_(max_connections) {}

  ConnectionView observe(const DataEvent& event);
  // The connection's close (by the kernel's conn_uid): forgotten here; returns
  // the key it was reported under.
  ConnectionKey close(const ConnectionKey& key);
  void forget_process(uint32_t pid);
  size_t size() const { return connections_.size(); }
  uint64_t evicted() const { return connections_.evicted(); }  // connections dropped to stay under the cap
  uint64_t resumed() const { return resumed_count_; }          // forgotten by the kernel, followed on here

 private:
  using Key = ConnectionKey;
  using KeyHash = ConnectionKeyHash;
  struct State {
    Role role = Role::unknown;
    uint64_t next_offset[2] = {0, 0};
    bool resync[2] = {false, false};  // the next chunk sets next_offset, with no gap before it
    // Decided at its first chunk with addresses: the kernel saw no connect or accept.
    std::optional<bool> opened_before_capture;
    uint64_t conn_id = 0;  // its SSL*
    uint64_t sock_id = 0;  // what tells a connection the kernel forgot from a new one
    Endpoint local, remote;
  };
  struct LibraryKey {  // (pid, SSL*)
    uint32_t pid;
    uint64_t conn_id;
    bool operator==(const LibraryKey&) const = default;
  };
  struct LibraryKeyHash {
    size_t operator()(const LibraryKey& k) const { return std::hash<uint64_t>()(k.conn_id ^ k.pid); }
  };
  struct Resumed {  // a conn_uid the kernel gave a connection it had forgotten
    uint64_t conn_uid = 0;
    uint64_t base_offset[2] = {0, 0};
  };

  Role resolve_role(const DataEvent& event, State& state);
  State& state_of_new_uid(const DataEvent& event, size_t direction, ConnectionView& view);
  const Resumed* resume_forgotten(const DataEvent& event);

  ListeningCheck is_listening_;
  LruMap<Key, State, KeyHash> connections_;
  LruMap<LibraryKey, uint64_t, LibraryKeyHash> latest_uid_;  // of each SSL* with an open connection
  LruMap<Key, Resumed, KeyHash> resumed_;                    // by the kernel's new conn_uid
  uint64_t resumed_count_ = 0;
};

}  // namespace tlstap
