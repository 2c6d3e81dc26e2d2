// LruMap: at most `capacity` entries, the least recently used goes first.
#include "common/lru_map.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tlstap {
namespace {

using Map = LruMap<int, std::string>;

// Keys from the least to the most recently used.
std::vector<int> keys(const Map& map) {
  std::vector<int> out;
  for (const auto& [key, value] : map) out.push_back(key);
  return out;
}

TEST(LruMap, PeekLeavesTheOrder) {
  Map map(2);
  map[1] = "one";
  map[2] = "two";
  ASSERT_TRUE(map.peek(1));
  EXPECT_EQ(*map.peek(1), "one");
  EXPECT_FALSE(map.peek(3));
  map[3] = "three";  // 1 is still the least recently used
  EXPECT_EQ(keys(map), (std::vector<int>{2, 3}));
}

TEST(LruMap, LeastRecentlyUsedGoesFirstWhenFull) {
  Map map(3);
  map[1] = "one";
  map[2] = "two";
  map[3] = "three";
  EXPECT_EQ(map.evicted(), 0u);
  map[4] = "four";
  EXPECT_EQ(keys(map), (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(map.evicted(), 1u);
  EXPECT_EQ(map.find(1), nullptr);
}

TEST(LruMap, UseKeepsAnEntry) {
  Map map(3);
  map[1] = "one";
  map[2] = "two";
  map[3] = "three";
  ASSERT_NE(map.find(1), nullptr);
  EXPECT_EQ(*map.find(1), "one");
  map[2] += "!";  // an existing key: used, not added
  EXPECT_EQ(map.evicted(), 0u);
  EXPECT_EQ(keys(map), (std::vector<int>{3, 1, 2}));
  map[5];
  map[6];
  EXPECT_EQ(keys(map), (std::vector<int>{2, 5, 6}));
  EXPECT_EQ(*map.find(2), "two!");
  EXPECT_EQ(*map.find(5), "");  // added with a default value
  EXPECT_EQ(map.evicted(), 2u);
}

TEST(LruMap, FindDoesNotAdd) {
  Map map(2);
  EXPECT_EQ(map.find(1), nullptr);
  EXPECT_EQ(map.size(), 0u);
}

TEST(LruMap, EraseMakesRoomWithoutEvicting) {
  Map map(2);
  map[1] = "one";
  map[2] = "two";
  map.erase(1);
  map.erase(7);  // absent: nothing happens
  map[3] = "three";
  EXPECT_EQ(keys(map), (std::vector<int>{2, 3}));
  EXPECT_EQ(map.evicted(), 0u);
}

TEST(LruMap, EraseIfSeesEachEntryOldestFirstAndRemovesThePicked) {
  Map map(10);
  for (int key : {4, 1, 3, 2}) map[key] = std::to_string(key);
  std::vector<std::string> seen;
  map.erase_if([&](int key, std::string& value) {
    seen.push_back(value);
    return key % 2 == 0;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"4", "1", "3", "2"}));
  EXPECT_EQ(keys(map), (std::vector<int>{1, 3}));
  EXPECT_EQ(map.find(4), nullptr);
  map[5];
  map[6];
  EXPECT_EQ(keys(map), (std::vector<int>{1, 3, 5, 6}));
  map.clear();
  EXPECT_EQ(map.size(), 0u);
  EXPECT_EQ(map.find(1), nullptr);
}

}  // namespace
}  // namespace tlstap
