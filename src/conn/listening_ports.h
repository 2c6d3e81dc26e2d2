// Which local TCP endpoints are listening, from /proc/PID/net/tcp{,6}: the
// role of a connection opened before tlstap started (its local port listens ->
// server side). Parsing is pure; ListeningPorts caches reads per process.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "event/event.h"

namespace tlstap {

// Listening endpoints in the text of /proc/net/tcp (family AF_INET) or tcp6 (AF_INET6).
std::vector<Endpoint> parse_listening_sockets(std::string_view proc_net_tcp, uint16_t family);

bool is_listening_endpoint(const std::vector<Endpoint>& listening, const Endpoint& local);

class ListeningPorts {
 public:
  // Reads /proc/PID/net/tcp{,6} at most once a second per process.
  bool is_listening(uint32_t pid, const Endpoint& local);
  void forget(uint32_t pid) { cache_.erase(pid); }

 private:
  struct Snapshot {
    std::chrono::steady_clock::time_point read_at;
    std::vector<Endpoint> listening;
  };
  std::unordered_map<uint32_t, Snapshot> cache_;
};

}  // namespace tlstap
