// Prometheus text exposition (format 0.0.4): metric families with their HELP and TYPE lines,
// samples with escaped label values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace churnlab {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricFamily {
 public:
  // `type`: "counter", "gauge" or "histogram".
  MetricFamily(std::string name, const char* type, const char* help)
      : name_(std::move(name)), type_(type), help_(help) {}

  // A sample of the family; `suffix` names a histogram's part ("_bucket", "_sum", "_count").
  void Add(const MetricLabels& labels, double value, absl::string_view suffix = "");
  // HELP, TYPE and the samples (none yet is fine: the family is still described).
  void AppendTo(std::string* out) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  const char* type_;
  const char* help_;
  std::string samples_;
};

// A histogram bucket's `le` for a bound in nanoseconds, in seconds without trailing zeros
// (8191 -> "0.000008191").
std::string LeSeconds(int64_t nanos);

}  // namespace churnlab
