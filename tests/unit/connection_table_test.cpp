// ConnectionTable: role resolution and gap detection per (pid, SSL*).
#include "conn/connection_table.h"

#include <gtest/gtest.h>

#include <array>

#include "test_support.h"

namespace tlstap {
namespace {

constexpr uint32_t kPid = 700;
constexpr uint64_t kConn = 0x5000;
constexpr uint64_t kSock = 0xffff0001;

// Chunk contents do not matter here, only their length.
const std::array<std::byte, 4096> kZeros{};

DataEvent chunk(Direction direction, uint64_t stream_offset, size_t len, uint64_t sock_id = kSock,
                uint64_t conn_id = kConn, uint32_t pid = kPid) {
  DataEvent e = test::sample_data_event(std::span(kZeros).first(len));
  e.pid = pid;
  e.conn_id = conn_id;
  e.sock_id = sock_id;
  e.direction = direction;
  e.stream_offset = stream_offset;
  e.role = Role::unknown;
  return e;
}

// Records what the table asks, and answers `listening`.
struct FakeListeningCheck {
  bool listening = false;
  std::vector<std::pair<uint32_t, Endpoint>> calls;

  ConnectionTable::ListeningCheck callback() {
    return [this](uint32_t pid, const Endpoint& local) {
      calls.emplace_back(pid, local);
      return listening;
    };
  }
};

class ConnectionTableTest : public testing::Test {
 protected:
  FakeListeningCheck check;
  ConnectionTable table{check.callback()};
};

TEST_F(ConnectionTableTest, RoleFromTheKernelWins) {
  auto e = chunk(Direction::egress, 0, 10);
  e.role = Role::server;
  EXPECT_EQ(table.observe(e).role, Role::server);
  EXPECT_TRUE(check.calls.empty());
  e.role = Role::client;
  EXPECT_EQ(table.observe(e).role, Role::client);
}

TEST_F(ConnectionTableTest, ListeningLocalEndpointMeansServer) {
  check.listening = true;
  auto e = chunk(Direction::ingress, 0, 10);
  EXPECT_EQ(table.observe(e).role, Role::server);
  ASSERT_EQ(check.calls.size(), 1u);
  EXPECT_EQ(check.calls[0].first, kPid);
  EXPECT_EQ(check.calls[0].second, e.local);
  // Resolved once per connection: /proc is not read for every chunk.
  EXPECT_EQ(table.observe(chunk(Direction::egress, 0, 10)).role, Role::server);
  EXPECT_EQ(check.calls.size(), 1u);
}

TEST_F(ConnectionTableTest, NotListeningMeansClient) {
  EXPECT_EQ(table.observe(chunk(Direction::egress, 0, 10)).role, Role::client);
  EXPECT_EQ(check.calls.size(), 1u);
}

TEST_F(ConnectionTableTest, UnknownLocalEndpointLeavesRoleUnknown) {
  auto e = chunk(Direction::egress, 0, 10, /*sock_id=*/0);
  e.local = Endpoint{};
  EXPECT_EQ(table.observe(e).role, Role::unknown);
  EXPECT_TRUE(check.calls.empty());
  // Once the kernel knows the socket, the role is resolved.
  EXPECT_EQ(table.observe(chunk(Direction::egress, 10, 10)).role, Role::client);
}

TEST_F(ConnectionTableTest, GapsAreCountedPerDirection) {
  EXPECT_EQ(table.observe(chunk(Direction::egress, 0, 100)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 50)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 200, 10)).gap_before, 50u);
  // The other direction has its own stream.
  EXPECT_EQ(table.observe(chunk(Direction::ingress, 0, 10)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::ingress, 30, 10)).gap_before, 20u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 210, 1)).gap_before, 0u);
}

TEST_F(ConnectionTableTest, RepeatedChunkIsNoGapAndDoesNotRewind) {
  EXPECT_EQ(table.observe(chunk(Direction::ingress, 0, 100)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::ingress, 40, 20)).gap_before, 0u);
  // Still expecting 100, not 60.
  EXPECT_EQ(table.observe(chunk(Direction::ingress, 110, 1)).gap_before, 10u);
}

TEST_F(ConnectionTableTest, NewSocketUnderTheSameSslResetsTheConnection) {
  // A reused SSL*: the kernel restarts the offsets at 0 and the role is asked again.
  table.observe(chunk(Direction::egress, 0, 100, kSock));
  table.observe(chunk(Direction::ingress, 0, 100, kSock));
  check.listening = true;
  EXPECT_EQ(table.observe(chunk(Direction::egress, 0, 10, kSock + 1)).role, Role::server);
  EXPECT_EQ(check.calls.size(), 2u);
  EXPECT_EQ(table.observe(chunk(Direction::ingress, 0, 10, kSock + 1)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 15, 10, kSock + 1)).gap_before, 5u);
  EXPECT_EQ(table.size(), 1u);
}

TEST_F(ConnectionTableTest, FirstSocketSeenLateKeepsTheStream) {
  // Data reported before the kernel saw the socket belongs to the same stream.
  table.observe(chunk(Direction::egress, 0, 100, /*sock_id=*/0));
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 10, kSock)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 120, 10, kSock)).gap_before, 10u);
}

TEST_F(ConnectionTableTest, ConnectionsAreKeyedByPidAndSsl) {
  table.observe(chunk(Direction::egress, 0, 100, kSock, kConn, 1));
  // Same SSL* value in another process, another SSL* in the same process.
  EXPECT_EQ(table.observe(chunk(Direction::egress, 0, 10, kSock, kConn, 2)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 0, 10, kSock + 1, kConn + 8, 1)).gap_before, 0u);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 10, kSock, kConn, 1)).gap_before, 0u);
}

TEST_F(ConnectionTableTest, ForgetProcessDropsOnlyItsConnections) {
  table.observe(chunk(Direction::egress, 0, 100, kSock, kConn, 1));
  table.observe(chunk(Direction::egress, 0, 100, kSock, kConn + 8, 1));
  table.observe(chunk(Direction::egress, 0, 100, kSock, kConn, 2));
  ASSERT_EQ(table.size(), 3u);
  table.forget_process(1);
  EXPECT_EQ(table.size(), 1u);
  table.forget_process(99);
  EXPECT_EQ(table.size(), 1u);
  // pid 2 keeps its stream position; pid 1's connection starts afresh.
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 10, kSock, kConn, 2)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 10, kSock, kConn, 1)).gap_before, 100u);
}

}  // namespace
}  // namespace tlstap
