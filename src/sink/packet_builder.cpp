#include "sink/packet_builder.h"

#include <sys/socket.h>

namespace tlstap {
namespace {

constexpr uint16_t kTagEnd = 0;
constexpr uint16_t kTagDissectorName = 12;
constexpr uint16_t kTagIpv4Source = 20;
constexpr uint16_t kTagIpv4Destination = 21;
constexpr uint16_t kTagIpv6Source = 22;
constexpr uint16_t kTagIpv6Destination = 23;
constexpr uint16_t kTagPortType = 24;
constexpr uint16_t kTagSourcePort = 25;
constexpr uint16_t kTagDestinationPort = 26;
constexpr uint32_t kPortTypeTcp = 2;

void put_be16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

void put_be32(std::string& out, uint32_t v) {
  put_be16(out, static_cast<uint16_t>(v >> 16));
  put_be16(out, static_cast<uint16_t>(v));
}

void append(std::string& out, std::span<const std::byte> bytes) {
  out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Value padded to 4 bytes; the length counts the padding (Wireshark 4.0
// reads the next tag at the stated length).
void put_tag(std::string& out, uint16_t tag, std::string_view value) {
  size_t padded = (value.size() + 3) / 4 * 4;
  put_be16(out, tag);
  put_be16(out, static_cast<uint16_t>(padded));
  out += value;
  out.append(padded - value.size(), '\0');
}

void put_u32_tag(std::string& out, uint16_t tag, uint32_t value) {
  std::string bytes;
  put_be32(bytes, value);
  put_tag(out, tag, bytes);
}

std::string_view address_bytes(const Endpoint& e) {
  return {reinterpret_cast<const char*>(e.address.data()), e.family == AF_INET6 ? 16u : 4u};
}

// RFC 1071 ones' complement sum, folded.
uint32_t checksum_add(uint32_t sum, std::string_view bytes) {
  for (size_t i = 0; i + 1 < bytes.size(); i += 2)
    sum += (static_cast<uint8_t>(bytes[i]) << 8) | static_cast<uint8_t>(bytes[i + 1]);
  if (bytes.size() % 2) sum += static_cast<uint8_t>(bytes.back()) << 8;
  return sum;
}

uint16_t checksum_finish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

std::string exported_pdu(std::string_view dissector, const Endpoint& source, const Endpoint& destination,
                         std::span<const std::byte> payload) {
  std::string out;
  put_tag(out, kTagDissectorName, dissector);
  if (source.family == AF_INET || source.family == AF_INET6) {
    bool v6 = source.family == AF_INET6;
    put_tag(out, v6 ? kTagIpv6Source : kTagIpv4Source, address_bytes(source));
    put_tag(out, v6 ? kTagIpv6Destination : kTagIpv4Destination, address_bytes(destination));
    put_u32_tag(out, kTagPortType, kPortTypeTcp);
    put_u32_tag(out, kTagSourcePort, source.port);
    put_u32_tag(out, kTagDestinationPort, destination.port);
  }
  put_be16(out, kTagEnd);
  put_be16(out, 0);
  append(out, payload);
  return out;
}

std::string tcp_packet(const Endpoint& source, const Endpoint& destination, uint32_t seq, uint32_t ack,
                       uint8_t flags, std::span<const std::byte> payload) {
  std::string tcp;
  put_be16(tcp, source.port);
  put_be16(tcp, destination.port);
  put_be32(tcp, seq);
  put_be32(tcp, ack);
  put_be16(tcp, static_cast<uint16_t>((5 << 12) | flags));  // 20-byte header, no options
  put_be16(tcp, 65535);                                     // window
  put_be16(tcp, 0);                                         // checksum, below
  put_be16(tcp, 0);                                         // urgent pointer
  append(tcp, payload);

  // The pseudo-header differs by family; the checksum covers it and the segment.
  std::string_view src = address_bytes(source), dst = address_bytes(destination);
  uint32_t sum = checksum_add(checksum_add(0, src), dst) + 6 /* TCP */ + static_cast<uint32_t>(tcp.size());
  uint16_t tcp_sum = checksum_finish(checksum_add(sum, tcp));
  tcp[16] = static_cast<char>(tcp_sum >> 8);
  tcp[17] = static_cast<char>(tcp_sum);

  std::string ip;
  if (source.family == AF_INET6) {
    put_be32(ip, 6u << 28);
    put_be16(ip, static_cast<uint16_t>(tcp.size()));
    ip += static_cast<char>(6);   // next header: TCP
    ip += static_cast<char>(64);  // hop limit
    ip += src;
    ip += dst;
  } else {
    put_be16(ip, 0x4500);  // version 4, 20-byte header
    put_be16(ip, static_cast<uint16_t>(20 + tcp.size()));
    put_be32(ip, 0x00004000);  // id 0, don't fragment
    ip += static_cast<char>(64);
    ip += static_cast<char>(6);
    put_be16(ip, 0);
    ip += src;
    ip += dst;
    uint16_t ip_sum = checksum_finish(checksum_add(0, ip));
    ip[10] = static_cast<char>(ip_sum >> 8);
    ip[11] = static_cast<char>(ip_sum);
  }
  return ip + tcp;
}

}  // namespace tlstap
