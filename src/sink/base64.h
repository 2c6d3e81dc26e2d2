// Standard base64 (RFC 4648, padded), appended to a string: the JSON data
// lines' payloads, the agent's bulkiest formatting work.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace tlstap {

void append_base64(std::string& out, std::span<const std::byte> bytes);

}  // namespace tlstap
