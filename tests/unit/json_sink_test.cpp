// JSON records, read back with nlohmann::json so every field is checked by value.
#include "sink/json_sink.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace tlstap {
namespace {

using nlohmann::json;

constexpr unsigned char kBinary[] = {0x00, 0xff, 0xfe, 0x41, 0x0a, 0x80, 0x7f};
const auto kBinaryPayload = std::as_bytes(std::span(kBinary));

json parse_record(const DataRecord& record) {
  std::string line = format_json_record(record);
  EXPECT_EQ(line.find('\n'), std::string::npos) << "a record must be one line";
  return json::parse(line);
}

TEST(FormatJsonRecord, EveryField) {
  DataEvent e = test::sample_data_event(kBinaryPayload);
  e.local = test::ipv6_endpoint("2001:db8::1", 443);
  e.remote = test::ipv6_endpoint("2001:db8::2", 50000);
  e.call_len = 20000;
  DataRecord record{e, 1700000000123456789ULL, test::kCurlProcess, Role::server, 0};
  json j = parse_record(record);

  EXPECT_EQ(j, (json{{"type", "data"},
                     {"ts", 1700000000123456789ULL},
                     {"pid", 4242},
                     {"tid", 4243},
                     {"comm", "curl"},
                     {"exe", "/usr/bin/curl"},
                     {"library", "openssl"},
                     {"function", "SSL_read_ex"},
                     {"direction", "ingress"},
                     {"local", "[2001:db8::1]:443"},
                     {"remote", "[2001:db8::2]:50000"},
                     {"role", "server"},
                     {"conn_id", 0x100000000000002aULL},  // the connection's unique id, not the SSL*
                     {"stream_offset", 1000},
                     {"call_len", 20000},
                     {"len", 7},
                     {"data", "AP/+QQqAfw=="}}))
      << j.dump(2);
}

TEST(FormatJsonRecord, GapBeforeOnlyWhenBytesWereLost) {
  DataEvent e = test::sample_data_event(test::as_bytes("GET / HTTP/1.1\r\n"));
  json without_gap = parse_record({e, 1, test::kGoneProcess, Role::client, 0});
  EXPECT_FALSE(without_gap.contains("gap_before"));
  json with_gap = parse_record({e, 1, test::kGoneProcess, Role::client, 4096});
  EXPECT_EQ(with_gap.at("gap_before"), 4096);
  EXPECT_EQ(with_gap.at("data"), "R0VUIC8gSFRUUC8xLjENCg==");
  EXPECT_EQ(with_gap.at("local"), "10.1.2.3:51000");
  EXPECT_EQ(with_gap.at("remote"), "93.184.216.34:443");
}

TEST(FormatJsonRecord, UnknownEndpointsAndEmptyPayload) {
  DataEvent e = test::sample_data_event({});
  e.local = Endpoint{};
  e.remote = Endpoint{};
  json j = parse_record({e, 1, test::kGoneProcess, Role::unknown, 0});
  EXPECT_EQ(j.at("local"), "");
  EXPECT_EQ(j.at("remote"), "");
  EXPECT_EQ(j.at("role"), "unknown");
  EXPECT_EQ(j.at("len"), 0);
  EXPECT_EQ(j.at("data"), "");
}

TEST(FormatJsonRecord, BadUtf8InCommIsReplacedNotThrown) {
  DataEvent e = test::sample_data_event({});
  e.comm = "bad\xff\xfe";
  json j = parse_record({e, 1, test::kGoneProcess, Role::client, 0});
  EXPECT_EQ(j.at("comm"), "bad\xEF\xBF\xBD\xEF\xBF\xBD");  // two U+FFFD
}

TEST(JsonSink, WritesOneLinePerRecord) {
  test::TempDir dir;
  const std::string path = dir.path("out.jsonl");
  {
    auto out = Output::open(path);
    ASSERT_TRUE(out) << out.error().message;
    JsonSink sink(*out, false);
    DataEvent e = test::sample_data_event(test::as_bytes("hi"));
    sink.write({e, 1, test::kGoneProcess, Role::client, 0});
    sink.write({e, 2, test::kGoneProcess, Role::client, 0});
    sink.flush();
  }
  std::string text = test::read_text_file(path);
  ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_EQ(json::parse(text.substr(0, text.find('\n'))).at("ts"), 1);
  EXPECT_EQ(json::parse(text.substr(text.find('\n') + 1)).at("ts"), 2);
}

}  // namespace
}  // namespace tlstap
