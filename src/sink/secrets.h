// Credentials in HTTP headers are masked in what tlstap writes, unless the
// user asks for them (--show-secrets): captures get shared.
#pragma once

#include <string>
#include <string_view>

namespace tlstap {

bool is_secret_header(std::string_view name);  // any case
// The value as written: itself, or a mask that keeps its length visible.
std::string shown_header_value(std::string_view name, std::string_view value, bool show_secrets);

}  // namespace tlstap
