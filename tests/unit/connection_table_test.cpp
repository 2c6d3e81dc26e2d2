// ConnectionTable: role resolution and gap detection per connection (pid,
// conn_uid), and connections the kernel's table forgot followed on.
#include "conn/connection_table.h"

#include <gtest/gtest.h>

#include <array>

#include "test_support.h"

namespace tlstap {
namespace {

constexpr uint32_t kPid = 700;
constexpr uint64_t kUid = 0x5000;  // the kernel's id for one connection
constexpr uint64_t kSock = 0xffff0001;

// Chunk contents do not matter here, only their length.
const std::array<std::byte, 4096> kZeros{};

DataEvent chunk(Direction direction, uint64_t stream_offset, size_t len, uint64_t conn_uid = kUid,
                uint32_t pid = kPid, uint64_t sock_id = kSock) {
  DataEvent e = test::sample_data_event(std::span(kZeros).first(len));
  e.pid = pid;
  e.conn_id = 0x7f0000 + conn_uid;  // each connection its own SSL*, unless a test says otherwise
  e.conn_uid = conn_uid;
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
  // sock_id 0: the kernel has not seen the socket yet.
  auto e = chunk(Direction::egress, 0, 10, kUid, kPid, /*sock_id=*/0);
  e.local = Endpoint{};
  EXPECT_EQ(table.observe(e).role, Role::unknown);
  EXPECT_TRUE(check.calls.empty());
  // Once it has, the role is resolved and the stream goes on.
  ConnectionView later = table.observe(chunk(Direction::egress, 10, 10));
  EXPECT_EQ(later.role, Role::client);
  EXPECT_EQ(later.gap_before, 0u);
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

TEST_F(ConnectionTableTest, ReusedSslIsANewConnection) {
  // A freed SSL* reused for another connection gets a new conn_uid from the
  // kernel, whose offsets restart at 0; the role is asked again.
  auto first = chunk(Direction::egress, 0, 100, kUid);
  table.observe(first);
  table.observe(chunk(Direction::ingress, 0, 100, kUid));
  check.listening = true;
  auto second = chunk(Direction::egress, 0, 10, kUid + 1, kPid, kSock + 1);
  second.conn_id = first.conn_id;
  EXPECT_EQ(table.observe(second).role, Role::server);
  EXPECT_EQ(check.calls.size(), 2u);
  EXPECT_EQ(table.observe(chunk(Direction::ingress, 0, 10, kUid + 1)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 15, 10, kUid + 1)).gap_before, 5u);
}

TEST_F(ConnectionTableTest, ConnectionsAreKeyedByPidAndConnUid) {
  table.observe(chunk(Direction::egress, 0, 100, kUid, 1));
  // Another connection in the same process, and the same uid under another pid.
  EXPECT_EQ(table.observe(chunk(Direction::egress, 0, 10, kUid + 1, 1)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 0, 10, kUid, 2)).gap_before, 0u);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 10, kUid, 1)).gap_before, 0u);
}

TEST_F(ConnectionTableTest, ForgetProcessDropsOnlyItsConnections) {
  table.observe(chunk(Direction::egress, 0, 100, kUid, 1));
  table.observe(chunk(Direction::egress, 0, 100, kUid + 1, 1));
  table.observe(chunk(Direction::egress, 0, 100, kUid + 2, 2));
  ASSERT_EQ(table.size(), 3u);
  table.forget_process(1);
  EXPECT_EQ(table.size(), 1u);
  table.forget_process(99);
  EXPECT_EQ(table.size(), 1u);
  // pid 2 keeps its stream position; pid 1's connection starts afresh.
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 10, kUid + 2, 2)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 10, kUid, 1)).gap_before, 100u);
}

TEST(ConnectionTable, LeastRecentlyObservedEvictedPastTheCap) {
  FakeListeningCheck check;
  ConnectionTable table(check.callback(), /*max_connections=*/2);
  table.observe(chunk(Direction::egress, 0, 100, kUid));
  table.observe(chunk(Direction::egress, 0, 100, kUid + 1));
  table.observe(chunk(Direction::egress, 100, 10, kUid));     // kUid is now the most recent
  table.observe(chunk(Direction::egress, 0, 100, kUid + 2));  // evicts kUid + 1
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.evicted(), 1u);
  // The one kept goes on where it was; the evicted one starts afresh, and
  // evicts kUid + 2, which was observed before kUid.
  EXPECT_EQ(table.observe(chunk(Direction::egress, 110, 10, kUid)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 10, kUid + 1)).gap_before, 100u);
  EXPECT_EQ(table.evicted(), 2u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 120, 10, kUid)).gap_before, 0u);
  EXPECT_EQ(table.observe(chunk(Direction::egress, 100, 10, kUid + 2)).gap_before, 100u);
  EXPECT_EQ(table.size(), 2u);
}

TEST(ConnectionTable, ForgottenConnectionsMakeRoomWithoutEviction) {
  FakeListeningCheck check;
  ConnectionTable table(check.callback(), /*max_connections=*/2);
  table.observe(chunk(Direction::egress, 0, 100, kUid, 1));
  table.observe(chunk(Direction::egress, 0, 100, kUid + 1, 2));
  table.close({1, kUid});
  table.observe(chunk(Direction::egress, 0, 100, kUid + 2, 2));
  table.forget_process(2);
  table.observe(chunk(Direction::egress, 0, 100, kUid + 3, 3));
  table.observe(chunk(Direction::egress, 0, 100, kUid + 4, 3));
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.evicted(), 0u);
}

// The kernel's LRU table forgot a connection: its next call comes with a new
// conn_uid and offsets from 0, on the same SSL*, socket and addresses.
DataEvent forgotten(const DataEvent& known, uint64_t new_uid, Direction direction, uint64_t offset,
                    size_t len) {
  DataEvent e = chunk(direction, offset, len, new_uid);
  e.conn_id = known.conn_id;
  return e;
}

TEST_F(ConnectionTableTest, AConnectionTheKernelForgotIsFollowedOn) {
  const DataEvent known = chunk(Direction::egress, 0, 100);
  table.observe(known);
  table.observe(chunk(Direction::ingress, 0, 50));
  ConnectionView view = table.observe(forgotten(known, kUid + 9, Direction::egress, 0, 10));
  EXPECT_EQ(view.conn_uid, kUid);
  EXPECT_EQ(view.stream_offset, 100u);
  EXPECT_EQ(view.gap_before, 0u);
  EXPECT_EQ(view.role, Role::client);
  EXPECT_EQ(table.resumed(), 1u);
  view = table.observe(forgotten(known, kUid + 9, Direction::ingress, 0, 5));
  EXPECT_EQ(view.conn_uid, kUid);
  EXPECT_EQ(view.stream_offset, 50u);
  // Forgotten again: continued from where the first resumption got to.
  table.observe(forgotten(known, kUid + 9, Direction::egress, 10, 10));
  view = table.observe(forgotten(known, kUid + 20, Direction::egress, 0, 1));
  EXPECT_EQ(view.conn_uid, kUid);
  EXPECT_EQ(view.stream_offset, 120u);
  EXPECT_EQ(table.resumed(), 2u);
  EXPECT_EQ(table.size(), 1u);
  // Its close comes under the kernel's latest uid, and ends the first.
  EXPECT_EQ(table.close({kPid, kUid + 20}), (ConnectionKey{kPid, kUid}));
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(ConnectionTableTest, ANewConnectionOnAnSslIsNotTakenForAForgottenOne) {
  // Each case on an SSL* of its own, whose first connection the table knows.
  auto known = [&](uint64_t uid) {
    DataEvent first = chunk(Direction::egress, 0, 100, uid);
    table.observe(first);
    return first;
  };
  // Another socket under the same SSL*.
  DataEvent other_socket = forgotten(known(100), 101, Direction::egress, 0, 10);
  other_socket.sock_id = kSock + 1;
  EXPECT_EQ(table.observe(other_socket).conn_uid, 101u);
  // The same socket address holding another connection (its port differs).
  DataEvent reused_socket = forgotten(known(200), 201, Direction::egress, 0, 10);
  reused_socket.local.port += 1;
  EXPECT_EQ(table.observe(reused_socket).conn_uid, 201u);
  // The socket not known yet.
  DataEvent no_socket = forgotten(known(300), 301, Direction::egress, 0, 10);
  no_socket.sock_id = 0;
  EXPECT_EQ(table.observe(no_socket).conn_uid, 301u);
  // Closed, then the same SSL* on the same socket again.
  DataEvent after_close = forgotten(known(400), 401, Direction::egress, 0, 10);
  table.close({kPid, 400});
  EXPECT_EQ(table.observe(after_close).conn_uid, 401u);
  EXPECT_EQ(table.resumed(), 0u);
  // None of them but what they changed kept them apart: the same, unchanged, is followed on.
  EXPECT_EQ(table.observe(forgotten(known(500), 501, Direction::egress, 0, 10)).conn_uid, 500u);
  EXPECT_EQ(table.resumed(), 1u);
}

TEST(ConnectionTable, AForgottenConnectionWhoseStateWentHereTooStartsAfresh) {
  FakeListeningCheck check;
  ConnectionTable table(check.callback(), /*max_connections=*/2);
  const DataEvent first = chunk(Direction::egress, 0, 100, kUid);
  table.observe(first);
  EXPECT_EQ(table.observe(forgotten(first, kUid + 1, Direction::egress, 0, 10)).conn_uid, kUid);
  // Two other connections push the first's state out of this table.
  table.observe(chunk(Direction::egress, 0, 10, kUid + 10));
  table.observe(chunk(Direction::egress, 0, 10, kUid + 11));
  ConnectionView view = table.observe(forgotten(first, kUid + 1, Direction::egress, 10, 10));
  EXPECT_EQ(view.conn_uid, kUid + 1);
  EXPECT_EQ(view.stream_offset, 10u);
  EXPECT_EQ(view.gap_before, 0u);  // its first 10 bytes went out under kUid
  EXPECT_EQ(table.observe(forgotten(first, kUid + 1, Direction::ingress, 40, 5)).gap_before, 0u);
  EXPECT_EQ(table.observe(forgotten(first, kUid + 1, Direction::egress, 25, 5)).gap_before, 5u);
}

TEST_F(ConnectionTableTest, OpenedBeforeCaptureIsDecidedOncePerConnection) {
  auto no_socket = chunk(Direction::egress, 0, 10, kUid, kPid, 0);
  no_socket.local = Endpoint{};
  EXPECT_FALSE(table.observe(no_socket).opened_before_capture);  // not known yet
  EXPECT_TRUE(
      table.observe(chunk(Direction::egress, 10, 10)).opened_before_capture);  // no role from the kernel
  auto with_role = chunk(Direction::egress, 20, 10);
  with_role.role = Role::client;  // the kernel's role came back (its table forgot and relearnt it)
  EXPECT_TRUE(table.observe(with_role).opened_before_capture);
  auto opened_since = chunk(Direction::egress, 0, 10, kUid + 1);
  opened_since.role = Role::server;
  EXPECT_FALSE(table.observe(opened_since).opened_before_capture);
}

TEST(ConnectionTable, ClosedConnectionsLeaveALongLivedOneFollowable) {
  FakeListeningCheck check;
  ConnectionTable table(check.callback(), /*max_connections=*/2);
  const DataEvent long_lived = chunk(Direction::egress, 0, 100, kUid);
  table.observe(long_lived);
  // Short connections come and go (their own SSL*s) while it stays open.
  for (uint64_t uid : {kUid + 1, kUid + 2, kUid + 3}) {
    table.observe(chunk(Direction::egress, 0, 10, uid));
    table.close({kPid, uid});
  }
  EXPECT_EQ(table.observe(forgotten(long_lived, kUid + 9, Direction::egress, 0, 10)).conn_uid, kUid);
}

}  // namespace
}  // namespace tlstap
