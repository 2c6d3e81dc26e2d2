// --netns: from what a user names (a name `ip netns` made, a namespace file
// such as /proc/PID/ns/net, or an inode number as `lsns -t net` prints it) to
// the namespace's inode number, which the kernel filter compares.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tlstap {

// The files `given` may name, most literal first (pure): a path as given, and
// a bare name under /run/netns. Empty for a number.
std::vector<std::string> netns_candidates(std::string_view given);

// The inode number of the network namespace `given` names; an error that says
// why it names none.
Result<uint32_t> resolve_netns(std::string_view given);

}  // namespace tlstap
