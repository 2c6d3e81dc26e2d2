#include "conn/connection_table.h"

namespace tlstap {

Role ConnectionTable::resolve_role(const DataEvent& event, State& state) {
  if (event.role != Role::unknown) return event.role;
  if (state.role != Role::unknown || event.local.family == 0) return state.role;
  return is_listening_(event.pid, event.local) ? Role::server : Role::client;
}

// A conn_uid never seen, for an SSL* whose latest connection is open here on
// the same socket and addresses: the kernel forgot that connection.
const ConnectionTable::Resumed* ConnectionTable::resume_forgotten(const DataEvent& event) {
  const uint64_t* latest = latest_uid_.peek({event.pid, event.conn_id});
  if (event.sock_id == 0 || !latest || *latest == event.conn_uid) return nullptr;
  const State* before = connections_.peek({event.pid, *latest});
  if (!before || before->sock_id != event.sock_id || before->local != event.local ||
      before->remote != event.remote)
    return nullptr;
  ++resumed_count_;
  Resumed& resumed = resumed_[{event.pid, event.conn_uid}];
  resumed = {*latest, {before->next_offset[0], before->next_offset[1]}};
  return &resumed;
}

// The state of a conn_uid not seen before: a new connection, or one the
// kernel forgot, whose state is under its first conn_uid.
ConnectionTable::State& ConnectionTable::state_of_new_uid(const DataEvent& event, size_t direction,
                                                          ConnectionView& view) {
  const Resumed* resumed = resumed_.find({event.pid, event.conn_uid});
  bool first_state_gone = resumed && !connections_.peek({event.pid, resumed->conn_uid});
  if (first_state_gone) {
    // It went to make room here too: the connection goes on as a new one.
    resumed_.erase({event.pid, event.conn_uid});
    resumed = nullptr;
  } else if (!resumed) {
    resumed = resume_forgotten(event);
  }
  if (resumed) {
    view.conn_uid = resumed->conn_uid;
    view.stream_offset += resumed->base_offset[direction];
  } else {
    // A reused SSL* gets a new conn_uid from the kernel, and so a new state here.
    latest_uid_[{event.pid, event.conn_id}] = event.conn_uid;
  }
  State& state = connections_[Key{event.pid, view.conn_uid}];
  state.conn_id = event.conn_id;
  // Its bytes so far went out under its first conn_uid: no gap before its next.
  state.resync[0] = state.resync[1] = first_state_gone;
  return state;
}

ConnectionView ConnectionTable::observe(const DataEvent& event) {
  const size_t direction = event.direction == Direction::egress ? 0 : 1;
  ConnectionView view{.conn_uid = event.conn_uid, .stream_offset = event.stream_offset};
  State* known = connections_.find({event.pid, event.conn_uid});
  State& state = known ? *known : state_of_new_uid(event, direction, view);
  state.role = resolve_role(event, state);
  if (state.sock_id == 0 && event.sock_id != 0) {
    state.sock_id = event.sock_id;
    state.local = event.local;
    state.remote = event.remote;
  }
  view.role = state.role;
  if (!state.opened_before_capture && event.local.family != 0)
    state.opened_before_capture = event.role == Role::unknown;
  view.opened_before_capture = state.opened_before_capture.value_or(false);
  uint64_t& expected = state.next_offset[direction];
  if (state.resync[direction]) {
    expected = view.stream_offset;
    state.resync[direction] = false;
  }
  if (view.stream_offset > expected) view.gap_before = view.stream_offset - expected;
  uint64_t end = view.stream_offset + event.payload.size();
  if (end > expected) expected = end;
  return view;
}

ConnectionKey ConnectionTable::close(const ConnectionKey& key) {
  ConnectionKey reported = key;
  if (const Resumed* resumed = resumed_.peek(key)) {
    reported.conn_uid = resumed->conn_uid;
    resumed_.erase(key);
  }
  if (const State* state = connections_.peek(reported)) {
    // The SSL*'s latest connection is closed: a later one on it is new.
    LibraryKey library{reported.pid, state->conn_id};
    if (const uint64_t* latest = latest_uid_.peek(library); latest && *latest == reported.conn_uid)
      latest_uid_.erase(library);
    connections_.erase(reported);
  }
  return reported;
}

void ConnectionTable::forget_process(uint32_t pid) {
  connections_.erase_if([pid](const Key& key, const State&) { return key.pid == pid; });
  latest_uid_.erase_if([pid](const LibraryKey& key, uint64_t) { return key.pid == pid; });
  resumed_.erase_if([pid](const Key& key, const Resumed&) { return key.pid == pid; });
}

}  // namespace tlstap
