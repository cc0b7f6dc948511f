#include "http/prometheus_text.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace churnlab {
namespace {

// The text format escapes \ and line feeds in HELP text, and in label values also ". Other
// control characters but tab (CR, ESC: a terminal showing a scrape would act on them) have no
// escape in the format and become '?'.
std::string Escape(const std::string& value, bool quote) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || (quote && c == '"')) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return absl::StrFormat("%.17g", value);
}

}  // namespace

void MetricFamily::Add(const MetricLabels& labels, double value, absl::string_view suffix) {
  std::string line = absl::StrCat(name_, suffix);
  if (!labels.empty()) {
    line += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      absl::StrAppend(&line, i > 0 ? "," : "", labels[i].first, "=\"",
                      Escape(labels[i].second, /*quote=*/true), "\"");
    }
    line += '}';
  }
  absl::StrAppend(&line, " ", FormatValue(value), "\n");
  samples_ += line;
}

void MetricFamily::AppendTo(std::string* out) const {
  absl::StrAppend(out, "# HELP ", name_, " ", Escape(help_, /*quote=*/false), "\n# TYPE ", name_,
                  " ", type_, "\n", samples_);
}

std::string LeSeconds(int64_t nanos) {
  std::string out = absl::StrFormat("%d.%09d", nanos / 1000000000, nanos % 1000000000);
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out;
}

}  // namespace churnlab
