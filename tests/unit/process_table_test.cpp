// The process table on real processes: data from before an exec keeps the
// image it came from, and a process gone by its exec keeps what was known.
#include "discovery/process_table.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "common/proc.h"
#include "discovery/container_identity.h"

namespace tlstap {
namespace {

std::string exe_of(pid_t pid) {
  std::error_code error;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", error).string();
}

uint64_t inode_of(const std::string& path) {
  struct stat file {};
  EXPECT_EQ(stat(path.c_str(), &file), 0) << path;
  return file.st_ino;
}

// A child that execs `argv` once released; killed and reaped at the end.
class ExecingChild {
 public:
  explicit ExecingChild(std::vector<const char*> argv) {
    argv.push_back(nullptr);
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      char go;
      close(fds[1]);
      if (read(fds[0], &go, 1) == 1) execv(argv[0], const_cast<char* const*>(argv.data()));
      _exit(127);
    }
    close(fds[0]);
    release_ = fds[1];
  }
  ~ExecingChild() {
    close(release_);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  // Lets it exec and waits until /proc shows the new image.
  void exec_and_wait(const std::string& program) {
    ASSERT_EQ(write(release_, "x", 1), 1);
    for (int i = 0; i < 500 && exe_of(pid_) != program; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(exe_of(pid_), program);
  }
  void end() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int release_ = -1;
};

TEST(ProcessTable, DataFromBeforeAnExecKeepsItsImage) {
  const std::string sleep = std::filesystem::canonical("/usr/bin/sleep").string();
  const std::string self = exe_of(getpid());
  ExecingChild child({sleep.c_str(), "30"});
  ProcessTable table;
  ASSERT_EQ(table.identity(child.pid(), 100).exe, self);  // the fork, before its exec
  const uint32_t netns = table.identity(child.pid(), 100).netns;
  EXPECT_NE(netns, 0u);

  child.exec_and_wait(sleep);
  table.refresh(ProcessEvent{.kind = ProcessEventKind::exec,
                             .pid = static_cast<uint32_t>(child.pid()),
                             .boot_time_ns = 1000,
                             .filename = sleep});
  EXPECT_EQ(table.identity(child.pid(), 999).exe, self);  // still in the ring when the exec was handled
  EXPECT_EQ(table.identity(child.pid(), 1000).exe, sleep);
  EXPECT_EQ(table.identity(child.pid(), 1000).netns, netns);

  // Gone before its next exec is handled: the event's path and namespace, the cgroup known before.
  const std::string cgroup = table.identity(child.pid(), 1000).cgroup;
  child.end();
  table.refresh(ProcessEvent{.kind = ProcessEventKind::exec,
                             .pid = static_cast<uint32_t>(child.pid()),
                             .boot_time_ns = 2000,
                             .cgroup_id = 0,
                             .netns = 4026532301,
                             .filename = "/usr/bin/true"});
  const ProcessIdentity& gone = table.identity(child.pid(), 2000);
  EXPECT_EQ(gone.exe, std::filesystem::canonical("/usr/bin/true").string());
  EXPECT_EQ(gone.netns, 4026532301u);
  EXPECT_EQ(gone.cgroup, cgroup);
  EXPECT_EQ(table.identity(child.pid(), 1500).exe, sleep);
}

// sh -c 'exec sleep': both execs are handled once /proc shows sleep. Each
// exec's image is its own (the event names sh's file, /proc names sleep's),
// and data from before both keeps the first image.
TEST(ProcessTable, ExecsHandledAfterALaterOneKeepTheirOwnImages) {
  const std::string sleep = std::filesystem::canonical("/usr/bin/sleep").string();
  const std::string sh = std::filesystem::canonical("/bin/sh").string();
  const std::string self = exe_of(getpid());
  ExecingChild child({"/bin/sh", "-c", "exec /usr/bin/sleep 30"});
  ProcessTable table;
  ASSERT_EQ(table.identity(child.pid(), 100).exe, self);
  child.exec_and_wait(sleep);
  auto pid = static_cast<uint32_t>(child.pid());
  table.refresh(
      ProcessEvent{.pid = pid, .boot_time_ns = 1000, .exe_inode = inode_of(sh), .filename = "/bin/sh"});
  table.refresh(
      ProcessEvent{.pid = pid, .boot_time_ns = 2000, .exe_inode = inode_of(sleep), .filename = sleep});
  EXPECT_EQ(table.identity(child.pid(), 999).exe, self);
  EXPECT_EQ(table.identity(child.pid(), 1500).exe, "/bin/sh");  // as executed: /proc no longer shows it
  EXPECT_EQ(table.identity(child.pid(), 1500).netns, table.identity(child.pid(), 2000).netns);
  EXPECT_EQ(table.identity(child.pid(), 2000).exe, sleep);
}

// Process events were lost: a known process is not read again when
// remembered, but is when reread, and an exec that went untold starts an
// image from the time of that read.
TEST(ProcessTable, AnExecLostWithItsEventIsFoundByAReread) {
  const std::string sleep = std::filesystem::canonical("/usr/bin/sleep").string();
  const std::string self = exe_of(getpid());
  ExecingChild child({sleep.c_str(), "30"});
  auto pid = static_cast<uint32_t>(child.pid());
  ProcessTable table;
  table.remember(pid);
  table.reread(pid, 500);  // unchanged
  ASSERT_EQ(table.identity(pid, 600).exe, self);

  child.exec_and_wait(sleep);
  table.remember(pid);
  EXPECT_EQ(table.identity(pid, 1000).exe, self);
  table.reread(pid, 1000);
  EXPECT_EQ(table.identity(pid, 999).exe, self);
  EXPECT_EQ(table.identity(pid, 1000).exe, sleep);
  EXPECT_EQ(table.identity(pid, 1000).netns, table.identity(pid, 999).netns);

  // Gone by the next read: what was known stands.
  child.end();
  table.reread(pid, 2000);
  EXPECT_EQ(table.identity(pid, 2000).exe, sleep);
}

// An exec's image is read from /proc when first needed, or when asked to
// while the process runs; read after the process is gone, the exec event's
// facts stand in (here its network namespace, unlike the real one).
TEST(ProcessTable, AnExecIsReadWhenFirstNeededOrWhenAskedTo) {
  const std::string sleep = std::filesystem::canonical("/usr/bin/sleep").string();
  ExecingChild asked({sleep.c_str(), "30"});
  ExecingChild not_asked({sleep.c_str(), "30"});
  asked.exec_and_wait(sleep);
  not_asked.exec_and_wait(sleep);
  ProcessTable table;
  const uint32_t event_netns = 4026532301;
  for (pid_t pid : {asked.pid(), not_asked.pid()})
    table.refresh(ProcessEvent{.pid = static_cast<uint32_t>(pid),
                               .boot_time_ns = 1000,
                               .netns = event_netns,
                               .exe_inode = inode_of(sleep),
                               .filename = sleep});
  table.read_now(asked.pid());
  asked.end();
  not_asked.end();
  EXPECT_NE(table.identity(asked.pid(), 1000).netns, event_netns);
  EXPECT_NE(table.identity(asked.pid(), 1000).netns, 0u);
  EXPECT_EQ(table.identity(not_asked.pid(), 1000).netns, event_netns);
  EXPECT_EQ(table.identity(not_asked.pid(), 1000).exe, sleep);
}

TEST(ProcessTable, OnlyTheLatestImagesAreKept) {
  const std::string sleep = std::filesystem::canonical("/usr/bin/sleep").string();
  const std::string images[] = {std::filesystem::canonical("/usr/bin/true").string(),
                                std::filesystem::canonical("/usr/bin/false").string()};
  ExecingChild child({sleep.c_str(), "30"});
  ProcessTable table;
  child.exec_and_wait(sleep);
  auto pid = static_cast<uint32_t>(child.pid());
  const uint64_t execs = ProcessTable::kImagesKept + 2;
  for (uint64_t i = 0; i < execs; ++i) {
    const std::string& image = images[i % 2];
    table.refresh(ProcessEvent{
        .pid = pid, .boot_time_ns = (i + 1) * 1000, .exe_inode = inode_of(image), .filename = image});
  }
  // The oldest image kept, the third exec's, stands for everything before it.
  const uint64_t oldest_kept = execs - ProcessTable::kImagesKept;
  EXPECT_EQ(table.identity(child.pid(), 0).exe, images[oldest_kept % 2]);
  EXPECT_EQ(table.identity(child.pid(), oldest_kept * 1000 + 500).exe, images[oldest_kept % 2]);
  EXPECT_EQ(table.identity(child.pid(), UINT64_MAX).exe, images[(execs - 1) % 2]);
}

// A real cgroup v2 directory named as containerd names a container's, below
// the test's own cgroup; removed at the end, after the process is moved back.
class ContainerCgroup {
 public:
  ContainerCgroup() {
    auto mount = find_cgroup2_mount(read_text_file("/proc/self/mountinfo"));
    if (!mount || geteuid() != 0) return;
    mount_ = *mount;
    home_ = mount_ + cgroup_v2_path(read_text_file("/proc/self/cgroup"));
    id_ = std::string(64, 'c');
    path_ = "/tlstap-unit-" + std::to_string(getpid()) + "/cri-containerd-" + id_ + ".scope";
    std::filesystem::create_directories(mount_ + path_);
  }
  ~ContainerCgroup() {
    if (mount_.empty()) return;
    for (pid_t pid : moved_) move(pid, home_);  // gone by now, in the test below
    std::error_code ignored;                    // a failure here must not hide the test's own
    std::filesystem::remove(mount_ + path_, ignored);
    std::filesystem::remove(std::filesystem::path(mount_ + path_).parent_path(), ignored);
  }
  bool usable() const { return !mount_.empty(); }
  void enter(pid_t pid) {
    move(pid, mount_ + path_);
    moved_.push_back(pid);
  }
  uint64_t cgroup_id() const {
    struct stat directory {};
    EXPECT_EQ(stat((mount_ + path_).c_str(), &directory), 0);
    return directory.st_ino;
  }
  const std::string& path() const { return path_; }
  const std::string& container_id() const { return id_; }

 private:
  static void move(pid_t pid, const std::string& directory) {
    std::ofstream(directory + "/cgroup.procs") << pid << std::flush;
  }
  std::string mount_, home_, path_, id_;
  std::vector<pid_t> moved_;
};

// A known process moved into a container's cgroup: data from then on names
// the container, data from before keeps the cgroup it was sent from.
TEST(ProcessTable, AMoveIntoAnotherCgroupStartsAnImage) {
  ContainerCgroup container;
  if (!container.usable()) GTEST_SKIP() << "needs root and the cgroup v2 hierarchy";
  const std::string sleep = std::filesystem::canonical("/usr/bin/sleep").string();
  ExecingChild child({sleep.c_str(), "30"});
  child.exec_and_wait(sleep);
  ProcessTable table;
  const ProcessIdentity before = table.identity(child.pid(), 100);
  ASSERT_EQ(before.exe, sleep);
  ASSERT_EQ(before.container_id, "");

  container.enter(child.pid());
  ProcessEvent joined{.kind = ProcessEventKind::cgroup_joined,
                      .pid = static_cast<uint32_t>(child.pid()),
                      .boot_time_ns = 1000,
                      .cgroup_id = container.cgroup_id()};
  table.moved(joined);
  EXPECT_EQ(table.identity(child.pid(), 999), before);
  const ProcessIdentity& after = table.identity(child.pid(), 1000);
  EXPECT_EQ(after.cgroup, container.path());
  EXPECT_EQ(after.container_id, container.container_id());
  EXPECT_EQ(after.exe, sleep);
  EXPECT_EQ(after.netns, before.netns);

  // The same move reported again adds no image: the one from before the move is still kept.
  for (uint64_t i = 2; i < 2 + ProcessTable::kImagesKept; ++i) {
    joined.boot_time_ns = i * 1000;
    table.moved(joined);
  }
  EXPECT_EQ(table.identity(child.pid(), 999), before);
}

TEST(ProcessTable, AProcessGoneBeforeItIsReadIsUnknown) {
  ProcessTable table;
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  EXPECT_EQ(table.identity(pid, 0), ProcessIdentity{});
}

}  // namespace
}  // namespace tlstap
