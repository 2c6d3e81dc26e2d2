#include "cli/replay.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>

#include "cli/pipeline.h"
#include "sink/json_reader.h"

namespace tlstap {
namespace {

bool pid_selected(const Options& options, uint32_t pid) {
  return options.pids.empty() ||
         std::find(options.pids.begin(), options.pids.end(), pid) != options.pids.end();
}

bool selected(const Options& options, const DataEvent& e) {
  return pid_selected(options, e.pid) &&
         (options.comms.empty() ||
          std::find(options.comms.begin(), options.comms.end(), e.comm) != options.comms.end());
}

}  // namespace

int run_replay(const Options& options) {
  std::ifstream file;
  if (options.replay_path != "-") {
    file.open(options.replay_path);
    if (!file) {
      fmt::print(stderr, "tlstap: error: cannot read {}: {}\n", options.replay_path, std::strerror(errno));
      return kExitRuntimeError;
    }
  }
  std::istream& in = options.replay_path == "-" ? std::cin : file;
  auto pipeline = Pipeline::open(options);
  if (!pipeline) {
    fmt::print(stderr, "tlstap: error: {}\n", pipeline.error().message);
    return kExitRuntimeError;
  }

  uint64_t line_number = 0, records = 0, skipped = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    auto parsed = parse_json_record(line);
    if (!parsed) {
      // Say where, so the user can look; keep going with the rest.
      if (skipped++ < 5)
        fmt::print(stderr, "tlstap: {}:{}: skipped: {}\n", options.replay_path, line_number,
                   parsed.error().message);
      continue;
    }
    if (!*parsed) continue;
    if (auto* close = std::get_if<CloseRecord>(&**parsed)) {
      if (pid_selected(options, close->pid)) (*pipeline)->end_connection(*close);
      continue;
    }
    DataRecord record = std::get<StoredDataRecord>(**parsed).record();
    if (!selected(options, record.event)) continue;
    (*pipeline)->write(record);
    ++records;
  }
  (*pipeline)->finish();
  fmt::print(stderr, "tlstap: replay: {} data records, {} HTTP exchanges, {} lines skipped\n", records,
             (*pipeline)->exchange_stats().exchanges, skipped);
  if ((*pipeline)->failed()) {
    fmt::print(stderr, "tlstap: error: writing output failed\n");
    return kExitRuntimeError;
  }
  return kExitOk;
}

}  // namespace tlstap
