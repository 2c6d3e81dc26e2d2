#include "cli/workload_filter.h"

#include <algorithm>

#include "common/log.h"

namespace tlstap {
namespace {

// Without the kernel's reports, the delay before a new workload is captured.
constexpr auto kLookInterval = std::chrono::seconds(1);
// With them, a look in case one was lost (a full control ring, counted).
constexpr auto kFallbackInterval = std::chrono::seconds(10);

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
    WorkloadDirectory& directory = (*directories)[i];
    if (!directory) return directory.error();  // a short ID that means several containers
    if (*directory) {
      log::info("{} {}: capturing processes in {} and below", option_name(query.kind), query.given,
                **directory);
      config.cgroups.push_back(std::move(**directory));
    } else {
      log::warn("{} {}: no {} runs on this host yet; it is captured once it starts", option_name(query.kind),
                query.given, noun(query.kind));
      filter.waiting_.push_back({query, {}});
    }
  }
  filter.filtered_ = config.cgroups;  // --cgroup's and the workloads running now
  filter.last_look_ = std::chrono::steady_clock::now();
  return filter;
}

bool WorkloadFilter::covers(uint64_t cgroup_id) const {
  if (filtered_.empty()) return false;
  std::string directory = names_.directory_of(cgroup_id);
  return std::any_of(filtered_.begin(), filtered_.end(),
                     [&](const std::string& filtered) { return cgroup_within(directory, filtered); });
}

void WorkloadFilter::watch(Tracer& tracer) {
  if (waiting_.empty()) return;
  if (auto watched = tracer.watch_new_cgroups(); !watched) {
    log::warn("{}: new cgroups are looked for once a second instead", watched.error().message);
    return;
  }
  watching_ = true;
  look_pending_ = true;  // a cgroup made since start() looked is not reported
}

std::vector<std::string> WorkloadFilter::poll(Tracer& tracer) {
  if (waiting_.empty()) return {};
  auto now = std::chrono::steady_clock::now();
  // The reports of a burst (a pod's cgroups) handled in one turn make one look.
  bool due = look_pending_ || now - last_look_ >= (watching_ ? kFallbackInterval : kLookInterval);
  if (!due) return {};
  last_look_ = now;
  look_pending_ = false;
  auto added = look(tracer);
  if (waiting_.empty()) tracer.stop_watching_new_cgroups();  // every one found: nothing to report for
  return added;
}

std::vector<std::string> WorkloadFilter::look(Tracer& tracer) {
  std::vector<WorkloadQuery> queries;
  for (const auto& waiting : waiting_) queries.push_back(waiting.query);
  auto directories = resolve_workloads(queries);
  if (!directories) return {};  // the v2 hierarchy was there at start: unmounted since, nothing to find
  std::vector<std::string> added;
  std::vector<Waiting> still_waiting;
  for (size_t i = 0; i < waiting_.size(); ++i) {
    Waiting& waiting = waiting_[i];
    const WorkloadQuery& query = waiting.query;
    WorkloadDirectory& directory = (*directories)[i];
    // A short ID two containers now share, or a cgroup gone before it was
    // opened: said once per new reason, and looked for again.
    std::string problem;
    if (!directory) {
      problem = directory.error().message;
    } else if (*directory) {
      auto filtered = tracer.add_cgroup(**directory);
      if (filtered) {
        log::info("{} {}: started; capturing processes in {} and below", option_name(query.kind), query.given,
                  **directory);
        filtered_.push_back(**directory);
        added.push_back(std::move(**directory));
        continue;
      }
      problem = filtered.error().message;
    }
    if (!problem.empty() && problem != waiting.last_problem) {
      log::warn("{} {}: {}; still waiting", option_name(query.kind), query.given, problem);
      waiting.last_problem = std::move(problem);
    }
    still_waiting.push_back(std::move(waiting));
  }
  waiting_ = std::move(still_waiting);
  return added;
}

}  // namespace tlstap
