// What user space remembers per library connection (pid, SSL*): the role
// once resolved and the next expected offset of each direction's stream, so a
// chunk that does not follow its predecessor reveals the bytes lost between.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>

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

  explicit ConnectionTable(ListeningCheck is_listening) : is_listening_(std::move(is_listening)) {}

  ConnectionView observe(const DataEvent& event);
  void forget_process(uint32_t pid);
  void forget(const ConnectionKey& key) { connections_.erase(key); }
  size_t size() const { return connections_.size(); }

 private:
  using Key = ConnectionKey;
  using KeyHash = ConnectionKeyHash;
  struct State {
    Role role = Role::unknown;
    uint64_t next_offset[2] = {0, 0};
  };

  Role resolve_role(const DataEvent& event, State& state);

  ListeningCheck is_listening_;
  std::unordered_map<Key, State, KeyHash> connections_;
};

}  // namespace tlstap
