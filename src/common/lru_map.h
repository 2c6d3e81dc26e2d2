// A hash map that holds at most `capacity` entries: adding one to a full map
// evicts the least recently used. State keyed by things whose end the agent
// may never see (a connection whose close was lost, a REST path with an id)
// stays bounded on a host that runs for weeks. A lookup counts as a use;
// iterating does not, and goes from the least to the most recently used.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <list>
#include <unordered_map>
#include <utility>

namespace tlstap {

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class LruMap {
  using Entries = std::list<std::pair<const Key, Value>>;  // least recently used first

 public:
  // At least one entry: the value operator[] returns must stay.
  explicit LruMap(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

  // The key's value, now the most recently used; nullptr when absent.
  Value* find(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.end(), entries_, it->second);
    return &it->second->second;
  }

  // The key's value, its place in the order unchanged; nullptr when absent.
  Value* peek(const Key& key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }

  // The key's value, default-constructed if absent; now the most recently used.
  Value& operator[](const Key& key) {
    if (Value* value = find(key)) return *value;
    if (!entries_.empty() && entries_.size() >= capacity_) {
      index_.erase(entries_.front().first);
      entries_.pop_front();
      ++evicted_;
    }
    entries_.emplace_back(std::piecewise_construct, std::forward_as_tuple(key), std::forward_as_tuple());
    index_.emplace(key, std::prev(entries_.end()));
    return entries_.back().second;
  }

  void erase(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    entries_.erase(it->second);
    index_.erase(it);
  }

  // Removes the entries for which pred(key, value) is true. The predicate may
  // act on an entry it picks (finish it): the entry goes right after.
  template <typename Pred>
  void erase_if(Pred pred) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (pred(it->first, it->second)) {
        index_.erase(it->first);
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void clear() {
    index_.clear();
    entries_.clear();
  }

  size_t size() const { return entries_.size(); }
  uint64_t evicted() const { return evicted_; }  // entries that went to make room, over the map's life

  auto begin() { return entries_.begin(); }
  auto end() { return entries_.end(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  size_t capacity_;
  uint64_t evicted_ = 0;
  Entries entries_;
  std::unordered_map<Key, typename Entries::iterator, Hash> index_;
};

}  // namespace tlstap
