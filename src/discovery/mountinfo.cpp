#include "discovery/mountinfo.h"

#include <charconv>

#include "common/proc.h"

namespace tlstap {
namespace {

bool parse_device(std::string_view text, Mount& out) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  auto major = std::from_chars(text.data(), text.data() + colon, out.major);
  auto minor = std::from_chars(text.data() + colon + 1, text.data() + text.size(), out.minor);
  return major.ec == std::errc() && major.ptr == text.data() + colon && minor.ec == std::errc() &&
         minor.ptr == text.data() + text.size();
}

// "36 25 0:31 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw": ids,
// major:minor, root, mount point, options, optional fields up to " - ", then
// the filesystem type, the source and the superblock's options.
bool parse_line(std::string_view line, Mount& out) {
  size_t separator = line.find(" - ");
  if (separator == std::string_view::npos) return false;
  std::string_view fields = line.substr(0, separator);
  std::string_view tail = line.substr(separator + 3);
  next_field(fields);  // mount id
  next_field(fields);  // parent id
  if (!parse_device(next_field(fields), out)) return false;
  std::string_view root = next_field(fields);
  std::string_view mount_point = next_field(fields);
  std::string_view fs_type = next_field(tail);
  next_field(tail);  // source
  std::string_view super_options = next_field(tail);
  if (root.empty() || mount_point.empty() || fs_type.empty()) return false;
  out.root = unescape_octal(root);
  out.mount_point = unescape_octal(mount_point);
  out.fs_type = std::string(fs_type);
  out.super_options = std::string(super_options);
  return true;
}

}  // namespace

std::string unescape_octal(std::string_view field) {
  auto octal = [&](size_t k) { return field[k] >= '0' && field[k] <= '7'; };
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

std::vector<Mount> parse_mountinfo(std::string_view text) {
  std::vector<Mount> mounts;
  while (!text.empty()) {
    Mount mount;
    if (parse_line(next_line(text), mount)) mounts.push_back(std::move(mount));
  }
  return mounts;
}

}  // namespace tlstap
