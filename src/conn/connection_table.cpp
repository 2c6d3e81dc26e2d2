#include "conn/connection_table.h"

namespace tlstap {

Role ConnectionTable::resolve_role(const DataEvent& event, State& state) {
  if (event.role != Role::unknown) return event.role;
  if (state.role != Role::unknown || event.local.family == 0) return state.role;
  return is_listening_(event.pid, event.local) ? Role::server : Role::client;
}

ConnectionView ConnectionTable::observe(const DataEvent& event) {
  // A reused SSL* gets a new conn_uid from the kernel, and so a new state here.
  State& state = connections_[Key{event.pid, event.conn_uid}];
  state.role = resolve_role(event, state);

  ConnectionView view{state.role, 0, event.role == Role::unknown && event.local.family != 0};
  uint64_t& expected = state.next_offset[event.direction == Direction::egress ? 0 : 1];
  if (event.stream_offset > expected) view.gap_before = event.stream_offset - expected;
  uint64_t end = event.stream_offset + event.payload.size();
  if (end > expected) expected = end;
  return view;
}

void ConnectionTable::forget_process(uint32_t pid) {
  connections_.erase_if([pid](const Key& key, const State&) { return key.pid == pid; });
}

}  // namespace tlstap
