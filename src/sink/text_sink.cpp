#include "sink/text_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

namespace tlstap {
namespace {

std::string clock_time(uint64_t wall_time_ns) {
  time_t seconds = static_cast<time_t>(wall_time_ns / 1'000'000'000);
  struct tm local {};
  localtime_r(&seconds, &local);
  return fmt::format("{:02}:{:02}:{:02}.{:06}", local.tm_hour, local.tm_min, local.tm_sec,
                     (wall_time_ns / 1000) % 1'000'000);
}

std::string or_unknown(std::string text) {
  return text.empty() ? "?" : text;
}

}  // namespace

bool is_printable_text(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) {
    auto c = static_cast<unsigned char>(b);
    return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t';
  });
}

std::string hexdump(std::span<const std::byte> bytes) {
  std::string out;
  for (size_t row = 0; row < bytes.size(); row += 16) {
    out += fmt::format("  {:08x}  ", row);
    std::string ascii;
    for (size_t i = row; i < row + 16; ++i) {
      if (i < bytes.size()) {
        auto c = static_cast<unsigned char>(bytes[i]);
        out += fmt::format("{:02x} ", c);
        ascii += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
      } else {
        out += "   ";
      }
      if (i == row + 7) out += ' ';
    }
    out += " |" + ascii + "|\n";
  }
  return out;
}

std::string format_text_record(const DataRecord& r) {
  const DataEvent& e = r.event;
  bool egress = e.direction == Direction::egress;
  std::string header =
      fmt::format("{} {}[{}/{}] {} {} {} {} {} {} ({}) {} bytes", clock_time(r.wall_time_ns), e.comm, e.pid,
                  e.tid, to_string(e.library), to_string(e.function), to_string(e.direction),
                  or_unknown(format_endpoint(e.local)), egress ? "->" : "<-",
                  or_unknown(format_endpoint(e.remote)), to_string(r.role), e.payload.size());
  if (e.call_len != e.payload.size())
    header += fmt::format(" [{}..{} of {}]", e.chunk_offset, e.chunk_offset + e.payload.size(), e.call_len);
  if (r.gap_before) header += fmt::format(" (after {} lost bytes)", r.gap_before);
  header += '\n';
  if (is_printable_text(e.payload)) {
    header.append(reinterpret_cast<const char*>(e.payload.data()), e.payload.size());
    if (!e.payload.empty() && e.payload.back() != std::byte{'\n'}) header += '\n';
  } else {
    header += hexdump(e.payload);
  }
  return header;
}

}  // namespace tlstap
