// Reads back the "data" lines JsonSink writes, so a capture can be replayed
// through the protocol layer and every sink. Pure: a line in, a record out.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "sink/sink.h"

namespace tlstap {

// Owns what a DataRecord borrows.
struct StoredDataRecord {
  DataEvent event;
  std::string comm;
  ProcessIdentity process;
  std::vector<std::byte> payload;
  uint64_t wall_time_ns = 0;
  Role role = Role::unknown;
  uint64_t gap_before = 0;
  bool opened_before_capture = false;

  // Valid while this object lives and is not moved.
  DataRecord record();
};

using StoredRecord = std::variant<StoredDataRecord, CloseRecord>;

// A "data" or "close" line; nullopt for lines of other types (tlstap's own
// "http" lines); an Error for a line that is not a tlstap JSON record.
Result<std::optional<StoredRecord>> parse_json_record(std::string_view line);

}  // namespace tlstap
