#include "coordinator/source_detail.h"

#include <algorithm>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace churnlab {
namespace {

// Keeps the `keep` sources of `agents` with the highest fill(agent, source); the first in order
// among equals. Each agent's sources stay in their order; those left out are counted.
template <typename Agent, typename Fill>
void KeepFullest(google::protobuf::RepeatedPtrField<Agent>* agents, size_t keep, Fill fill) {
  struct Entry {
    double fill;
    int agent;
    int source;
  };
  std::vector<Entry> all;
  for (int i = 0; i < agents->size(); ++i) {
    const Agent& agent = agents->Get(i);
    for (int j = 0; j < agent.sources_size(); ++j)
      all.push_back({fill(agent, agent.sources(j)), i, j});
  }
  if (all.size() <= keep) return;
  auto fuller = [](const Entry& a, const Entry& b) {
    return std::tie(b.fill, a.agent, a.source) < std::tie(a.fill, b.agent, b.source);
  };
  std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(), fuller);
  std::vector<std::vector<bool>> kept(agents->size());
  for (int i = 0; i < agents->size(); ++i) kept[i].assign(agents->Get(i).sources_size(), false);
  for (size_t k = 0; k < keep; ++k) kept[all[k].agent][all[k].source] = true;
  for (int i = 0; i < agents->size(); ++i) {
    Agent* agent = agents->Mutable(i);
    auto* sources = agent->mutable_sources();
    int next = 0;
    for (int j = 0; j < sources->size(); ++j) {
      if (kept[i][j]) sources->SwapElements(next++, j);
    }
    const int omitted = sources->size() - next;
    sources->DeleteSubrange(next, omitted);
    agent->set_sources_omitted(agent->sources_omitted() + static_cast<uint32_t>(omitted));
  }
}

double Share(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0 : static_cast<double>(part) / static_cast<double>(whole);
}

// Drops the entries of `list` (with agent() and ip()) whose source is not in `kept`.
template <typename Entry>
void KeepListed(const std::set<std::pair<std::string, std::string>>& kept,
                google::protobuf::RepeatedPtrField<Entry>* list) {
  int next = 0;
  for (int j = 0; j < list->size(); ++j) {
    if (kept.count({list->Get(j).agent(), list->Get(j).ip()}) > 0) list->SwapElements(next++, j);
  }
  list->DeleteSubrange(next, list->size() - next);
}

}  // namespace

void KeepFullestSources(v1::SeriesPoint* point, size_t keep) {
  KeepFullest(point->mutable_agents(), keep, [](const v1::AgentPoint& a, const v1::SourcePoint& s) {
    return Share(s.ports_in_use(), a.port_range_size());
  });
}

v1::RunReport ViewerSummary(const v1::RunReport& report) {
  v1::RunReport out = report;
  KeepFullest(out.mutable_agents(), kMaxViewerSources,
              [](const v1::AgentReport&, const v1::SourceReport& s) {
                return Share(s.peak_ports_in_use(), s.port_range_size());
              });
  // The per-source lists of the budget and the held connections follow the sources kept.
  std::set<std::pair<std::string, std::string>> kept;
  for (const v1::AgentReport& agent : out.agents()) {
    for (const v1::SourceReport& source : agent.sources()) kept.insert({agent.name(), source.ip()});
  }
  if (out.has_tuple_budget()) KeepListed(kept, out.mutable_tuple_budget()->mutable_sources());
  if (out.has_concurrency()) KeepListed(kept, out.mutable_concurrency()->mutable_sources());
  auto* series = out.mutable_series();
  if (series->size() > 1) series->DeleteSubrange(0, series->size() - 1);
  for (v1::SeriesPoint& point : *series) KeepFullestSources(&point, kMaxViewerSources);
  return out;
}

}  // namespace churnlab
