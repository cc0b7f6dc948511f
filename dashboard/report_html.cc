#include "dashboard/report_html.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "proto/report_export.h"

namespace churnlab {
namespace dashboard_assets {
// Defined by the files dashboard/embed_file.cmake generates.
extern const std::string_view kUplotJs;
extern const std::string_view kUplotCss;
extern const std::string_view kStyleCss;
extern const std::string_view kReportChartsJs;
extern const std::string_view kReportViewJs;
extern const std::string_view kReportPageJs;
extern const std::string_view kReportTemplate;
}  // namespace dashboard_assets

namespace {

// Debian's abseil has a string_view of its own.
absl::string_view Asset(std::string_view file) { return {file.data(), file.size()}; }

std::string HtmlEscape(absl::string_view text) {
  return absl::StrReplaceAll(
      text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}});
}

// The runs as {"runs": [...]}, inside <script type="application/json">: no '<', '>' or '&' can
// end the element or start markup, and JSON reads "\u003c" as '<'.
std::string DataJson(const std::vector<v1::RunReport>& reports) {
  std::string json = "{\"runs\": [";
  for (size_t i = 0; i < reports.size(); ++i) {
    absl::StrAppend(&json, i ? ",\n" : "\n", ReportToJson(reports[i]));
  }
  absl::StrAppend(&json, "]}");
  return absl::StrReplaceAll(json, {{"<", "\\u003c"}, {">", "\\u003e"}, {"&", "\\u0026"}});
}

std::string Title(const std::vector<v1::RunReport>& reports) {
  if (reports.size() != 1) return absl::StrCat("churnlab: ", reports.size(), " runs side by side");
  const v1::RunReport& r = reports[0];
  return absl::StrCat("churnlab run ", r.run_id(),
                      r.spec().name().empty() ? "" : absl::StrCat(" — ", r.spec().name()));
}

}  // namespace

std::string ScriptSafe(absl::string_view text) {
  // In JS, "<\/" and "<\!" read as "</" and "<!" in strings, regular expressions and
  // templates; outside them neither sequence is valid code.
  return absl::StrReplaceAll(text, {{"</", "<\\/"}, {"<!--", "<\\!--"}});
}

std::string ReportsToHtml(const std::vector<v1::RunReport>& reports) {
  namespace a = dashboard_assets;
  std::string scripts;
  for (std::string_view js :
       {a::kUplotJs, a::kReportChartsJs, a::kReportViewJs, a::kReportPageJs}) {
    absl::StrAppend(&scripts, "<script>\n", ScriptSafe(Asset(js)), "\n</script>\n");
  }
  std::string style = absl::StrCat(Asset(a::kUplotCss), "\n", Asset(a::kStyleCss));
  // </style> cannot occur in our CSS or uPlot's; the replacement keeps it so.
  style = absl::StrReplaceAll(style, {{"</", "<\\/"}});
  return absl::StrReplaceAll(Asset(a::kReportTemplate),
                             {{"<!--churnlab:title-->", HtmlEscape(Title(reports))},
                              {"<!--churnlab:style-->", style},
                              {"<!--churnlab:data-->", DataJson(reports)},
                              {"<!--churnlab:scripts-->", scripts}});
}

}  // namespace churnlab
