// pcapng blocks as bytes (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html),
// little-endian, timestamps in nanoseconds. Pure functions: the sink decides
// what goes where, these only lay out the blocks.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tlstap::pcapng {

constexpr uint32_t kSectionHeaderBlock = 0x0A0D0D0A;
constexpr uint32_t kInterfaceDescriptionBlock = 1;
constexpr uint32_t kEnhancedPacketBlock = 6;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;

constexpr uint16_t kLinktypeRaw = 101;       // IPv4/IPv6 packets, no link layer
constexpr uint16_t kLinktypeUpperPdu = 252;  // Wireshark's exported PDUs

struct SectionInfo {
  std::string hardware;     // shb_hardware
  std::string os;           // shb_os
  std::string application;  // shb_userappl
  std::string comment;      // opt_comment
};

std::string section_header(const SectionInfo& info);
// One interface; timestamps of its packets are in nanoseconds (if_tsresol 9).
std::string interface_description(uint16_t linktype, std::string_view name);
std::string enhanced_packet(uint32_t interface_id, uint64_t unix_time_ns, std::span<const std::byte> packet,
                            std::string_view comment);

}  // namespace tlstap::pcapng
