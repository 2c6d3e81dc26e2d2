// Parses /proc/PID/mountinfo text (proc(5)) into its mounts. Pure: the
// caller reads the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tlstap {

struct Mount {
  uint32_t major = 0, minor = 0;  // st_dev of the files on it
  std::string root;               // the directory of the filesystem mounted here
  std::string mount_point;
  std::string fs_type;
  std::string super_options;  // as the kernel shows them: values still \ooo-escaped
  bool operator==(const Mount&) const = default;
};

// The mounts in the order listed (a later one on the same point hides an
// earlier); lines that do not parse are left out.
std::vector<Mount> parse_mountinfo(std::string_view text);

// mountinfo escapes space, tab, newline and backslash (and, in option values,
// comma and '=') as \ooo.
std::string unescape_octal(std::string_view field);

}  // namespace tlstap
