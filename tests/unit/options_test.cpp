// Command-line parsing into Options, and the usage errors users see.
#include "cli/options.h"

#include <gtest/gtest.h>

#include <initializer_list>

#include "version.h"

namespace tlstap {
namespace {

Result<Options> parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv = {"tlstap"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

Options parse_or_die(std::initializer_list<const char*> args) {
  auto options = parse(args);
  if (!options) throw std::runtime_error(options.error().message);
  return *options;
}

// The usage error for `args`, or "" if they parsed.
std::string usage_error(std::initializer_list<const char*> args) {
  auto options = parse(args);
  return options ? "" : options.error().message;
}

TEST(ParseOptions, Defaults) {
  Options o = parse_or_die({});
  EXPECT_TRUE(o.pids.empty());
  EXPECT_TRUE(o.comms.empty());
  EXPECT_EQ(o.format, OutputFormat::text);
  EXPECT_EQ(o.output_path, "");
  EXPECT_EQ(o.buffer_mib, 32u);
  EXPECT_EQ(o.max_connections, 65536u);
  EXPECT_FALSE(o.verbose);
  EXPECT_FALSE(o.quiet);
  EXPECT_FALSE(o.early_exit_text);
}

TEST(ParseOptions, PidsAndCommsAreRepeatable) {
  Options o = parse_or_die({"-p", "12", "--pid", "34", "--pid=56", "-c", "nginx", "--comm", "curl"});
  EXPECT_EQ(o.pids, (std::vector<uint32_t>{12, 34, 56}));
  EXPECT_EQ(o.comms, (std::vector<std::string>{"nginx", "curl"}));
}

TEST(ParseOptions, CgroupsContainersAndPodsAreRepeatableUpToTheKernelMap) {
  Options o = parse_or_die({"--cgroup", "/kubepods.slice", "--cgroup=/sys/fs/cgroup/system.slice",
                            "--container", "3f4e5a6b7c8d", "--pod", "8c6b2f1e-5a4d-4c3b-9a8f-7e6d5c4b3a21"});
  EXPECT_EQ(o.cgroups, (std::vector<std::string>{"/kubepods.slice", "/sys/fs/cgroup/system.slice"}));
  EXPECT_EQ(o.containers, (std::vector<std::string>{"3f4e5a6b7c8d"}));
  EXPECT_EQ(o.pods, (std::vector<std::string>{"8c6b2f1e-5a4d-4c3b-9a8f-7e6d5c4b3a21"}));
  std::vector<const char*> argv = {"tlstap"};
  for (int i = 0; i <= 16; ++i) argv.push_back("--cgroup=/");
  auto too_many = parse_options(static_cast<int>(argv.size()), argv.data());
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().message, "at most 16 --cgroup, --container and --pod filters together");
  std::vector<const char*> mixed = {"tlstap", "--pod=x", "--container=y"};
  for (int i = 0; i < 15; ++i) mixed.push_back("--cgroup=/");
  EXPECT_FALSE(parse_options(static_cast<int>(mixed.size()), mixed.data()));
}

TEST(ParseOptions, NetworkNamespacesAreRepeatableUpToTheKernelMap) {
  Options o = parse_or_die({"--netns", "cni-1234", "--netns=/proc/1/ns/net", "--netns", "4026531840"});
  EXPECT_EQ(o.netns, (std::vector<std::string>{"cni-1234", "/proc/1/ns/net", "4026531840"}));
  std::vector<const char*> argv = {"tlstap"};
  for (int i = 0; i <= 64; ++i) argv.push_back("--netns=x");
  auto too_many = parse_options(static_cast<int>(argv.size()), argv.data());
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().message, "at most 64 --netns filters");
}

TEST(ParseOptions, FormatOutputBufferAndLogging) {
  Options o = parse_or_die({"-f", "json", "-o", "/tmp/capture.jsonl", "--buffer-size", "64", "-v"});
  EXPECT_EQ(o.format, OutputFormat::json);
  EXPECT_EQ(o.output_path, "/tmp/capture.jsonl");
  EXPECT_EQ(o.buffer_mib, 64u);
  EXPECT_TRUE(o.verbose);
  EXPECT_EQ(parse_or_die({"--max-connections", "1000000"}).max_connections, 1000000u);
  EXPECT_EQ(parse_or_die({"--format", "TEXT"}).format, OutputFormat::text);
  EXPECT_EQ(parse_or_die({"--format=Json"}).format, OutputFormat::json);
  EXPECT_TRUE(parse_or_die({"--quiet"}).quiet);
}

TEST(ParseOptions, CommNamesFitTheKernelField) {
  EXPECT_EQ(parse_or_die({"-c", "fifteen_chars_x"}).comms, std::vector<std::string>{"fifteen_chars_x"});
  EXPECT_NE(usage_error({"-c", "sixteen_chars_xx"}).find("1 to 15 characters"), std::string::npos);
  EXPECT_NE(usage_error({"--comm="}), "");
}

TEST(ParseOptions, UsageErrors) {
  std::string bad_format = usage_error({"-f", "xml"});
  EXPECT_NE(bad_format.find("xml"), std::string::npos) << bad_format;
  EXPECT_NE(bad_format.find("--help"), std::string::npos) << bad_format;
  EXPECT_NE(usage_error({"-p", "abc"}), "");
  EXPECT_NE(usage_error({"--pid=-1"}), "");
  EXPECT_NE(usage_error({"--pid=4294967296"}), "");
  EXPECT_NE(usage_error({"--buffer-size", "0"}), "");
  EXPECT_NE(usage_error({"--buffer-size", "1025"}), "");
  EXPECT_NE(usage_error({"--max-connections", "15"}), "");
  EXPECT_NE(usage_error({"--max-connections", "16777217"}), "");
  EXPECT_NE(usage_error({"--no-such-option"}), "");
  EXPECT_NE(usage_error({"-p"}), "");
}

TEST(ParseOptions, VerboseAndQuietExcludeEachOther) {
  EXPECT_EQ(usage_error({"--verbose", "--quiet"}), "--verbose and --quiet exclude each other");
  EXPECT_EQ(usage_error({"-q", "-v"}), "--verbose and --quiet exclude each other");
}

TEST(ParseOptions, HelpAndVersionExitEarly) {
  Options help = parse_or_die({"--help"});
  ASSERT_TRUE(help.early_exit_text);
  for (const char* option :
       {"--pid", "--comm", "--format", "--output", "--buffer-size", "--verbose", "--quiet"})
    EXPECT_NE(help.early_exit_text->find(option), std::string::npos) << option;
  EXPECT_EQ(parse_or_die({"-h"}).early_exit_text, help.early_exit_text);
  EXPECT_EQ(parse_or_die({"--version"}).early_exit_text, std::string("tlstap ") + kTlstapVersion + "\n");
}

TEST(ParseOptions, EventsChooseDataAndHttp) {
  Options both = parse_or_die({});
  EXPECT_TRUE(both.data_events && both.http_events);
  Options http = parse_or_die({"--events", "http"});
  EXPECT_FALSE(http.data_events);
  EXPECT_TRUE(http.http_events);
  Options list = parse_or_die({"--events", "data,http"});
  EXPECT_TRUE(list.data_events && list.http_events);
  EXPECT_NE(usage_error({"--events", "smtp"}), "");
}

TEST(ParseOptions, SecretsAndBodyLimit) {
  Options o = parse_or_die({"--show-secrets", "--max-body", "100"});
  EXPECT_TRUE(o.show_secrets);
  EXPECT_EQ(o.max_body_bytes, 100u);
  EXPECT_FALSE(parse_or_die({}).show_secrets);
  EXPECT_EQ(parse_or_die({}).max_body_bytes, 4096u);
}

TEST(ParseOptions, Subcommands) {
  EXPECT_EQ(parse_or_die({}).command, Command::capture);
  Options replay = parse_or_die({"replay", "capture.jsonl", "-f", "json", "--events", "http"});
  EXPECT_EQ(replay.command, Command::replay);
  EXPECT_EQ(replay.replay_path, "capture.jsonl");
  EXPECT_EQ(replay.format, OutputFormat::json);
  EXPECT_FALSE(replay.data_events);
  Options top = parse_or_die({"-c", "curl", "top"});
  EXPECT_EQ(top.command, Command::top);
  EXPECT_EQ(top.comms, std::vector<std::string>{"curl"});
  EXPECT_NE(usage_error({"replay"}), "");  // the file is required
}

}  // namespace
}  // namespace tlstap
