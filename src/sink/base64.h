// Standard base64 (RFC 4648, padded), appended to a string: the JSON data
// lines' payloads, the agent's bulkiest formatting work.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace tlstap {

// With AVX2 where the CPU has it, the portable encoder otherwise.
void append_base64(std::string& out, std::span<const std::byte> bytes);

// The encoder without vector instructions (arm64, older x86), kept callable
// so that tests and the benchmark hold both to the same output.
void append_base64_portable(std::string& out, std::span<const std::byte> bytes);

}  // namespace tlstap
