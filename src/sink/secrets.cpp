#include "sink/secrets.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "common/ascii.h"

namespace tlstap {

bool is_secret_header(std::string_view name) {
  constexpr std::array<std::string_view, 8> exact = {"authorization", "proxy-authorization", "cookie",
                                                     "set-cookie",    "x-api-key",           "x-auth-token",
                                                     "x-csrf-token",  "x-amz-security-token"};
  std::string key = ascii_lower(name);
  if (std::find(exact.begin(), exact.end(), key) != exact.end()) return true;
  // Vendors' own spellings: x-goog-api-key, x-vault-token, private-token ...
  return key.ends_with("-api-key") || key.ends_with("-token") || key.ends_with("-secret") ||
         key.ends_with("-password");
}

std::string shown_header_value(std::string_view name, std::string_view value, bool show_secrets) {
  if (show_secrets || !is_secret_header(name)) return std::string(value);
  return fmt::format("<masked {} bytes>", value.size());
}

}  // namespace tlstap
