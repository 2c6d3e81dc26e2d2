// RAII owners for libbpf handles: every kernel object tlstap creates is
// released when its owner goes away, on every path out.
#pragma once

#include <bpf/libbpf.h>

#include <memory>

struct tlstap_bpf;

namespace tlstap {

struct BpfLinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
using BpfLink = std::unique_ptr<bpf_link, BpfLinkDeleter>;

struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
using RingBuffer = std::unique_ptr<ring_buffer, RingBufferDeleter>;

struct SkeletonDeleter {
  void operator()(tlstap_bpf* skeleton) const;
};
using Skeleton = std::unique_ptr<tlstap_bpf, SkeletonDeleter>;

}  // namespace tlstap
