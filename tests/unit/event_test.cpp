// Decoding ring buffer bytes laid out exactly as the kernel side writes them.
#include "event/event.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>

#include "test_support.h"

extern "C" {
#include "events.h"
}

namespace tlstap {
namespace {

using test::ipv4_endpoint;
using test::ipv6_endpoint;

void set_address(tt_u8 (&field)[16], int family, const char* text) {
  std::memset(field, 0, sizeof(field));
  if (inet_pton(family, text, field) != 1) throw std::invalid_argument(text);
}

// A data event as the kernel fills it, every field distinct from its neighbours.
tlstap_data_event raw_data_event(uint32_t len) {
  tlstap_data_event raw{};
  raw.kind = TLSTAP_EVENT_DATA;
  raw.pid = 100;
  raw.tid = 101;
  raw.library = TLSTAP_LIB_OPENSSL;
  raw.function = TLSTAP_FN_SSL_WRITE_EX;
  raw.direction = TLSTAP_DIR_EGRESS;
  raw.timestamp_ns = 123456789012ULL;
  raw.conn_id = 0x55aa00112233ULL;
  raw.conn_uid = 0x2000000000000007ULL;
  raw.sock_id = 0xffff888012345678ULL;
  raw.stream_offset = 70000;
  raw.call_len = 40000;
  raw.chunk_offset = 16384;
  raw.len = len;
  std::memcpy(raw.comm, "nginx", 6);
  raw.conn.family = AF_INET;
  raw.conn.local_port = 443;
  raw.conn.remote_port = 50123;
  raw.conn.role = TLSTAP_ROLE_SERVER;
  set_address(raw.conn.local_addr, AF_INET, "10.0.0.1");
  set_address(raw.conn.remote_addr, AF_INET, "10.0.0.2");
  return raw;
}

// The ring record: the struct, its payload, then slack the reader must ignore.
template <class Raw>
std::vector<std::byte> serialize(const Raw& raw, std::string_view payload = {}, size_t slack = 0) {
  std::vector<std::byte> bytes(sizeof(Raw) + payload.size() + slack, std::byte{0xcc});
  std::memcpy(bytes.data(), &raw, sizeof(Raw));
  if (!payload.empty()) std::memcpy(bytes.data() + sizeof(Raw), payload.data(), payload.size());
  return bytes;
}

// The event borrows comm and payload from `bytes`, which must outlive it.
DataEvent decode_or_die(const std::vector<std::byte>& bytes) {
  auto event = decode_data_event(bytes);
  if (!event) throw std::runtime_error(event.error().message);
  return *event;
}
DataEvent decode_or_die(std::vector<std::byte>&& bytes) = delete;

TEST(DecodeDataEvent, DecodesEveryField) {
  auto bytes = serialize(raw_data_event(5), "hello", 11);
  DataEvent e = decode_or_die(bytes);
  EXPECT_EQ(e.pid, 100u);
  EXPECT_EQ(e.tid, 101u);
  EXPECT_EQ(e.library, Library::openssl);
  EXPECT_EQ(e.function, TlsFunction::ssl_write_ex);
  EXPECT_EQ(e.direction, Direction::egress);
  EXPECT_EQ(e.boot_time_ns, 123456789012ULL);
  EXPECT_EQ(e.conn_id, 0x55aa00112233ULL);
  EXPECT_EQ(e.conn_uid, 0x2000000000000007ULL);
  EXPECT_EQ(e.sock_id, 0xffff888012345678ULL);
  EXPECT_EQ(e.stream_offset, 70000u);
  EXPECT_EQ(e.call_len, 40000u);
  EXPECT_EQ(e.chunk_offset, 16384u);
  EXPECT_EQ(e.comm, "nginx");
  EXPECT_EQ(e.local, ipv4_endpoint("10.0.0.1", 443));
  EXPECT_EQ(e.remote, ipv4_endpoint("10.0.0.2", 50123));
  EXPECT_EQ(e.role, Role::server);
  // The payload is borrowed from the ring record, and the slack is not part of it.
  EXPECT_EQ(e.payload.data(), bytes.data() + sizeof(tlstap_data_event));
  EXPECT_EQ(e.payload.size(), 5u);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(e.payload.data()), e.payload.size()), "hello");
}

TEST(DecodeDataEvent, IngressAndEveryFunction) {
  auto raw = raw_data_event(0);
  raw.direction = TLSTAP_DIR_INGRESS;
  auto ingress = serialize(raw);
  EXPECT_EQ(decode_or_die(ingress).direction, Direction::ingress);
  const std::pair<tt_u8, TlsFunction> functions[] = {
      {TLSTAP_FN_SSL_WRITE, TlsFunction::ssl_write},
      {TLSTAP_FN_SSL_READ, TlsFunction::ssl_read},
      {TLSTAP_FN_SSL_WRITE_EX, TlsFunction::ssl_write_ex},
      {TLSTAP_FN_SSL_READ_EX, TlsFunction::ssl_read_ex},
      {TLSTAP_FN_SSL_WRITE_INTERNAL, TlsFunction::ssl_write_internal},
      {TLSTAP_FN_SSL_READ_INTERNAL, TlsFunction::ssl_read_internal},
      {0, TlsFunction::unknown},
      {255, TlsFunction::unknown}};
  for (auto [raw_function, expected] : functions) {
    raw.function = raw_function;
    auto bytes = serialize(raw);
    EXPECT_EQ(decode_or_die(bytes).function, expected) << int(raw_function);
  }
}

TEST(DecodeDataEvent, UnknownEnumValuesDecodeAsUnknown) {
  auto raw = raw_data_event(0);
  raw.library = 7;
  raw.conn.role = 3;
  auto bytes = serialize(raw);
  DataEvent e = decode_or_die(bytes);
  EXPECT_EQ(e.library, Library::unknown);
  EXPECT_EQ(e.role, Role::unknown);
  raw.conn.role = TLSTAP_ROLE_CLIENT;
  auto client = serialize(raw);
  EXPECT_EQ(decode_or_die(client).role, Role::client);
}

TEST(DecodeDataEvent, EmptyPayload) {
  auto bytes = serialize(raw_data_event(0), "", 8);
  DataEvent e = decode_or_die(bytes);
  EXPECT_TRUE(e.payload.empty());
}

TEST(DecodeDataEvent, Ipv6Endpoints) {
  auto raw = raw_data_event(0);
  raw.conn.family = AF_INET6;
  set_address(raw.conn.local_addr, AF_INET6, "::1");
  set_address(raw.conn.remote_addr, AF_INET6, "2001:db8::42");
  auto bytes = serialize(raw);
  DataEvent e = decode_or_die(bytes);
  EXPECT_EQ(e.local, ipv6_endpoint("::1", 443));
  EXPECT_EQ(e.remote, ipv6_endpoint("2001:db8::42", 50123));
  EXPECT_EQ(format_endpoint(e.local), "[::1]:443");
  EXPECT_EQ(format_endpoint(e.remote), "[2001:db8::42]:50123");
}

TEST(DecodeDataEvent, V4MappedAddressesBecomeIpv4) {
  // A dual-stack socket talking IPv4 reports ::ffff:a.b.c.d.
  auto raw = raw_data_event(0);
  raw.conn.family = AF_INET6;
  set_address(raw.conn.local_addr, AF_INET6, "::ffff:127.0.0.1");
  set_address(raw.conn.remote_addr, AF_INET6, "::ffff:192.168.7.9");
  auto bytes = serialize(raw);
  DataEvent e = decode_or_die(bytes);
  EXPECT_EQ(e.local, ipv4_endpoint("127.0.0.1", 443));
  EXPECT_EQ(e.remote, ipv4_endpoint("192.168.7.9", 50123));
  EXPECT_EQ(format_endpoint(e.local), "127.0.0.1:443");
  EXPECT_EQ(format_endpoint(e.remote), "192.168.7.9:50123");
  EXPECT_EQ(format_endpoint(ipv4_endpoint("255.0.10.255", 65535)), "255.0.10.255:65535");
}

TEST(DecodeDataEvent, UnknownFamilyMeansNoEndpoint) {
  // sock_id 0: the kernel had not seen the socket, the tuple is zero but for stale ports.
  auto raw = raw_data_event(0);
  raw.conn.family = 0;
  auto bytes = serialize(raw);
  DataEvent e = decode_or_die(bytes);
  EXPECT_EQ(e.local, Endpoint{});
  EXPECT_EQ(e.remote, Endpoint{});
  EXPECT_EQ(format_endpoint(e.local), "");
}

TEST(DecodeDataEvent, CommFillingTheWholeFieldIsNotOverread) {
  auto raw = raw_data_event(0);
  std::memcpy(raw.comm, "0123456789abcdef", TLSTAP_COMM_LEN);  // no NUL
  auto bytes = serialize(raw);
  EXPECT_EQ(decode_or_die(bytes).comm, "0123456789abcdef");
}

TEST(DecodeDataEvent, TruncatedRecordsAreErrors) {
  auto bytes = serialize(raw_data_event(0));
  for (size_t size = 0; size < sizeof(tlstap_data_event); ++size)
    EXPECT_FALSE(decode_data_event(std::span(bytes).first(size))) << size << " bytes";
}

TEST(DecodeDataEvent, LengthBeyondTheRecordIsAnError) {
  EXPECT_FALSE(decode_data_event(serialize(raw_data_event(6), "hello")));
  EXPECT_FALSE(decode_data_event(serialize(raw_data_event(0xffffffff), "hello")));
  // Within the record but beyond what the kernel ever sends.
  std::string big(TLSTAP_CHUNK_MAX + 1, 'x');
  auto error = decode_data_event(serialize(raw_data_event(TLSTAP_CHUNK_MAX + 1), big));
  ASSERT_FALSE(error);
  EXPECT_NE(error.error().message.find(std::to_string(TLSTAP_CHUNK_MAX + 1)), std::string::npos);
  std::string largest(TLSTAP_CHUNK_MAX, 'y');
  auto bytes = serialize(raw_data_event(TLSTAP_CHUNK_MAX), largest);
  EXPECT_EQ(decode_or_die(bytes).payload.size(), size_t{TLSTAP_CHUNK_MAX});
}

TEST(DecodeDataEvent, BadDirectionOrKindIsAnError) {
  for (tt_u8 direction : {0, 3, 255}) {
    auto raw = raw_data_event(0);
    raw.direction = direction;
    EXPECT_FALSE(decode_data_event(serialize(raw))) << int(direction);
  }
  auto raw = raw_data_event(0);
  raw.kind = TLSTAP_EVENT_EXEC;
  EXPECT_FALSE(decode_data_event(serialize(raw)));
}

TEST(DecodeConnectionClosedEvent, FieldsAndKind) {
  tlstap_conn_closed_event raw{};
  raw.kind = TLSTAP_EVENT_CONN_CLOSED;
  raw.pid = 4242;
  raw.timestamp_ns = 99;
  raw.conn_uid = 0x1122334455667788ULL;
  auto bytes = serialize(raw);
  EXPECT_TRUE(is_connection_closed_event(bytes));
  auto e = decode_connection_closed_event(bytes);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->pid, 4242u);
  EXPECT_EQ(e->boot_time_ns, 99u);
  EXPECT_EQ(e->conn_uid, 0x1122334455667788ULL);
  EXPECT_FALSE(decode_connection_closed_event(std::span(bytes).first(sizeof(raw) - 1)));
  // A data event is not one, nor are too few bytes to hold a kind.
  EXPECT_FALSE(is_connection_closed_event(serialize(raw_data_event(0))));
  EXPECT_FALSE(is_connection_closed_event(std::span(bytes).first(3)));
  EXPECT_FALSE(decode_connection_closed_event(serialize(raw_data_event(0))));
}

tlstap_process_event raw_process_event(tt_u32 kind) {
  tlstap_process_event raw{};
  raw.kind = kind;
  raw.pid = 31337;
  raw.tid = 31338;
  raw.timestamp_ns = 5550001;
  raw.cgroup_id = 0x1234567890;
  raw.netns = 4026531840;
  std::memcpy(raw.comm, "python3", 8);
  std::memcpy(raw.filename, "/usr/bin/python3.11", 20);
  raw.exe_inode = 0xabcdef;
  raw.look = TLSTAP_EXEC_LOOK_AT_LOADER_REPORT;
  return raw;
}

TEST(DecodeProcessEvent, EveryKind) {
  const std::pair<tt_u32, ProcessEventKind> kinds[] = {
      {TLSTAP_EVENT_EXEC, ProcessEventKind::exec},
      {TLSTAP_EVENT_EXIT, ProcessEventKind::exit},
      {TLSTAP_EVENT_LIBS_CHANGED, ProcessEventKind::libs_changed},
      {TLSTAP_EVENT_EXIT_IN_CALL, ProcessEventKind::exit_in_call},
      {TLSTAP_EVENT_CGROUP_MADE, ProcessEventKind::cgroup_made},
      {TLSTAP_EVENT_CGROUP_JOINED, ProcessEventKind::cgroup_joined}};
  for (auto [raw_kind, expected] : kinds) {
    auto bytes = serialize(raw_process_event(raw_kind));  // comm is borrowed from it
    auto e = decode_process_event(bytes);
    ASSERT_TRUE(e) << e.error().message;
    EXPECT_EQ(e->kind, expected);
    EXPECT_EQ(e->pid, 31337u);
    EXPECT_EQ(e->tid, 31338u);
    EXPECT_EQ(e->boot_time_ns, 5550001u);
    EXPECT_EQ(e->cgroup_id, 0x1234567890u);
    EXPECT_EQ(e->netns, 4026531840u);
    EXPECT_EQ(e->comm, "python3");
    EXPECT_EQ(e->filename, "/usr/bin/python3.11");
    EXPECT_EQ(e->exe_inode, 0xabcdefu);
    EXPECT_EQ(e->look, ExecLook::at_loader_report);
  }
  auto raw = raw_process_event(TLSTAP_EVENT_EXEC);
  for (auto [raw_look, expected] :
       {std::pair{TLSTAP_EXEC_LOOK_NOW, ExecLook::now}, std::pair{TLSTAP_EXEC_LOOK_NEVER, ExecLook::never}}) {
    raw.look = raw_look;
    auto bytes = serialize(raw);
    EXPECT_EQ(decode_process_event(bytes)->look, expected);
  }
  raw.look = 3;  // unknown: looked at now, the safe choice
  auto bytes = serialize(raw);
  EXPECT_EQ(decode_process_event(bytes)->look, ExecLook::now);
}

TEST(DecodeProcessEvent, FilenameFillingTheWholeFieldIsNotOverread) {
  auto raw = raw_process_event(TLSTAP_EVENT_EXEC);
  std::memset(raw.filename, 'a', TLSTAP_PATH_MAX);  // no NUL
  auto bytes = serialize(raw);
  auto e = decode_process_event(bytes);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->filename, std::string(TLSTAP_PATH_MAX, 'a'));
}

TEST(DecodeProcessEvent, BadKindOrTruncatedIsAnError) {
  EXPECT_FALSE(decode_process_event(serialize(raw_process_event(TLSTAP_EVENT_DATA))));
  EXPECT_FALSE(decode_process_event(serialize(raw_process_event(0))));
  EXPECT_FALSE(decode_process_event(serialize(raw_process_event(TLSTAP_EVENT_EXIT_IN_CALL + 1))));
  auto bytes = serialize(raw_process_event(TLSTAP_EVENT_EXIT));
  EXPECT_FALSE(decode_process_event(std::span(bytes).first(sizeof(tlstap_process_event) - 1)));
  EXPECT_FALSE(decode_process_event({}));
}

TEST(EventNames, ToString) {
  EXPECT_EQ(to_string(Direction::egress), "egress");
  EXPECT_EQ(to_string(Direction::ingress), "ingress");
  EXPECT_EQ(to_string(Role::unknown), "unknown");
  EXPECT_EQ(to_string(Role::client), "client");
  EXPECT_EQ(to_string(Role::server), "server");
  EXPECT_EQ(to_string(Library::openssl), "openssl");
  EXPECT_EQ(to_string(Library::unknown), "unknown");
  EXPECT_EQ(to_string(TlsFunction::ssl_write), "SSL_write");
  EXPECT_EQ(to_string(TlsFunction::ssl_read), "SSL_read");
  EXPECT_EQ(to_string(TlsFunction::ssl_write_ex), "SSL_write_ex");
  EXPECT_EQ(to_string(TlsFunction::ssl_read_ex), "SSL_read_ex");
  EXPECT_EQ(to_string(TlsFunction::ssl_write_internal), "ssl_write_internal");
  EXPECT_EQ(to_string(TlsFunction::ssl_read_internal), "ssl_read_internal");
  EXPECT_EQ(to_string(TlsFunction::unknown), "unknown");
}

TEST(FormatEndpoint, Ipv4Ipv6AndUnknown) {
  EXPECT_EQ(format_endpoint(ipv4_endpoint("127.0.0.1", 443)), "127.0.0.1:443");
  EXPECT_EQ(format_endpoint(ipv4_endpoint("255.255.255.255", 65535)), "255.255.255.255:65535");
  EXPECT_EQ(format_endpoint(ipv6_endpoint("::1", 443)), "[::1]:443");
  EXPECT_EQ(format_endpoint(ipv6_endpoint("fe80::1:2", 0)), "[fe80::1:2]:0");
  EXPECT_EQ(format_endpoint(Endpoint{}), "");
  EXPECT_EQ(format_endpoint(Endpoint{12345, {}, 80}), "");  // not an address family
}

}  // namespace
}  // namespace tlstap
