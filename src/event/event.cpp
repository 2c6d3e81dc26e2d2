#include "event/event.h"

#include <arpa/inet.h>
#include <fmt/compile.h>
#include <fmt/format.h>
#include <sys/socket.h>

#include <cstring>

extern "C" {
#include "events.h"
}

namespace tlstap {
namespace {

template <class T>
Result<T> read_struct(std::span<const std::byte> bytes, const char* what) {
  if (bytes.size() < sizeof(T))
    return Error{fmt::format("truncated {} event: {} of {} bytes", what, bytes.size(), sizeof(T))};
  T value;
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

std::string_view comm_view(const std::byte* base, size_t offset) {
  const char* comm = reinterpret_cast<const char*>(base) + offset;
  return std::string_view(comm, strnlen(comm, TLSTAP_COMM_LEN));
}

bool is_v4_mapped(const tt_u8 (&a)[16]) {
  static constexpr tt_u8 prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, prefix, sizeof(prefix)) == 0;
}

Endpoint endpoint(uint16_t family, const tt_u8 (&address)[16], uint16_t port) {
  Endpoint e;
  e.port = port;
  if (family == AF_INET || (family == AF_INET6 && is_v4_mapped(address))) {
    // a dual-stack socket talking IPv4 shows the peer as ::ffff:a.b.c.d
    e.family = AF_INET;
    std::memcpy(e.address.data(), family == AF_INET ? address : address + 12, 4);
  } else if (family == AF_INET6) {
    e.family = AF_INET6;
    std::memcpy(e.address.data(), address, 16);
  } else {
    e.port = 0;
  }
  return e;
}

}  // namespace

Result<DataEvent> decode_data_event(std::span<const std::byte> bytes) {
  auto raw = read_struct<tlstap_data_event>(bytes, "data");
  if (!raw) return raw.error();
  if (raw->kind != TLSTAP_EVENT_DATA) return Error{fmt::format("unexpected event kind {}", raw->kind)};
  if (raw->len > TLSTAP_CHUNK_MAX || raw->len > bytes.size() - sizeof(tlstap_data_event))
    return Error{fmt::format("data event claims {} bytes, carries {}", raw->len,
                             bytes.size() - sizeof(tlstap_data_event))};
  if (raw->direction != TLSTAP_DIR_EGRESS && raw->direction != TLSTAP_DIR_INGRESS)
    return Error{fmt::format("bad direction {}", raw->direction)};
  DataEvent e;
  e.pid = raw->pid;
  e.tid = raw->tid;
  e.library = raw->library <= TLSTAP_LIB_MAX ? static_cast<Library>(raw->library) : Library::unknown;
  e.function =
      raw->function <= TLSTAP_FN_MAX ? static_cast<TlsFunction>(raw->function) : TlsFunction::unknown;
  e.direction = raw->direction == TLSTAP_DIR_EGRESS ? Direction::egress : Direction::ingress;
  e.boot_time_ns = raw->timestamp_ns;
  e.conn_id = raw->conn_id;
  e.conn_uid = raw->conn_uid;
  e.sock_id = raw->sock_id;
  e.stream_offset = raw->stream_offset;
  e.call_len = raw->call_len;
  e.chunk_offset = raw->chunk_offset;
  e.comm = comm_view(bytes.data(), offsetof(tlstap_data_event, comm));
  e.local = endpoint(raw->conn.family, raw->conn.local_addr, raw->conn.local_port);
  e.remote = endpoint(raw->conn.family, raw->conn.remote_addr, raw->conn.remote_port);
  e.role = raw->conn.role <= TLSTAP_ROLE_SERVER ? static_cast<Role>(raw->conn.role) : Role::unknown;
  e.payload = bytes.subspan(sizeof(tlstap_data_event), raw->len);
  return e;
}

bool is_connection_closed_event(std::span<const std::byte> bytes) {
  tt_u32 kind = 0;
  if (bytes.size() < sizeof(kind)) return false;
  std::memcpy(&kind, bytes.data(), sizeof(kind));
  return kind == TLSTAP_EVENT_CONN_CLOSED;
}

Result<ConnectionClosedEvent> decode_connection_closed_event(std::span<const std::byte> bytes) {
  auto raw = read_struct<tlstap_conn_closed_event>(bytes, "connection closed");
  if (!raw) return raw.error();
  if (raw->kind != TLSTAP_EVENT_CONN_CLOSED) return Error{fmt::format("unexpected event kind {}", raw->kind)};
  return ConnectionClosedEvent{raw->pid, raw->timestamp_ns, raw->conn_uid};
}

Result<ProcessEvent> decode_process_event(std::span<const std::byte> bytes) {
  auto raw = read_struct<tlstap_process_event>(bytes, "process");
  if (!raw) return raw.error();
  ProcessEvent e;
  switch (raw->kind) {
    case TLSTAP_EVENT_EXEC:
      e.kind = ProcessEventKind::exec;
      break;
    case TLSTAP_EVENT_EXIT:
      e.kind = ProcessEventKind::exit;
      break;
    case TLSTAP_EVENT_EXIT_IN_CALL:
      e.kind = ProcessEventKind::exit_in_call;
      break;
    case TLSTAP_EVENT_LIBS_CHANGED:
      e.kind = ProcessEventKind::libs_changed;
      break;
    case TLSTAP_EVENT_CGROUP_MADE:
      e.kind = ProcessEventKind::cgroup_made;
      break;
    case TLSTAP_EVENT_CGROUP_JOINED:
      e.kind = ProcessEventKind::cgroup_joined;
      break;
    default:
      return Error{fmt::format("unexpected process event kind {}", raw->kind)};
  }
  e.pid = raw->pid;
  e.tid = raw->tid;
  e.boot_time_ns = raw->timestamp_ns;
  e.cgroup_id = raw->cgroup_id;
  e.netns = raw->netns;
  e.exe_inode = raw->exe_inode;
  switch (raw->look) {
    case TLSTAP_EXEC_LOOK_AT_LOADER_REPORT:
      e.look = ExecLook::at_loader_report;
      break;
    case TLSTAP_EXEC_LOOK_NEVER:
      e.look = ExecLook::never;
      break;
    default:  // TLSTAP_EXEC_LOOK_NOW, or one unknown: looking costs least
      e.look = ExecLook::now;
  }
  e.comm = comm_view(bytes.data(), offsetof(tlstap_process_event, comm));
  const char* filename =
      reinterpret_cast<const char*>(bytes.data()) + offsetof(tlstap_process_event, filename);
  e.filename = std::string_view(filename, strnlen(filename, TLSTAP_PATH_MAX));
  return e;
}

std::string_view to_string(Direction d) {
  return d == Direction::egress ? "egress" : "ingress";
}

std::string_view to_string(Role r) {
  switch (r) {
    case Role::client:
      return "client";
    case Role::server:
      return "server";
    default:
      return "unknown";
  }
}

std::string_view to_string(Library l) {
  switch (l) {
    case Library::openssl:
      return "openssl";
    case Library::go:
      return "go";
    case Library::gnutls:
      return "gnutls";
    case Library::boringssl:
      return "boringssl";
    case Library::nss:
      return "nss";
    default:
      return "unknown";
  }
}

std::string_view to_string(TlsFunction f) {
  switch (f) {
    case TlsFunction::ssl_write:
      return "SSL_write";
    case TlsFunction::ssl_read:
      return "SSL_read";
    case TlsFunction::ssl_write_ex:
      return "SSL_write_ex";
    case TlsFunction::ssl_read_ex:
      return "SSL_read_ex";
    case TlsFunction::ssl_write_internal:
      return "ssl_write_internal";
    case TlsFunction::ssl_read_internal:
      return "ssl_read_internal";
    case TlsFunction::go_write:
      return "crypto/tls.(*Conn).Write";
    case TlsFunction::go_read:
      return "crypto/tls.(*Conn).Read";
    case TlsFunction::gnutls_record_send:
      return "gnutls_record_send";
    case TlsFunction::gnutls_record_recv:
      return "gnutls_record_recv";
    case TlsFunction::nss_pr_write:
      return "PR_Write";
    case TlsFunction::nss_pr_read:
      return "PR_Read";
    case TlsFunction::nss_pr_send:
      return "PR_Send";
    case TlsFunction::nss_pr_recv:
      return "PR_Recv";
    default:
      return "unknown";
  }
}

std::string format_endpoint(const Endpoint& e) {
  // IPv4 directly: glibc's inet_ntop formats it with sprintf, a tenth of the
  // agent's time per JSON line.
  if (e.family == AF_INET) {
    const auto& a = e.address;
    return fmt::format(FMT_COMPILE("{}.{}.{}.{}:{}"), a[0], a[1], a[2], a[3], e.port);
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (e.family == 0 || !inet_ntop(e.family, e.address.data(), text, sizeof(text))) return {};
  return e.family == AF_INET6 ? fmt::format("[{}]:{}", text, e.port) : fmt::format("{}:{}", text, e.port);
}

}  // namespace tlstap
