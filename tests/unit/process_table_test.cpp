// The process table on real processes: data from before an exec keeps the
// image it came from, and a process gone by its exec keeps what was known.
#include "discovery/process_table.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

namespace tlstap {
namespace {

std::string exe_of(pid_t pid) {
  std::error_code error;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", error).string();
}

// A child that execs `program` once released; killed and reaped at the end.
class ExecingChild {
 public:
  explicit ExecingChild(const char* program) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      char go;
      close(fds[1]);
      if (read(fds[0], &go, 1) == 1) execl(program, program, "30", nullptr);
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
  ExecingChild child(sleep.c_str());
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

TEST(ProcessTable, AProcessGoneBeforeItIsReadIsUnknown) {
  ProcessTable table;
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  EXPECT_EQ(table.identity(pid, 0), ProcessIdentity{});
}

}  // namespace
}  // namespace tlstap
