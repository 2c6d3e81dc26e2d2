// Finds OpenSSL 3's SSL_write, SSL_read and their _ex twins in a file that
// has no symbols for them: an executable (or library) with OpenSSL linked in
// statically and then stripped. Stripping leaves what the code itself uses:
// every error OpenSSL 3 raises records its source file and function name
// (ERR_raise -> ERR_set_debug(__FILE__, __LINE__, __func__)), so ".../ssl/
// ssl_lib.c", "SSL_read" and "ssl_read_internal" stay in read-only data,
// loaded by the very functions that carry those names, and the call-frame
// entries (.eh_frame) that unwinding needs bound each function. From there:
//   SSL_read      the one function that loads "SSL_read" and the file name
//   internal      the function it calls that loads "ssl_read_internal"
//   SSL_read_ex   the other caller of that internal function, which hands
//                 it its own four arguments unchanged
// Where the compiler inlined the internal function into both public ones, the
// _ex twin cannot be told from other callers and is left out (a warning says
// so). OpenSSL 1.1 records error codes, not names, and a build without file
// names (OPENSSL_NO_FILENAMES) is not recognised: nothing is found there.
#pragma once

#include <string>
#include <vector>

#include "binary/elf_image.h"

namespace tlstap {

struct LocatedFunctions {
  std::vector<ElfSymbol> functions;  // named as OpenSSL names them
  // Each function not located and why, when the file has OpenSSL 3's names at all.
  std::vector<std::string> gaps;
  bool found_names = false;  // a function raises errors as ssl_write_internal or ssl_read_internal
};

LocatedFunctions locate_openssl_functions(const ElfImage& image);

}  // namespace tlstap
