// Events as user space sees them, decoded and validated from ring buffer
// bytes. Data events borrow their payload from the ring: they are valid only
// while the ring callback runs.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "common/result.h"

namespace tlstap {

enum class Direction : uint8_t { egress, ingress };
enum class Role : uint8_t { unknown, client, server };
enum class Library : uint8_t { unknown, openssl, go, gnutls, boringssl, nss };
enum class TlsFunction : uint8_t {
  unknown,
  ssl_write,
  ssl_read,
  ssl_write_ex,
  ssl_read_ex,
  ssl_write_internal,  // OpenSSL's SSL BIO calls the internal functions directly
  ssl_read_internal,
  go_write,  // crypto/tls.(*Conn).Write
  go_read,
  gnutls_record_send,
  gnutls_record_recv,
  nss_pr_write,  // PR_Write on a socket with NSS's SSL layer
  nss_pr_read,
  nss_pr_send,
  nss_pr_recv,
};

struct Endpoint {
  uint16_t family = 0;  // AF_INET, AF_INET6 or 0 when unknown
  std::array<uint8_t, 16> address{};
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

struct DataEvent {
  uint32_t pid = 0;
  uint32_t tid = 0;
  Library library = Library::unknown;
  TlsFunction function = TlsFunction::unknown;
  Direction direction = Direction::egress;
  uint64_t boot_time_ns = 0;
  uint64_t conn_id = 0;   // the library's connection object (SSL*), reused once freed
  uint64_t conn_uid = 0;  // this connection, unique on the host
  uint64_t sock_id = 0;
  uint64_t stream_offset = 0;
  uint32_t call_len = 0;
  uint32_t chunk_offset = 0;
  std::string_view comm;
  Endpoint local;
  Endpoint remote;
  Role role = Role::unknown;
  std::span<const std::byte> payload;
};

enum class ProcessEventKind : uint8_t { exec, exit, libs_changed, exit_in_call, cgroup_made, cgroup_joined };

// When user space must look at a new image's mappings: at once; when its
// dynamic loader (one tlstap probed) reports at start-up, the libraries
// mapped, any file not looked at yet; or never, for a static program looked
// at already and found without TLS.
enum class ExecLook : uint8_t { now, at_loader_report, never };

struct ProcessEvent {
  ProcessEventKind kind = ProcessEventKind::exec;
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint64_t boot_time_ns = 0;
  uint64_t cgroup_id = 0;         // cgroup v2 directory's inode number (cgroup_*: the new or joined one's)
  uint32_t netns = 0;             // network namespace's inode number; 0 when unknown
  uint64_t exe_inode = 0;         // exec: the new image's inode number; 0 when unknown
  ExecLook look = ExecLook::now;  // exec: when to look at the new image's mappings
  std::string_view comm;
  std::string_view filename;  // exec: the path executed
};

// The library freed a connection; on the data ring after its last data.
struct ConnectionClosedEvent {
  uint32_t pid = 0;
  uint64_t boot_time_ns = 0;
  uint64_t conn_uid = 0;
};

// Whether a data-ring record is a ConnectionClosedEvent rather than a DataEvent.
bool is_connection_closed_event(std::span<const std::byte> bytes);

Result<DataEvent> decode_data_event(std::span<const std::byte> bytes);
Result<ConnectionClosedEvent> decode_connection_closed_event(std::span<const std::byte> bytes);
Result<ProcessEvent> decode_process_event(std::span<const std::byte> bytes);

std::string_view to_string(Direction);
std::string_view to_string(Role);
std::string_view to_string(Library);
std::string_view to_string(TlsFunction);
// "127.0.0.1:443", "[::1]:443", or "" when unknown.
std::string format_endpoint(const Endpoint&);

}  // namespace tlstap
