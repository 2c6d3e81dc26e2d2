// The ids of the streams closed most recently, so that late frames on them
// (WINDOW_UPDATE after END_STREAM, DATA after RST_STREAM) do not reopen them.
// Bounded: the oldest ids are forgotten first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_set>

namespace tlstap::proto::http2 {

class RecentIds {
 public:
  explicit RecentIds(size_t capacity) : capacity_(capacity) {}
  void add(uint32_t id) {
    if (!ids_.insert(id).second) return;
    order_.push_back(id);
    if (order_.size() > capacity_) {
      ids_.erase(order_.front());
      order_.pop_front();
    }
  }
  bool contains(uint32_t id) const { return ids_.contains(id); }

 private:
  size_t capacity_;
  std::deque<uint32_t> order_;
  std::unordered_set<uint32_t> ids_;
};

}  // namespace tlstap::proto::http2
