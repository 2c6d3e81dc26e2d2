// Where decoded, attributed data chunks go. A sink formats; an Output
// (output.h) owns where the bytes end up.
#pragma once

#include <cstdint>
#include <string_view>

#include "event/event.h"

namespace tlstap {

struct DataRecord {
  const DataEvent& event;
  uint64_t wall_time_ns;  // unix time
  std::string_view exe;   // executable path, "" when the process is already gone
  Role role;
  uint64_t gap_before;         // bytes lost right before this chunk in its direction
  bool opened_before_capture;  // the connection predates tlstap: its start may be missing
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void write(const DataRecord& record) = 0;
  virtual void flush() = 0;
  // The process exited: per-connection state of it can go.
  virtual void forget_process(uint32_t /*pid*/) {}
};

}  // namespace tlstap
