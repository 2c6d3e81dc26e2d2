// One connection as user space keys it: conn_uid alone is unique on the host;
// the pid lets a process's connections go at its exit.
#pragma once

#include <cstdint>
#include <functional>

namespace tlstap {

struct ConnectionKey {
  uint32_t pid;
  uint64_t conn_uid;
  bool operator==(const ConnectionKey&) const = default;
};

struct ConnectionKeyHash {
  size_t operator()(const ConnectionKey& k) const { return std::hash<uint64_t>()(k.conn_uid); }
};

}  // namespace tlstap
