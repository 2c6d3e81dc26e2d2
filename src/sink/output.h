// A destination for formatted output: stdout or a file created 0600.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace tlstap {

class Output {
 public:
  // "" or "-" means stdout. Files are created (or truncated) with mode 0600.
  static Result<Output> open(const std::string& path);

  Output(Output&&) = default;
  // Assigning would free the buffer before the stream it replaces is flushed.
  Output& operator=(Output&&) = delete;

  void write(std::string_view bytes) { std::fwrite(bytes.data(), 1, bytes.size(), file_.get()); }
  void flush() { std::fflush(file_.get()); }
  bool failed() const { return std::ferror(file_.get()) != 0; }

 private:
  struct Closer {
    bool owned = true;
    void operator()(std::FILE* f) const {
      if (owned)
        std::fclose(f);
      else
        std::fflush(f);
    }
  };
  explicit Output(std::unique_ptr<std::FILE, Closer> file) : file_(std::move(file)) {}
  // A file's buffer (stdio's own would be st_blksize, 4 KiB: a write syscall
  // per 4 KiB of capture). Declared first, it outlives the stream's last flush.
  // stdout's, when not a terminal, is static.
  std::unique_ptr<char[]> buffer_;
  std::unique_ptr<std::FILE, Closer> file_;
};

}  // namespace tlstap
