#include "sink/output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tlstap {

namespace {

// Fewer, larger writes: the capture loop flushes between polls anyway.
constexpr size_t kBufferSize = 1 << 20;

// stdout outlives every Output (exit flushes it last): its buffer is never
// freed. A terminal keeps its line buffering; a pipe or file (a pod's log)
// gets the large buffer (glibc flushes what was written before, if anything).
std::FILE* buffered_stdout() {
  static bool set = [] {
    static char buffer[kBufferSize];
    return !isatty(STDOUT_FILENO) && std::setvbuf(stdout, buffer, _IOFBF, kBufferSize) == 0;
  }();
  (void)set;
  return stdout;
}

}  // namespace

Result<Output> Output::open(const std::string& path) {
  if (path.empty() || path == "-")
    return Output(std::unique_ptr<std::FILE, Closer>(buffered_stdout(), Closer{false}));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::from_errno("cannot create output file " + path);
  // An existing file keeps its old mode through O_CREAT: captured plaintext
  // must not stay readable by others. Only regular files: /dev/null, a FIFO or
  // a terminal belong to others.
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && fchmod(fd, 0600) != 0) {
    int err = errno;
    ::close(fd);
    return Error::from_errno("cannot restrict output file " + path, err);
  }
  std::FILE* file = fdopen(fd, "w");
  if (!file) {
    int err = errno;
    ::close(fd);
    return Error::from_errno("fdopen " + path, err);
  }
  Output output(std::unique_ptr<std::FILE, Closer>(file, Closer{true}));
  // glibc ignores the size asked for unless it is given the buffer too.
  output.buffer_ = std::make_unique<char[]>(kBufferSize);
  std::setvbuf(file, output.buffer_.get(), _IOFBF, kBufferSize);
  return output;
}

}  // namespace tlstap
