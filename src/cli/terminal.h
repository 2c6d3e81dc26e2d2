// The terminal of the live view, held for its lifetime: the alternate
// screen and a hidden cursor, keys read without waiting for Enter; all of it
// restored when it goes, however the view ends.
#pragma once

#include <termios.h>

#include <string_view>

namespace tlstap {

class Terminal {
 public:
  Terminal();
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Replaces what is on screen.
  void draw(std::string_view screen);
  // A 'q' (or Ctrl-D / end of input) arrived since the last call.
  bool quit_requested();
  int width() const;
  int height() const;

 private:
  bool raw_ = false;
  termios saved_{};
};

}  // namespace tlstap
