#include "cli/terminal.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

namespace tlstap {
namespace {

void write_all(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
    if (n <= 0) return;  // a closed terminal: nothing left to show
    text.remove_prefix(static_cast<size_t>(n));
  }
}

winsize window_size() {
  winsize size{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) size = {24, 80, 0, 0};
  return size;
}

}  // namespace

Terminal::Terminal() {
  if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_) == 0) {
    termios raw = saved_;
    raw.c_lflag &= ~(ICANON | ECHO);  // keys one by one, unechoed; ISIG stays: Ctrl-C still stops
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    raw_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  write_all("\x1b[?1049h\x1b[?25l");  // alternate screen, hide the cursor
}

Terminal::~Terminal() {
  write_all("\x1b[?25h\x1b[?1049l");
  if (raw_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
}

void Terminal::draw(std::string_view screen) {
  std::string frame = "\x1b[H";  // home, then each line cleared to its end
  for (size_t start = 0; start < screen.size();) {
    size_t end = screen.find('\n', start);
    if (end == std::string_view::npos) end = screen.size();
    frame.append(screen.substr(start, end - start));
    frame += "\x1b[K\r\n";
    start = end + 1;
  }
  frame += "\x1b[J";  // and everything below
  write_all(frame);
}

bool Terminal::quit_requested() {
  if (!raw_) return false;
  char keys[32];
  ssize_t n = ::read(STDIN_FILENO, keys, sizeof(keys));
  if (n == 0) return false;  // VMIN 0: nothing typed
  for (ssize_t i = 0; i < n; ++i)
    if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 4) return true;
  return false;
}

int Terminal::width() const {
  return window_size().ws_col;
}

int Terminal::height() const {
  return window_size().ws_row;
}

}  // namespace tlstap
