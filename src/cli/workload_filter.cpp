#include "cli/workload_filter.h"

#include "common/log.h"

namespace tlstap {
namespace {

constexpr auto kLookInterval = std::chrono::seconds(1);

const char* noun(Workload kind) {
  return kind == Workload::container ? "container of that ID" : "pod of that UID";
}

}  // namespace

Result<WorkloadFilter> WorkloadFilter::start(const Options& options, TracerConfig& config) {
  std::vector<WorkloadQuery> queries;
  for (const auto& id : options.containers) queries.push_back({Workload::container, id});
  for (const auto& uid : options.pods) queries.push_back({Workload::pod, uid});
  auto directories = resolve_workloads(queries);
  if (!directories) return directories.error();
  WorkloadFilter filter;
  config.cgroup_filter |= !queries.empty();
  for (size_t i = 0; i < queries.size(); ++i) {
    const WorkloadQuery& query = queries[i];
    if (const auto& directory = (*directories)[i]) {
      log::info("{} {}: capturing processes in {} and below", option_name(query.kind), query.given,
                *directory);
      config.cgroups.push_back(*directory);
    } else {
      log::warn("{} {}: no {} runs on this host yet; it is captured once it starts", option_name(query.kind),
                query.given, noun(query.kind));
      filter.waiting_.push_back(query);
    }
  }
  filter.last_look_ = std::chrono::steady_clock::now();
  return filter;
}

void WorkloadFilter::poll(Tracer& tracer) {
  if (waiting_.empty()) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_look_ < kLookInterval) return;
  last_look_ = now;
  look(tracer);
}

void WorkloadFilter::look(Tracer& tracer) {
  auto directories = resolve_workloads(waiting_);
  if (!directories) {
    // A short ID that two containers now share: said once, and looked for
    // again, as one of them may go.
    if (!error_reported_) log::warn("{}; still waiting", directories.error().message);
    error_reported_ = true;
    return;
  }
  std::vector<WorkloadQuery> still_waiting;
  for (size_t i = 0; i < waiting_.size(); ++i) {
    const WorkloadQuery& query = waiting_[i];
    const auto& directory = (*directories)[i];
    if (!directory) {
      still_waiting.push_back(query);
    } else if (auto added = tracer.add_cgroup(*directory); !added) {
      log::warn("{} {}: started, but cannot be captured: {}", option_name(query.kind), query.given,
                added.error().message);
    } else {
      log::info("{} {}: started; capturing processes in {} and below", option_name(query.kind), query.given,
                *directory);
    }
  }
  waiting_ = std::move(still_waiting);
}

}  // namespace tlstap
