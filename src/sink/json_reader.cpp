#include "sink/json_reader.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

namespace tlstap {
namespace {

// The inverse of to_string() for any of the event enums.
template <class Enum>
Result<Enum> enum_from_name(std::string_view name) {
  for (int value = 0; value < 64; ++value)
    if (to_string(static_cast<Enum>(value)) == name) return static_cast<Enum>(value);
  return Error{fmt::format("unknown value \"{}\"", name)};
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint endpoint;
  if (text.empty()) return endpoint;
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return Error{fmt::format("bad endpoint \"{}\"", text)};
  std::string host(text.substr(0, colon));
  endpoint.family = AF_INET;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    endpoint.family = AF_INET6;
  }
  unsigned port = 0;
  auto port_text = text.substr(colon + 1);
  for (char c : port_text) {
    if (c < '0' || c > '9') return Error{fmt::format("bad port in \"{}\"", text)};
    port = port * 10 + (c - '0');
  }
  if (port_text.empty() || port > 65535 ||
      inet_pton(endpoint.family, host.c_str(), endpoint.address.data()) != 1)
    return Error{fmt::format("bad endpoint \"{}\"", text)};
  endpoint.port = static_cast<uint16_t>(port);
  return endpoint;
}

Result<std::vector<std::byte>> base64_decode(std::string_view text) {
  if (text.size() % 4) return Error{"data is not base64"};
  std::vector<std::byte> out(text.size() / 4 * 3);
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return Error{"data is not base64"};
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

Result<StoredDataRecord> parse_data(const nlohmann::json& j) {
  StoredDataRecord r;
  auto library = enum_from_name<Library>(j.at("library").get<std::string>());
  auto function = enum_from_name<TlsFunction>(j.at("function").get<std::string>());
  auto direction = enum_from_name<Direction>(j.at("direction").get<std::string>());
  auto role = enum_from_name<Role>(j.at("role").get<std::string>());
  auto local = parse_endpoint(j.at("local").get<std::string>());
  auto remote = parse_endpoint(j.at("remote").get<std::string>());
  auto payload = base64_decode(j.at("data").get<std::string>());
  for (const Error* error : {library ? nullptr : &library.error(), function ? nullptr : &function.error(),
                             direction ? nullptr : &direction.error(), role ? nullptr : &role.error(),
                             local ? nullptr : &local.error(), remote ? nullptr : &remote.error(),
                             payload ? nullptr : &payload.error()})
    if (error) return *error;

  DataEvent& e = r.event;
  e.pid = j.at("pid").get<uint32_t>();
  e.tid = j.at("tid").get<uint32_t>();
  e.library = *library;
  e.function = *function;
  e.direction = *direction;
  e.conn_uid = j.at("conn_id").get<uint64_t>();
  e.stream_offset = j.at("stream_offset").get<uint64_t>();
  e.call_len = j.at("call_len").get<uint32_t>();
  e.local = *local;
  e.remote = *remote;
  e.role = *role;
  r.comm = j.at("comm").get<std::string>();
  r.process.exe = j.at("exe").get<std::string>();
  r.process.cgroup = j.value("cgroup", "");
  r.process.container_id = j.value("container_id", "");
  r.process.pod_uid = j.value("pod_uid", "");
  r.process.pod_namespace = j.value("pod_namespace", "");
  r.process.pod_name = j.value("pod_name", "");
  r.process.container_name = j.value("container_name", "");
  r.process.netns = j.value("netns", uint32_t{0});
  r.payload = std::move(*payload);
  r.wall_time_ns = j.at("ts").get<uint64_t>();
  r.role = *role;
  r.gap_before = j.value("gap_before", uint64_t{0});
  r.opened_before_capture = j.value("opened_before_capture", false);
  if (r.payload.size() != j.at("len").get<size_t>()) return Error{"len does not match the data"};
  return r;
}

}  // namespace

DataRecord StoredDataRecord::record() {
  event.comm = comm;
  event.payload = payload;
  return DataRecord{event, wall_time_ns, process, role, gap_before, opened_before_capture};
}

Result<std::optional<StoredRecord>> parse_json_record(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error{"not a JSON object"};
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return Error{"no \"type\""};
  try {
    if (*type == "close")
      return std::optional<StoredRecord>(CloseRecord{
          j.at("pid").get<uint32_t>(), j.at("conn_id").get<uint64_t>(), j.at("ts").get<uint64_t>()});
    if (*type != "data") return std::optional<StoredRecord>();
    auto record = parse_data(j);
    if (!record) return record.error();
    return std::optional<StoredRecord>(std::move(*record));
  } catch (const nlohmann::json::exception& e) {
    return Error{fmt::format("not a tlstap {} record: {}", type->get<std::string>(), e.what())};
  }
}

}  // namespace tlstap
