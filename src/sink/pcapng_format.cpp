#include "sink/pcapng_format.h"

#include <cstring>

namespace tlstap::pcapng {
namespace {

constexpr uint16_t kOptEndOfOpt = 0;
constexpr uint16_t kOptComment = 1;
constexpr uint16_t kShbHardware = 2;
constexpr uint16_t kShbOs = 3;
constexpr uint16_t kShbUserAppl = 4;
constexpr uint16_t kIfName = 2;
constexpr uint16_t kIfTsresol = 9;

template <class T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // pcapng readers accept either order; we write the host's (LE)
  out.append(bytes, sizeof(T));
}

void pad_to_4(std::string& out) {
  out.append((4 - out.size() % 4) % 4, '\0');
}

void put_option(std::string& out, uint16_t code, std::string_view value) {
  if (value.empty()) return;
  put<uint16_t>(out, code);
  put<uint16_t>(out, static_cast<uint16_t>(value.size()));
  out.append(value);
  pad_to_4(out);
}

void end_options(std::string& out) {
  put<uint16_t>(out, kOptEndOfOpt);
  put<uint16_t>(out, 0);
}

// Wraps a block body: type, total length, body, total length again.
std::string block(uint32_t type, const std::string& body) {
  std::string out;
  uint32_t total = static_cast<uint32_t>(12 + body.size());
  put(out, type);
  put(out, total);
  out += body;
  put(out, total);
  return out;
}

}  // namespace

std::string section_header(const SectionInfo& info) {
  std::string body;
  put<uint32_t>(body, kByteOrderMagic);
  put<uint16_t>(body, 1);  // major version
  put<uint16_t>(body, 0);  // minor version
  put<int64_t>(body, -1);  // section length: unknown (we stream)
  put_option(body, kOptComment, info.comment);
  put_option(body, kShbHardware, info.hardware);
  put_option(body, kShbOs, info.os);
  put_option(body, kShbUserAppl, info.application);
  end_options(body);
  return block(kSectionHeaderBlock, body);
}

std::string interface_description(uint16_t linktype, std::string_view name) {
  std::string body;
  put<uint16_t>(body, linktype);
  put<uint16_t>(body, 0);  // reserved
  put<uint32_t>(body, 0);  // snaplen: no limit
  put_option(body, kIfName, name);
  put_option(body, kIfTsresol, std::string_view("\x09", 1));  // 10^-9 s
  end_options(body);
  return block(kInterfaceDescriptionBlock, body);
}

std::string enhanced_packet(uint32_t interface_id, uint64_t unix_time_ns, std::span<const std::byte> packet,
                            std::string_view comment) {
  std::string body;
  put<uint32_t>(body, interface_id);
  put<uint32_t>(body, static_cast<uint32_t>(unix_time_ns >> 32));
  put<uint32_t>(body, static_cast<uint32_t>(unix_time_ns));
  put<uint32_t>(body, static_cast<uint32_t>(packet.size()));  // captured
  put<uint32_t>(body, static_cast<uint32_t>(packet.size()));  // original
  body.append(reinterpret_cast<const char*>(packet.data()), packet.size());
  pad_to_4(body);
  put_option(body, kOptComment, comment);
  end_options(body);
  return block(kEnhancedPacketBlock, body);
}

}  // namespace tlstap::pcapng
