// Listening sockets from /proc/net/tcp{,6} text: samples written from the
// format in proc(5), and the real files with sockets this test opens.
#include "conn/listening_ports.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/unique_fd.h"
#include "test_support.h"

namespace tlstap {
namespace {

using test::ipv4_endpoint;
using test::ipv6_endpoint;

constexpr const char* kHeader =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
constexpr const char* kListen = "0A";
constexpr const char* kEstablished = "01";

// One row as the kernel prints it: addresses are the in-memory 32-bit words
// printed as hex numbers, so little-endian hosts show 127.0.0.1 as 0100007F.
std::string row(int slot, std::string_view local, std::string_view remote, std::string_view state) {
  return fmt::format(
      "{:4}: {} {} {} 00000000:00000000 00:00000000 00000000  1000        0 {} 1 "
      "0000000000000000 100 0 0 10 0\n",
      slot, local, remote, state, 40000 + slot);
}

TEST(ParseListeningSockets, Ipv4Sample) {
  std::string text = kHeader;
  text += row(0, "0100007F:1F90", "00000000:0000", kListen);       // 127.0.0.1:8080
  text += row(1, "00000000:01BB", "00000000:0000", kListen);       // 0.0.0.0:443
  text += row(2, "0100007F:1F90", "0100007F:C350", kEstablished);  // an accepted connection
  text += row(3, "0201A8C0:D431", "22D8B85D:01BB", kEstablished);  // 192.168.1.2 -> 93.184.216.34
  EXPECT_EQ(parse_listening_sockets(text, AF_INET),
            (std::vector<Endpoint>{ipv4_endpoint("127.0.0.1", 8080), ipv4_endpoint("0.0.0.0", 443)}));
}

TEST(ParseListeningSockets, Ipv6Sample) {
  std::string text = kHeader;
  text += row(0, "00000000000000000000000001000000:1F90", "00000000000000000000000000000000:0000", kListen);
  text += row(1, "00000000000000000000000000000000:01BB", "00000000000000000000000000000000:0000", kListen);
  text += row(2, "B80D0120000000000000000042000000:0050", "00000000000000000000000000000000:0000", kListen);
  text +=
      row(3, "00000000000000000000000001000000:1F90", "00000000000000000000000001000000:E2A4", kEstablished);
  EXPECT_EQ(parse_listening_sockets(text, AF_INET6),
            (std::vector<Endpoint>{ipv6_endpoint("::1", 8080), ipv6_endpoint("::", 443),
                                   ipv6_endpoint("2001:db8::42", 80)}));
}

TEST(ParseListeningSockets, MalformedRowsAreSkipped) {
  std::string text = kHeader;
  text += "garbage\n";
  text += row(0, "0100007F", "00000000:0000", kListen);                   // no port
  text += row(1, "0100007G:1F90", "00000000:0000", kListen);              // not hex
  text += row(2, "0100007F:1FFFF", "00000000:0000", kListen);             // port beyond 16 bits
  text += row(3, "00000000000000000000000001000000:1F90", "0", kListen);  // a tcp6 row in tcp
  text += row(4, "0100007F:0016", "00000000:0000", "XY");
  text += "   5: 0100007F:0017 00000000:0000 0A";  // last line without newline is still a row
  EXPECT_EQ(parse_listening_sockets(text, AF_INET), (std::vector<Endpoint>{ipv4_endpoint("127.0.0.1", 23)}));
  EXPECT_TRUE(parse_listening_sockets("", AF_INET).empty());
  EXPECT_TRUE(parse_listening_sockets(kHeader, AF_INET).empty());
}

TEST(IsListeningEndpoint, ExactOrWildcardAddress) {
  std::vector<Endpoint> listening = {ipv4_endpoint("127.0.0.1", 8080), ipv4_endpoint("0.0.0.0", 443),
                                     ipv6_endpoint("::1", 9000)};
  EXPECT_TRUE(is_listening_endpoint(listening, ipv4_endpoint("127.0.0.1", 8080)));
  EXPECT_FALSE(is_listening_endpoint(listening, ipv4_endpoint("10.0.0.1", 8080)));
  EXPECT_TRUE(is_listening_endpoint(listening, ipv4_endpoint("10.0.0.1", 443)));
  EXPECT_FALSE(is_listening_endpoint(listening, ipv4_endpoint("10.0.0.1", 444)));
  EXPECT_TRUE(is_listening_endpoint(listening, ipv6_endpoint("::1", 9000)));
  EXPECT_FALSE(is_listening_endpoint(listening, ipv6_endpoint("::2", 9000)));
  EXPECT_FALSE(is_listening_endpoint({}, ipv4_endpoint("127.0.0.1", 8080)));
}

TEST(IsListeningEndpoint, DualStackWildcardAcceptsIpv4) {
  // [::]:443 accepts IPv4 too; those connections decode as plain IPv4.
  EXPECT_TRUE(is_listening_endpoint({ipv6_endpoint("::", 443)}, ipv4_endpoint("192.0.2.1", 443)));
}

TEST(IsListeningEndpoint, V4MappedListenerAcceptsIpv4) {
  // An AF_INET6 socket bound to one IPv4 address (Java's default for "127.0.0.1")
  // is listed in tcp6 as ::ffff:127.0.0.1; its connections decode as IPv4.
  std::string text = std::string(kHeader) + row(0, "0000000000000000FFFF00000100007F:1F90",
                                                "00000000000000000000000000000000:0000", kListen);
  auto listening = parse_listening_sockets(text, AF_INET6);
  ASSERT_EQ(listening, (std::vector<Endpoint>{ipv4_endpoint("127.0.0.1", 8080)}));
  EXPECT_FALSE(is_listening_endpoint(listening, ipv4_endpoint("127.0.0.2", 8080)));
  EXPECT_TRUE(is_listening_endpoint(listening, ipv4_endpoint("127.0.0.1", 8080)));
}

// --- The real /proc files, with sockets this process owns ---------------------

struct ListeningSocket {
  UniqueFd fd;
  Endpoint endpoint;
};

// Listens on an ephemeral port of `address`; nullopt when the family is unavailable.
std::optional<ListeningSocket> listen_on(int family, const char* address) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, address, &sin->sin_addr);
    length = sizeof(*sin);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, address, &sin6->sin6_addr);
    length = sizeof(*sin6);
  }
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      listen(fd.get(), 1) != 0 || getsockname(fd.get(), reinterpret_cast<sockaddr*>(&storage), &length) != 0)
    return std::nullopt;
  uint16_t port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&storage)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  Endpoint endpoint = family == AF_INET ? ipv4_endpoint(address, port) : ipv6_endpoint(address, port);
  return ListeningSocket{std::move(fd), endpoint};
}

TEST(ProcNetTcp, FindsOurIpv4Listener) {
  auto server = listen_on(AF_INET, "127.0.0.1");
  ASSERT_TRUE(server);
  auto listening = parse_listening_sockets(test::read_text_file("/proc/self/net/tcp"), AF_INET);
  EXPECT_NE(std::find(listening.begin(), listening.end(), server->endpoint), listening.end());
  for (const auto& e : listening) EXPECT_EQ(e.family, AF_INET);
  EXPECT_TRUE(ListeningPorts().is_listening(getpid(), server->endpoint));

  // Our own client side of a connection is not a listener.
  UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server->endpoint.port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ASSERT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  sockaddr_in from{};
  socklen_t length = sizeof(from);
  ASSERT_EQ(getsockname(client.get(), reinterpret_cast<sockaddr*>(&from), &length), 0);
  EXPECT_FALSE(ListeningPorts().is_listening(getpid(), ipv4_endpoint("127.0.0.1", ntohs(from.sin_port))));
}

TEST(ProcNetTcp, FindsOurIpv6Listener) {
  auto server = listen_on(AF_INET6, "::1");
  if (!server) GTEST_SKIP() << "no IPv6 loopback here";
  auto listening = parse_listening_sockets(test::read_text_file("/proc/self/net/tcp6"), AF_INET6);
  EXPECT_NE(std::find(listening.begin(), listening.end(), server->endpoint), listening.end());
  EXPECT_TRUE(ListeningPorts().is_listening(getpid(), server->endpoint));
}

TEST(ProcNetTcp, UnknownProcessHasNoListeners) {
  // pid 0 has no /proc entry: nothing to read, nothing listening.
  EXPECT_FALSE(ListeningPorts().is_listening(0, ipv4_endpoint("127.0.0.1", 22)));
}

}  // namespace
}  // namespace tlstap
