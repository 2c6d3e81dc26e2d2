// Command-line options, parsed by CLI11 into plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "sink/pcapng_sink.h"

namespace tlstap {

enum class OutputFormat { text, json };
enum class Command {
  capture,  // the host's live TLS traffic to text/JSON/pcapng
  replay,   // a JSON-lines capture tlstap wrote earlier, through the same protocol layer and sinks
  top,      // live full-screen view of exchanges per process and endpoint
};

struct Options {
  Command command = Command::capture;
  std::string replay_path;  // replay: the JSON-lines file, "-" for stdin
  std::vector<uint32_t> pids;
  std::vector<std::string> comms;
  std::vector<std::string> cgroups;     // as given: resolved when the capture starts
  std::vector<std::string> containers;  // likewise: each becomes a cgroup filter
  std::vector<std::string> pods;
  std::vector<std::string> netns;
  OutputFormat format = OutputFormat::text;
  std::string output_path;  // "" = stdout
  std::string pcap_path;    // -w: pcapng file, "-" = stdout, "" = none
  PcapMode pcap_mode = PcapMode::pdu;
  uint32_t rotate_mib = 0;  // -C: start a new pcapng file past this size
  uint32_t keep_files = 0;  // -W: keep at most this many pcapng files
  uint32_t buffer_mib = 32;
  uint32_t max_connections = 65536;  // TLS connections the kernel follows at once
  bool data_events = true;           // --events: chunks of plaintext
  bool http_events = true;           // --events: HTTP exchanges and WebSocket messages
  bool show_secrets = false;
  uint32_t max_body_bytes = 4096;  // kept per HTTP body in exchanges
  bool uprobe_sessions = true;     // --no-uprobe-sessions: entry probes and uretprobes apart
  bool verbose = false;
  bool quiet = false;
  // --help or --version: print this and exit 0 instead of capturing.
  std::optional<std::string> early_exit_text;
};

// Process exit codes, documented in the README.
enum ExitCode : int {
  kExitOk = 0,
  kExitRuntimeError = 1,  // output could not be written, ring buffer poll failed
  kExitUsage = 2,         // bad command line
  kExitNoPrivilege = 3,   // not root
  kExitUnsupported = 4,   // kernel lacks a required feature, or BPF load failed
};

// Usage errors come back as an Error whose message is ready to print.
Result<Options> parse_options(int argc, const char* const* argv);

}  // namespace tlstap
