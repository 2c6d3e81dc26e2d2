// What user space remembers per library connection (pid, SSL*): the role
// once resolved and the next expected offset of each direction's stream, so a
// chunk that does not follow its predecessor reveals the bytes lost between.
// A connection whose close never arrives (free function not probed, close
// event lost) would stay until its process exits: past a cap the least
// recently observed goes.
#pragma once

#include <cstdint>
#include <functional>

#include "common/lru_map.h"
#include "conn/connection_key.h"
#include "event/event.h"

namespace tlstap {

struct ConnectionView {
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

  // As many as the kernel's `connections` LRU map (bpf/conn.bpf.h): one not
  // observed while that many others were is gone from the kernel too, and
  // comes back, if ever, under a new conn_uid.
  static constexpr size_t kMaxConnections = 65536;

  explicit ConnectionTable(ListeningCheck is_listening, size_t max_connections = kMaxConnections)
      : is_listening_(std::move(is_listening)), connections_(max_connections) {}

  ConnectionView observe(const DataEvent& event);
  void forget_process(uint32_t pid);
  void forget(const ConnectionKey& key) { connections_.erase(key); }
  size_t size() const { return connections_.size(); }
  uint64_t evicted() const { return connections_.evicted(); }  // connections dropped to stay under the cap

 private:
  using Key = ConnectionKey;
  using KeyHash = ConnectionKeyHash;
  struct State {
    Role role = Role::unknown;
    uint64_t next_offset[2] = {0, 0};
  };

  Role resolve_role(const DataEvent& event, State& state);

  ListeningCheck is_listening_;
  LruMap<Key, State, KeyHash> connections_;
};

}  // namespace tlstap
