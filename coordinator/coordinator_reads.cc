// The coordinator's answers about runs and agents: one run's report (in flight, not yet stored,
// or from the run store), a page of the runs' listing, with the runs the store could not take
// yet in their places (SQLite is read outside the coordinator's lock), and the agents' listing.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/time/time.h"
#include "coordinator/coordinator.h"
#include "proto/message_json.h"

namespace churnlab {
namespace {

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<v1::RunReport> Coordinator::GetRun(const std::string& run_id) {
  // The report and the points not yet stored under mu_; the stored series after it.
  std::optional<v1::RunReport> report;
  std::vector<v1::SeriesPoint> unstored;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(run_id);
    auto unsaved = unsaved_.find(run_id);
    if (it != running_.end()) {
      report = BuildReport(it->second);
      for (const auto& [seq, point] : it->second.unstored_points) unstored.push_back(point);
    } else if (unsaved != unsaved_.end()) {
      report = unsaved->second.report;
      for (const auto& [seq, point] : unsaved->second.points) unstored.push_back(point);
    }
  }
  if (!report) return store_->Load(run_id);
  absl::StatusOr<std::vector<v1::SeriesPoint>> points = store_->LoadPoints(run_id);
  if (points.ok()) {
    report->mutable_series()->Assign(points->begin(), points->end());
  } else if (report->state() == v1::RunReport::STATE_RUNNING) {
    return points.status();
  }
  for (v1::SeriesPoint& point : unstored) *report->add_series() = std::move(point);
  return *std::move(report);
}

absl::StatusOr<RunPage> Coordinator::ListRuns(const RunQuery& query) {
  absl::StatusOr<RunPage> page = store_->List(query);
  std::lock_guard<std::mutex> lock(mu_);
  if (unsaved_.empty()) return page;
  // The runs the store could not take, where the page would list them, in the store's order
  // (newest start first, then run id). Those past the page's last stored run belong to a later
  // page, and those before `after` to an earlier one.
  auto key = [](const v1::RunSummary& s) { return std::pair(s.started_at(), s.run_id()); };
  std::optional<std::pair<std::string, std::string>> last_stored;
  if (page.ok() && !page->next.empty() && !page->runs.empty()) last_stored = key(page->runs.back());
  std::vector<v1::RunSummary> merged;
  for (const auto& [id, unsaved] : unsaved_) {
    const v1::RunReport& r = unsaved.report;
    std::pair<std::string, std::string> at(r.started_at(), id);
    if (!HasTags(r.spec(), query.tags) || (!query.after.empty() && id >= query.after) ||
        (last_stored && at < *last_stored) ||
        (query.state != v1::RunReport::STATE_UNSPECIFIED && r.state() != query.state)) {
      continue;
    }
    v1::RunSummary& summary = merged.emplace_back();
    summary.set_run_id(r.run_id());
    summary.set_name(r.spec().name());
    summary.set_state(r.state());
    summary.set_started_at(r.started_at());
    summary.set_verdict(r.verdict());
    summary.set_achieved_rate(r.achieved_rate());
    summary.set_requested_rate(r.requested_rate());
    *summary.mutable_tags() = r.spec().tags();
  }
  if (page.ok()) {
    for (v1::RunSummary& summary : page->runs) {
      if (unsaved_.count(summary.run_id()) == 0) merged.push_back(std::move(summary));
    }
  }
  std::sort(merged.begin(), merged.end(),
            [&](const v1::RunSummary& a, const v1::RunSummary& b) { return key(a) > key(b); });
  RunPage out;
  out.next = page.ok() ? page->next : "";
  if (merged.size() > query.limit) {
    merged.resize(query.limit);
    out.next = merged.back().run_id();
  }
  out.runs = std::move(merged);
  return out;
}

std::vector<v1::AgentInfo> Coordinator::ListAgents(const std::vector<std::string>& full) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::AgentInfo> out;
  const std::string now = Rfc3339(options_.wall());
  const std::set<std::string> named(full.begin(), full.end());
  for (const auto& [name, entry] : agents_) {
    if (!named.empty() && named.count(name) == 0) continue;
    v1::AgentInfo info;
    if (named.empty()) {
      info = entry.summary;
    } else {
      *info.mutable_hello() = entry.hello;
      info.set_source_ips_total(static_cast<uint32_t>(entry.hello.source_ips_size()));
      info.set_listen_addresses_total(static_cast<uint32_t>(entry.hello.listen_addresses_size()));
    }
    info.set_state(entry.hello.observer()    ? v1::AgentInfo::STATE_OBSERVER
                   : entry.busy_with.empty() ? v1::AgentInfo::STATE_IDLE
                                             : v1::AgentInfo::STATE_RUNNING);
    info.set_busy_with(entry.busy_with.empty() ? Word(info.state()) : entry.busy_with);
    // An attached agent's stream is alive: gRPC keepalive drops a silent one within ~2.5 s.
    info.set_last_seen(now);
    out.push_back(std::move(info));
  }
  for (const auto& [name, lost] : lost_) {
    if (!named.empty() && named.count(name) == 0) continue;
    v1::AgentInfo info = lost.summary;
    info.set_state(v1::AgentInfo::STATE_LOST);
    info.set_busy_with("lost");
    info.set_last_seen(Rfc3339(lost.at));
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace churnlab
