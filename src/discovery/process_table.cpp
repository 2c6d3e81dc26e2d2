#include "discovery/process_table.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/proc.h"
#include "discovery/container_identity.h"

namespace tlstap {
namespace {

std::string proc_path(uint32_t pid, std::string_view file) {
  return "/proc/" + std::to_string(pid) + "/" + std::string(file);
}

std::string read_exe(uint32_t pid) {
  char target[PATH_MAX];
  ssize_t n = readlink(proc_path(pid, "exe").c_str(), target, sizeof(target));
  return n > 0 && n < static_cast<ssize_t>(sizeof(target)) ? std::string(target, n) : std::string();
}

void set_placement(ProcessIdentity& identity, std::string cgroup, ContainerIdentity container) {
  identity.cgroup = std::move(cgroup);
  identity.container_id = std::move(container.container_id);
  identity.pod_uid = std::move(container.pod_uid);
}

void set_names(ProcessIdentity& identity, WorkloadNamer& namer, uint32_t pid) {
  WorkloadNames names;
  if (!identity.container_id.empty()) names = namer.names(pid, identity.container_id);
  identity.pod_namespace = std::move(names.pod_namespace);
  identity.pod_name = std::move(names.pod_name);
  identity.container_name = std::move(names.container_name);
}

ProcessIdentity read_identity(uint32_t pid, WorkloadNamer& namer) {
  ProcessIdentity identity;
  identity.exe = read_exe(pid);
  std::string cgroups = read_text_file(proc_path(pid, "cgroup"));
  set_placement(identity, cgroup_v2_path(cgroups), container_from_proc_cgroup(cgroups));
  set_names(identity, namer, pid);
  struct stat netns {};
  // The namespace file's inode number is the namespace's (what `ip netns identify`, `lsns` show).
  if (stat(proc_path(pid, "ns/net").c_str(), &netns) == 0)
    identity.netns = static_cast<uint32_t>(netns.st_ino);
  return identity;
}

}  // namespace

ProcessTable::Entry* ProcessTable::read_new(uint32_t pid) {
  ProcessIdentity read = read_identity(pid, namer_);
  // Gone before it could be read: not kept, as its exit may have been
  // handled already and its pid may come back as another process.
  if (read.exe.empty()) return nullptr;
  return &processes_.emplace(pid, Entry{Image{0, std::move(read)}}).first->second;
}

const ProcessIdentity& ProcessTable::identity(uint32_t pid, uint64_t at_ns) {
  auto it = processes_.find(pid);
  Entry* images = it != processes_.end() ? &it->second : read_new(pid);
  if (!images) return unknown_;
  auto newer =
      std::find_if(images->rbegin(), images->rend(), [&](const Image& i) { return i.since_ns <= at_ns; });
  size_t index = newer == images->rend() ? 0 : images->rend() - newer - 1;
  return read_image(pid, *images, index);
}

void ProcessTable::refresh(const ProcessEvent& exec) {
  add_image(processes_[exec.pid], exec.boot_time_ns, {},
            ExecFacts{exec.cgroup_id, exec.exe_inode, exec.netns, std::string(exec.filename)});
}

void ProcessTable::read_now(uint32_t pid) {
  auto it = processes_.find(pid);
  if (it != processes_.end()) read_image(pid, it->second, it->second.size() - 1);
}

const ProcessIdentity& ProcessTable::read_image(uint32_t pid, Entry& images, size_t index) {
  Image& image = images[index];
  if (image.unread) {
    const ProcessIdentity& before = index == 0 ? unknown_ : read_image(pid, images, index - 1);
    image.identity = read_exec(pid, *image.unread, before);
    image.unread.reset();
  }
  return image.identity;
}

ProcessIdentity ProcessTable::read_exec(uint32_t pid, const ExecFacts& exec, const ProcessIdentity& before) {
  ProcessIdentity identity = read_identity(pid, namer_);
  // /proc shows the image of the process's latest exec, which may be a later
  // one than this event's (sh -> env -> server, handled after the fact).
  struct stat exe {};
  bool later_image = !identity.exe.empty() && exec.exe_inode != 0 &&
                     stat(proc_path(pid, "exe").c_str(), &exe) == 0 && exe.st_ino != exec.exe_inode;
  if (identity.exe.empty()) {
    identity = from_exec_event(pid, exec, before);
    // /proc/PID/exe shows the file behind symlinks; do the same for the path,
    // in tlstap's own root (the process's is gone with it): right for a host
    // process, a guess for a container's.
    std::error_code ec;
    auto resolved = std::filesystem::weakly_canonical(std::filesystem::path(exec.filename), ec);
    if (!ec) identity.exe = resolved.string();
  } else if (later_image) {
    // Its placement holds (an exec keeps cgroup and namespace); its exe is the
    // path as executed: resolving it here would use tlstap's root, not the process's.
    identity = from_exec_event(pid, exec, identity);
  }
  return identity;
}

void ProcessTable::moved(const ProcessEvent& joined) {
  auto it = processes_.find(joined.pid);
  if (it == processes_.end()) return;
  std::string cgroup = cgroup_names_.path_of(joined.cgroup_id);
  Entry& images = it->second;
  const ProcessIdentity& latest = read_image(joined.pid, images, images.size() - 1);
  // Gone already (what /proc said is all there is), or no move at all.
  if (cgroup.empty() || cgroup == latest.cgroup) return;
  ProcessIdentity identity = latest;
  // On hybrid hosts a container may be named by a v1 hierarchy only, which a
  // move in v2 leaves as it was.
  ContainerIdentity named_by_v2 = container_from_cgroup(identity.cgroup);
  bool named_by_v1 = named_by_v2.container_id.empty() && named_by_v2.pod_uid.empty() &&
                     !(identity.container_id.empty() && identity.pod_uid.empty());
  if (named_by_v1)
    identity.cgroup = std::move(cgroup);
  else
    place(identity, std::move(cgroup), joined.pid);
  add_image(images, joined.boot_time_ns, std::move(identity));
}

void ProcessTable::add_image(Entry& images, uint64_t since_ns, ProcessIdentity identity,
                             std::optional<ExecFacts> unread) {
  images.push_back(Image{since_ns, std::move(identity), std::move(unread)});
  while (images.size() > kImagesKept) images.pop_front();
}

void ProcessTable::place(ProcessIdentity& identity, std::string cgroup, uint32_t pid) {
  ContainerIdentity container = container_from_cgroup(cgroup);
  set_placement(identity, std::move(cgroup), std::move(container));
  set_names(identity, namer_, pid);
}

ProcessIdentity ProcessTable::from_exec_event(uint32_t pid, const ExecFacts& exec,
                                              const ProcessIdentity& before) {
  ProcessIdentity identity;
  std::string cgroup = cgroup_names_.path_of(exec.cgroup_id);
  if (cgroup.empty()) {
    identity = before;  // its container went with it (or no cgroup v2): an exec changed no cgroup
  } else {
    place(identity, std::move(cgroup), pid);
  }
  identity.exe = exec.filename;
  if (exec.netns) identity.netns = exec.netns;  // `ip netns exec` moves a process before its exec
  return identity;
}

void ProcessTable::remember(uint32_t pid) {
  if (!processes_.contains(pid)) read_new(pid);  // a known one keeps the images its execs brought
}

void ProcessTable::reread(uint32_t pid, uint64_t now_ns) {
  auto it = processes_.find(pid);
  if (it == processes_.end()) {
    read_new(pid);
    return;
  }
  ProcessIdentity identity = read_identity(pid, namer_);
  const ProcessIdentity& known = read_image(pid, it->second, it->second.size() - 1);
  // Gone meanwhile, or the same image in the same place (workload names,
  // looked up again, may fail for a moment: not a change).
  if (identity.exe.empty() ||
      (identity.exe == known.exe && identity.cgroup == known.cgroup && identity.netns == known.netns))
    return;
  add_image(it->second, now_ns, std::move(identity));
}

}  // namespace tlstap
