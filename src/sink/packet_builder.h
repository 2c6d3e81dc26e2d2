// Packet bytes for the pcapng sink. Pure functions.
//  - exported PDUs (LINKTYPE_WIRESHARK_UPPER_PDU): tags naming the dissector
//    and the addresses, then the plaintext; Wireshark dissects it with no
//    option set, whatever the port.
//  - raw IPv4/IPv6 + TCP packets (LINKTYPE_RAW), for tools that need a TCP layer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "event/event.h"

namespace tlstap {

std::string exported_pdu(std::string_view dissector, const Endpoint& source, const Endpoint& destination,
                         std::span<const std::byte> payload);

constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpAck = 0x10;

// source and destination must be of the same family.
std::string tcp_packet(const Endpoint& source, const Endpoint& destination, uint32_t seq, uint32_t ack,
                       uint8_t flags, std::span<const std::byte> payload);

}  // namespace tlstap
