// Where NSS's SSL layer does its I/O. libssl3 exports no function that moves
// application data: an application calls NSPR's PR_Write/PR_Read/PR_Send/
// PR_Recv, which call the top layer's PRIOMethods entry, which for a TLS
// socket is the SSL layer's own ssl_Write/ssl_Read/ssl_Send/ssl_Recv (static,
// unnamed in a stripped libssl3). NSS builds that layer's table at run time
// (ssl_SetupIOMethods: a copy of PR_GetDefaultIOMethods() with its own
// functions stored over it), so the functions are found in that code: the
// only caller of PR_GetDefaultIOMethods, whose stores into the copied table
// are followed register by register (x86-64).
#pragma once

#include <cstdint>

#include "binary/elf_image.h"
#include "common/result.h"

namespace tlstap {

// Virtual addresses of the SSL layer's PRIOMethods entries.
struct NssLayerMethods {
  uint64_t close = 0, read = 0, write = 0, recv = 0, send = 0;
};

Result<NssLayerMethods> find_nss_layer_methods(const ElfImage& image);

}  // namespace tlstap
