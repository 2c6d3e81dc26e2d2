#include "discovery/netns_path.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <charconv>
#include <optional>

#include "common/unique_fd.h"

namespace tlstap {
namespace {

std::optional<uint32_t> parse_inode(std::string_view text) {
  uint32_t inode = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), inode);
  if (error != std::errc{} || end != text.data() + text.size() || inode == 0) return std::nullopt;
  return inode;
}

// The inode of `path` when it is a network namespace file; why not otherwise.
Result<uint32_t> netns_inode(const std::string& path) {
  UniqueFd file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.valid()) return Error::from_errno(path);
  int type = ioctl(file.get(), NS_GET_NSTYPE);
  if (type < 0) return Error{fmt::format("{} is not a namespace file", path)};
  if (type != CLONE_NEWNET) return Error{fmt::format("{} is a namespace, not a network namespace", path)};
  struct stat st {};
  if (fstat(file.get(), &st) != 0) return Error::from_errno(path);
  return static_cast<uint32_t>(st.st_ino);
}

}  // namespace

std::vector<std::string> netns_candidates(std::string_view given) {
  if (given.empty() || parse_inode(given)) return {};
  if (given.find('/') != std::string_view::npos) return {std::string(given)};
  // A bare name: what `ip netns add` made, then a file of that name here.
  return {"/run/netns/" + std::string(given), std::string(given)};
}

Result<uint32_t> resolve_netns(std::string_view given) {
  // A number is taken as it is: the namespace may come and go while tlstap runs.
  if (auto inode = parse_inode(given)) return *inode;
  std::vector<std::string> candidates = netns_candidates(given);
  if (candidates.empty()) return Error{"--netns: an empty name"};
  std::optional<Error> first_error;
  for (const auto& candidate : candidates) {
    auto inode = netns_inode(candidate);
    if (inode) return inode;
    if (!first_error) first_error = inode.error();
  }
  return Error{fmt::format("--netns {}: {}", given, first_error->message)};
}

}  // namespace tlstap
