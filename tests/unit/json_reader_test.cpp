// JSON data and close lines read back: what format_json_record and
// format_json_close wrote comes back field for field, and lines that are not
// tlstap's say why.
#include "sink/json_reader.h"

#include <gtest/gtest.h>

#include "sink/json_sink.h"
#include "test_support.h"

namespace tlstap {
namespace {

TEST(ParseJsonDataRecord, RoundTripsWhatTheJsonSinkWrote) {
  constexpr unsigned char kBinary[] = {0x00, 0xff, 0x41, 0x0a, 0x80};
  for (std::span<const std::byte> payload :
       {std::span<const std::byte>(std::as_bytes(std::span(kBinary))),
        test::as_bytes("GET / HTTP/1.1\r\n\r\n"), test::as_bytes("ab"), test::as_bytes("")}) {
    DataEvent e = test::sample_data_event(payload);
    e.local = test::ipv6_endpoint("2001:db8::1", 443);
    DataRecord written{e, 1700000000123456789ULL, test::kPodProcess, Role::server, 12, true};
    auto parsed = parse_json_record(format_json_record(written));
    ASSERT_TRUE(parsed) << parsed.error().message;
    ASSERT_TRUE(*parsed);
    DataRecord r = std::get<StoredDataRecord>(**parsed).record();
    EXPECT_EQ(r.event.pid, e.pid);
    EXPECT_EQ(r.event.tid, e.tid);
    EXPECT_EQ(r.event.library, e.library);
    EXPECT_EQ(r.event.function, e.function);
    EXPECT_EQ(r.event.direction, e.direction);
    EXPECT_EQ(r.event.conn_uid, e.conn_uid);
    EXPECT_EQ(r.event.stream_offset, e.stream_offset);
    EXPECT_EQ(r.event.call_len, e.call_len);
    EXPECT_EQ(r.event.comm, "curl");
    EXPECT_EQ(r.event.local, e.local);
    EXPECT_EQ(r.event.remote, e.remote);
    ASSERT_EQ(r.event.payload.size(), payload.size());
    EXPECT_TRUE(std::equal(payload.begin(), payload.end(), r.event.payload.begin()));
    EXPECT_EQ(r.wall_time_ns, written.wall_time_ns);
    EXPECT_EQ(r.process, test::kPodProcess);
    EXPECT_EQ(r.role, Role::server);
    EXPECT_EQ(r.gap_before, 12u);
    EXPECT_TRUE(r.opened_before_capture);
  }
}

TEST(ParseJsonDataRecord, HttpLinesAreNotData) {
  auto parsed = parse_json_record(R"({"type":"http","method":"GET"})");
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(*parsed);
}

TEST(ParseJsonCloseRecord, RoundTripsAndSaysWhatIsWrong) {
  CloseRecord written{4242, 0x1122334455667788ULL, 1700000000123456789ULL};
  std::string line = format_json_close(written);
  EXPECT_EQ(line, R"({"type":"close","ts":1700000000123456789,"pid":4242,"conn_id":1234605616436508552})");
  auto parsed = parse_json_record(line);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_TRUE(*parsed);
  const auto& close = std::get<CloseRecord>(**parsed);
  EXPECT_EQ(close.pid, written.pid);
  EXPECT_EQ(close.conn_uid, written.conn_uid);
  EXPECT_EQ(close.wall_time_ns, written.wall_time_ns);
  auto missing = parse_json_record(R"({"type":"close","ts":1,"pid":2})");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("not a tlstap close record"), std::string::npos);
}

TEST(ParseJsonDataRecord, SaysWhatIsWrong) {
  DataEvent e = test::sample_data_event(test::as_bytes("hi"));
  std::string good = format_json_record({e, 1, test::kGoneProcess, Role::client, 0});
  auto error_of = [](std::string line) {
    auto parsed = parse_json_record(line);
    return parsed ? std::string() : parsed.error().message;
  };
  EXPECT_EQ(error_of(good), "");
  EXPECT_EQ(error_of("not json"), "not a JSON object");
  EXPECT_EQ(error_of("[1,2]"), "not a JSON object");
  EXPECT_EQ(error_of(R"({"pid":1})"), "no \"type\"");
  auto replace = [&](std::string_view from, std::string_view to) {
    std::string line = good;
    line.replace(line.find(from), from.size(), to);
    return line;
  };
  EXPECT_EQ(error_of(replace("\"openssl\"", "\"wolfssl\"")), "unknown value \"wolfssl\"");
  EXPECT_EQ(error_of(replace("93.184.216.34:443", "93.184.216.34:99999")),
            "bad endpoint \"93.184.216.34:99999\"");
  EXPECT_EQ(error_of(replace("\"aGk=\"", "\"a*k=\"")), "data is not base64");
  EXPECT_EQ(error_of(replace("\"len\":2", "\"len\":3")), "len does not match the data");
  EXPECT_NE(error_of(replace("\"pid\":4242,", "")).find("not a tlstap data record"), std::string::npos);
}

}  // namespace
}  // namespace tlstap
