#include "cli/options.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>

#include "version.h"

extern "C" {
#include "events.h"
}

namespace tlstap {

Result<Options> parse_options(int argc, const char* const* argv) {
  Options options;
  CLI::App app{"tlstap: show the plaintext of TLS traffic on this host, live, without keys"};
  app.set_version_flag("--version", std::string("tlstap ") + kTlstapVersion);
  app.add_option("-p,--pid", options.pids, "Only capture these processes (repeatable)");
  app.add_option("-c,--comm", options.comms, "Only capture processes with this command name (repeatable)")
      ->check([](const std::string& name) {
        return name.empty() || name.size() > 15
                   ? std::string("command names are 1 to 15 characters (the kernel's limit)")
                   : std::string();
      });
  app.add_option("--cgroup", options.cgroups,
                 "Only capture processes in this cgroup (v2) or below it, e.g. a container's or a pod's: "
                 "a directory under /sys/fs/cgroup or a path as /proc/PID/cgroup shows it (repeatable; "
                 "--pid and --comm then choose within these cgroups)");
  app.add_option("--container", options.containers,
                 "Only capture processes in this container (docker, containerd, CRI-O, podman): its ID or a "
                 "prefix of it, as `docker ps` or `crictl ps` show it (repeatable; a cgroup filter; one not "
                 "running yet is captured once it starts)");
  app.add_option(
      "--pod", options.pods,
      "Only capture processes in this Kubernetes pod, all its containers: its UID, as "
      "`kubectl get pod NAME -o jsonpath={.metadata.uid}` prints it (repeatable; a cgroup filter; one "
      "not running yet is captured once it starts)");
  app.add_option("--netns", options.netns,
                 "Only capture processes in this network namespace, e.g. a pod's: a name `ip netns` lists, "
                 "a namespace file (/run/netns/NAME, /proc/PID/ns/net) or its inode number as `lsns -t net` "
                 "prints it (repeatable; combines with --cgroup, --pid and --comm as --cgroup does)");
  const std::map<std::string, OutputFormat> formats{{"text", OutputFormat::text},
                                                    {"json", OutputFormat::json}};
  app.add_option("-f,--format", options.format, "Output format: text or json (one object per line)")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case));
  app.add_option("-o,--output", options.output_path, "Write to FILE (created 0600) instead of stdout");
  app.add_option("-w,--write", options.pcap_path, "Also write pcapng to FILE (created 0600); - for stdout");
  const std::map<std::string, PcapMode> pcap_modes{{"pdu", PcapMode::pdu}, {"tcp", PcapMode::tcp}};
  app.add_option("--pcap-mode", options.pcap_mode,
                 "pdu: packets Wireshark dissects as HTTP/HTTP2 on any port (default); "
                 "tcp: synthesized TCP/IP packets for stream tools")
      ->transform(CLI::CheckedTransformer(pcap_modes, CLI::ignore_case));
  app.add_option("-C,--rotate-size", options.rotate_mib,
                 "Start a new pcapng file past this many MB (FILE.1, ...)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("-W,--rotate-keep", options.keep_files, "With -C: keep at most this many pcapng files")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--buffer-size", options.buffer_mib, "Kernel ring buffer size in MiB")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-connections", options.max_connections,
                 "TLS connections the kernel's table holds at once (default 65536); past it, the least "
                 "recently used is forgotten there and followed on by user space, which is told")
      ->check(CLI::Range(16, 1 << 24));
  std::vector<std::string> events;
  app.add_option(
         "--events", events,
         "What to write: data (plaintext chunks), http (exchanges and WebSocket messages); default both")
      ->delimiter(',')
      ->check(CLI::IsMember({"data", "http"}));
  app.add_flag("--show-secrets", options.show_secrets,
               "Show credential headers (authorization, cookie, ...) instead of masking them");
  app.add_option("--max-body", options.max_body_bytes, "Bytes of each HTTP body (and WebSocket message) kept")
      ->check(CLI::Range(0, 1 << 24));
  app.add_flag("!--no-uprobe-sessions", options.uprobe_sessions,
               "Attach an entry probe and a uretprobe apart even where the kernel could run them as one "
               "uprobe session (Linux 6.13+, which spares calls filtered out their return trap)");
  app.add_flag("-v,--verbose", options.verbose,
               "Log every probe site and every skipped file; headers and bodies under each exchange");
  app.add_flag("-q,--quiet", options.quiet, "Only log warnings and errors");

  app.fallthrough();
  auto* replay = app.add_subcommand("replay", "Run the protocol layer and the sinks on a JSON-lines capture");
  replay->add_option("FILE", options.replay_path, "A file written by tlstap -f json (- for stdin)")
      ->required();
  auto* top = app.add_subcommand("top", "Live view: exchanges/s, errors, latency per process and endpoint");
  app.require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    options.early_exit_text = app.help();
  } catch (const CLI::CallForAllHelp&) {
    options.early_exit_text = app.help("", CLI::AppFormatMode::All);
  } catch (const CLI::CallForVersion&) {
    options.early_exit_text = std::string("tlstap ") + kTlstapVersion + "\n";
  } catch (const CLI::ParseError& e) {
    return Error{std::string(e.what()) + "\nRun with --help for more information."};
  }
  if (replay->parsed()) options.command = Command::replay;
  if (top->parsed()) options.command = Command::top;
  if (!events.empty()) {
    options.data_events = std::find(events.begin(), events.end(), "data") != events.end();
    options.http_events = std::find(events.begin(), events.end(), "http") != events.end();
  }
  if (options.cgroups.size() + options.containers.size() + options.pods.size() > TLSTAP_CGROUP_FILTER_MAX)
    return Error{
        fmt::format("at most {} --cgroup, --container and --pod filters together", TLSTAP_CGROUP_FILTER_MAX)};
  if (options.netns.size() > TLSTAP_NETNS_FILTER_MAX)
    return Error{fmt::format("at most {} --netns filters", TLSTAP_NETNS_FILTER_MAX)};
  if (options.verbose && options.quiet) return Error{"--verbose and --quiet exclude each other"};
  if ((options.rotate_mib || options.keep_files) && (options.pcap_path.empty() || options.pcap_path == "-"))
    return Error{"-C and -W rotate pcapng files: they need -w FILE"};
  return options;
}

}  // namespace tlstap
