#include "cli/options.h"

#include <CLI/CLI.hpp>
#include <map>

#include "version.h"

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
  const std::map<std::string, OutputFormat> formats{{"text", OutputFormat::text},
                                                    {"json", OutputFormat::json}};
  app.add_option("-f,--format", options.format, "Output format: text or json (one object per line)")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case));
  app.add_option("-o,--output", options.output_path, "Write to FILE (created 0600) instead of stdout");
  app.add_option("--buffer-size", options.buffer_mib, "Kernel ring buffer size in MiB")
      ->check(CLI::Range(1, 1024));
  app.add_flag("-v,--verbose", options.verbose, "Log every probe site and every skipped file");
  app.add_flag("-q,--quiet", options.quiet, "Only log warnings and errors");

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
  if (options.verbose && options.quiet) return Error{"--verbose and --quiet exclude each other"};
  return options;
}

}  // namespace tlstap
