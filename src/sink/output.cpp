#include "sink/output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tlstap {

Result<Output> Output::open(const std::string& path) {
  if (path.empty() || path == "-") return Output(std::unique_ptr<std::FILE, Closer>(stdout, Closer{false}));
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
  // Fewer, larger writes: the capture loop flushes between polls anyway.
  std::setvbuf(file, nullptr, _IOFBF, 1 << 20);
  return Output(std::unique_ptr<std::FILE, Closer>(file, Closer{true}));
}

}  // namespace tlstap
