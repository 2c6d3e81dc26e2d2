// What may reach a terminal of the bytes traced processes and their peers
// choose: a process name, a request target, a header, a message. A terminal
// obeys control characters and escape sequences in what it is given, so none
// of those bytes may pass as they are.
#pragma once

#include <string>
#include <string_view>

namespace tlstap {

// Text a terminal shows as it is: well-formed UTF-8 (raw 8-bit bytes are
// escapes to a Latin-1 terminal), no control characters but line breaks and
// tabs, C1 controls (U+0080-U+009F, which some terminals obey) included.
bool is_terminal_safe_text(std::string_view text);

// One field of a line, shown as it is when it is safe and holds no line
// break: otherwise every byte a terminal could act on (C0 controls, line
// breaks and tabs included, DEL, C1 controls, bytes that are not UTF-8) is
// written as \xNN.
std::string terminal_field(std::string_view text);

}  // namespace tlstap
