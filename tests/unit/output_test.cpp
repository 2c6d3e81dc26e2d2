// Output files hold captured plaintext: they must end up readable by their owner only.
#include "sink/output.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/unique_fd.h"
#include "test_support.h"

namespace tlstap {
namespace {

mode_t permissions(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw std::runtime_error("stat " + path);
  return st.st_mode & 07777;
}

void write_through(const std::string& path, std::string_view text) {
  auto out = Output::open(path);
  ASSERT_TRUE(out) << out.error().message;
  out->write(text);
  out->flush();
  EXPECT_FALSE(out->failed());
}

TEST(Output, NewFileIsOwnerOnly) {
  test::TempDir dir;
  const std::string path = dir.path("capture.txt");
  write_through(path, "secret");
  EXPECT_EQ(permissions(path), 0600u);
  EXPECT_EQ(test::read_text_file(path), "secret");
}

TEST(Output, ExistingReadableFileIsRestrictedAndTruncated) {
  test::TempDir dir;
  const std::string path = dir.path("capture.txt");
  test::write_text_file(path, "older and longer content");
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  write_through(path, "new");
  EXPECT_EQ(permissions(path), 0600u);
  EXPECT_EQ(test::read_text_file(path), "new");
}

// The capture loop flushes once per poll: between flushes a busy capture's
// lines must wait in one buffer, not go out in a write syscall per 4 KiB.
TEST(Output, LinesWaitForTheFlushInALargeBuffer) {
  test::TempDir dir;
  const std::string path = dir.path("capture.jsonl");
  auto out = Output::open(path);
  ASSERT_TRUE(out) << out.error().message;
  const std::string line(3000, 'x');
  for (int i = 0; i < 300; ++i) out->write(line);  // 900 KB
  EXPECT_EQ(test::read_text_file(path).size(), 0u);
  out->flush();
  EXPECT_EQ(test::read_text_file(path).size(), 300 * line.size());
  // Moved (as Result does), the stream keeps its buffer.
  Output moved = std::move(*out);
  moved.write(line);
  moved.flush();
  EXPECT_EQ(test::read_text_file(path).size(), 301 * line.size());
}

TEST(Output, UnwritablePathsAreErrors) {
  test::TempDir dir;
  auto missing_dir = Output::open(dir.path("no/such/dir/capture.txt"));
  ASSERT_FALSE(missing_dir);
  EXPECT_EQ(missing_dir.error().errno_value, ENOENT);
  EXPECT_NE(missing_dir.error().message.find("no/such/dir/capture.txt"), std::string::npos);

  auto directory = Output::open(dir.path(""));
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().errno_value, EISDIR);
}

TEST(Output, DashAndEmptyMeanStdout) {
  EXPECT_TRUE(Output::open(""));
  EXPECT_TRUE(Output::open("-"));
}

TEST(Output, SpecialFilesKeepTheirMode) {
  // `-o /dev/null` or a FIFO: only a regular file we create may be chmod'ed;
  // restricting a shared device node would break every other user of it.
  test::TempDir dir;
  const std::string fifo = dir.path("pipe");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  ASSERT_EQ(chmod(fifo.c_str(), 0644), 0);                                 // regardless of umask
  UniqueFd reader(open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));  // so opening for write won't block
  ASSERT_TRUE(reader.valid());
  write_through(fifo, "through the pipe");
  EXPECT_EQ(permissions(fifo), 0644u);
}

}  // namespace
}  // namespace tlstap
