#include "proto/grpc/grpc_messages.h"

#include <algorithm>

namespace tlstap::proto {

GrpcMessageReader::GrpcMessageReader(size_t keep_bytes, size_t max_messages)
    : keep_bytes_(keep_bytes), max_messages_(max_messages) {}

void GrpcMessageReader::start_message() {
  uint8_t flag = std::to_integer<uint8_t>(prefix_[0]);
  if (flag > 1) {
    invalid_ = true;
    return;
  }
  current_ = GrpcMessage{.compressed = flag == 1};
  for (size_t i = 1; i < 5; ++i)
    current_.length = (current_.length << 8) | std::to_integer<uint32_t>(prefix_[i]);
  left_ = current_.length;
}

void GrpcMessageReader::finish_message(uint64_t time_ns, std::vector<GrpcMessage>& out) {
  prefix_have_ = 0;
  if (emitted_ >= max_messages_) {
    ++dropped_;
    return;
  }
  ++emitted_;
  current_.time_ns = time_ns;
  out.push_back(std::move(current_));
}

void GrpcMessageReader::feed(std::span<const std::byte> data, uint64_t time_ns,
                             std::vector<GrpcMessage>& out) {
  while (!data.empty() && !invalid_) {
    if (prefix_have_ < prefix_.size()) {
      size_t take = std::min(prefix_.size() - prefix_have_, data.size());
      std::copy_n(data.begin(), take, prefix_.begin() + prefix_have_);
      prefix_have_ += take;
      data = data.subspan(take);
      if (prefix_have_ < prefix_.size()) return;
      start_message();
    } else {
      size_t take = std::min<size_t>(left_, data.size());
      size_t keep = std::min(take, keep_bytes_ - std::min(keep_bytes_, current_.data.size()));
      current_.data.append(reinterpret_cast<const char*>(data.data()), keep);
      left_ -= static_cast<uint32_t>(take);
      data = data.subspan(take);
    }
    if (prefix_have_ == prefix_.size() && left_ == 0 && !invalid_) finish_message(time_ns, out);
  }
}

std::optional<GrpcMethod> split_grpc_path(std::string_view path) {
  if (!path.starts_with('/')) return std::nullopt;
  path.remove_prefix(1);
  size_t slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == path.size()) return std::nullopt;
  std::string_view method = path.substr(slash + 1);
  if (method.find('/') != std::string_view::npos) return std::nullopt;
  return GrpcMethod{std::string(path.substr(0, slash)), std::string(method)};
}

bool is_grpc_content_type(std::string_view content_type) {
  constexpr std::string_view kGrpc = "application/grpc";
  if (!content_type.starts_with(kGrpc)) return false;
  return content_type.size() == kGrpc.size() || content_type[kGrpc.size()] == '+' ||
         content_type[kGrpc.size()] == ';';
}

}  // namespace tlstap::proto
