#include "conn/listening_ports.h"

#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <sstream>

#include "common/proc.h"

namespace tlstap {
namespace {

constexpr uint32_t kTcpListen = 0x0A;

bool parse_hex(std::string_view text, uint32_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// "0100007F:1F90": the address is the kernel's words printed in host order.
bool parse_endpoint(std::string_view text, uint16_t family, Endpoint& out) {
  size_t colon = text.find(':');
  size_t words = family == AF_INET ? 1 : 4;
  if (colon != words * 8) return false;
  for (size_t i = 0; i < words; ++i) {
    uint32_t word = 0;
    if (!parse_hex(text.substr(i * 8, 8), word)) return false;
    for (size_t b = 0; b < 4; ++b) out.address[i * 4 + b] = static_cast<uint8_t>(word >> (8 * b));
  }
  uint32_t port = 0;
  if (!parse_hex(text.substr(colon + 1), port) || port > 0xffff) return false;
  out.family = family;
  out.port = static_cast<uint16_t>(port);
  static constexpr uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == AF_INET6 && std::equal(std::begin(kV4Mapped), std::end(kV4Mapped), out.address.begin())) {
    // A listener bound to ::ffff:a.b.c.d (Java's default sockets) accepts
    // connections whose addresses decode as plain IPv4.
    std::copy_n(out.address.begin() + 12, 4, out.address.begin());
    std::fill(out.address.begin() + 4, out.address.end(), 0);
    out.family = AF_INET;
  }
  return true;
}

bool is_unspecified(const Endpoint& e) {
  size_t len = e.family == AF_INET ? 4 : 16;
  return std::all_of(e.address.begin(), e.address.begin() + len, [](uint8_t b) { return b == 0; });
}

}  // namespace

std::vector<Endpoint> parse_listening_sockets(std::string_view text, uint16_t family) {
  std::vector<Endpoint> listening;
  size_t line_start = text.find('\n');  // skip the header
  while (line_start != std::string_view::npos && line_start + 1 < text.size()) {
    size_t eol = text.find('\n', line_start + 1);
    std::string_view line = text.substr(line_start + 1, eol - line_start - 1);
    line_start = eol;
    std::istringstream fields{std::string(line)};
    std::string slot, local, remote, state;
    if (!(fields >> slot >> local >> remote >> state)) continue;
    uint32_t st = 0;
    Endpoint e;
    if (parse_hex(state, st) && st == kTcpListen && parse_endpoint(local, family, e)) listening.push_back(e);
  }
  return listening;
}

bool is_listening_endpoint(const std::vector<Endpoint>& listening, const Endpoint& local) {
  return std::any_of(listening.begin(), listening.end(), [&](const Endpoint& l) {
    return l.port == local.port && (l == local || is_unspecified(l));
  });
}

bool ListeningPorts::is_listening(uint32_t pid, const Endpoint& local) {
  auto now = std::chrono::steady_clock::now();
  auto it = cache_.find(pid);
  if (it == cache_.end() || now - it->second.read_at > std::chrono::seconds(1)) {
    std::string base = "/proc/" + std::to_string(pid) + "/net/";
    Snapshot snapshot{now, parse_listening_sockets(read_text_file(base + "tcp"), AF_INET)};
    auto v6 = parse_listening_sockets(read_text_file(base + "tcp6"), AF_INET6);
    snapshot.listening.insert(snapshot.listening.end(), v6.begin(), v6.end());
    it = cache_.insert_or_assign(pid, std::move(snapshot)).first;
  }
  return is_listening_endpoint(it->second.listening, local);
}

}  // namespace tlstap
