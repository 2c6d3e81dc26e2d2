#include "discovery/proc_maps.h"

#include <algorithm>
#include <charconv>

#include "common/proc.h"

namespace tlstap {
namespace {

template <class T>
bool parse_number(std::string_view text, T& out, int base) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool parse_line(std::string_view line, MappedFile& out) {
  next_field(line);  // address range
  std::string_view perms = next_field(line);
  next_field(line);  // offset
  std::string_view dev = next_field(line);
  std::string_view inode = next_field(line);
  if (perms.size() < 4 || perms[2] != 'x') return false;
  size_t colon = dev.find(':');
  if (colon == std::string_view::npos || !parse_number(dev.substr(0, colon), out.dev_major, 16) ||
      !parse_number(dev.substr(colon + 1), out.dev_minor, 16) || !parse_number(inode, out.inode, 10) ||
      out.inode == 0)
    return false;
  size_t path_start = line.find_first_not_of(' ');
  if (path_start == std::string_view::npos || line[path_start] != '/') return false;  // [vdso], anon
  std::string_view path = line.substr(path_start);
  constexpr std::string_view deleted_suffix = " (deleted)";
  out.deleted = path.ends_with(deleted_suffix);
  if (out.deleted) path.remove_suffix(deleted_suffix.size());
  out.path = std::string(path);
  return true;
}

}  // namespace

std::vector<MappedFile> parse_executable_mappings(std::string_view maps_text) {
  std::vector<MappedFile> files;
  while (!maps_text.empty()) {
    MappedFile file;
    if (!parse_line(next_line(maps_text), file)) continue;
    bool seen =
        std::any_of(files.begin(), files.end(), [&](const MappedFile& f) { return f.id() == file.id(); });
    if (!seen) files.push_back(std::move(file));
  }
  return files;
}

}  // namespace tlstap
