#include "sink/json_sink.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

namespace tlstap {
namespace {

std::string base64(std::span<const std::byte> bytes) {
  std::string encoded(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  encoded.resize(n);
  return encoded;
}

}  // namespace

std::string format_json_record(const DataRecord& r) {
  const DataEvent& e = r.event;
  nlohmann::ordered_json j;
  j["type"] = "data";
  j["ts"] = r.wall_time_ns;
  j["pid"] = e.pid;
  j["tid"] = e.tid;
  j["comm"] = e.comm;
  j["exe"] = r.exe;
  j["library"] = to_string(e.library);
  j["function"] = to_string(e.function);
  j["direction"] = to_string(e.direction);
  j["local"] = format_endpoint(e.local);
  j["remote"] = format_endpoint(e.remote);
  j["role"] = to_string(r.role);
  j["conn_id"] = e.conn_uid;
  j["stream_offset"] = e.stream_offset;
  if (r.gap_before) j["gap_before"] = r.gap_before;
  if (r.opened_before_capture) j["opened_before_capture"] = true;
  j["call_len"] = e.call_len;
  j["len"] = e.payload.size();
  j["data"] = base64(e.payload);
  // comm is whatever the process named itself: never let bad UTF-8 throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void JsonSink::write(const DataRecord& record) {
  std::string line = format_json_record(record);
  line += '\n';
  out_.write(line);
}

}  // namespace tlstap
