#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "churnlab/v1/control.grpc.pb.h"
#include "cli/commands.h"
#include "cli/coordinator_client.h"
#include "cli/output_file.h"
#include "cli/report_format.h"
#include "common/flags.h"
#include "common/terminal_text.h"
#include "dashboard/report_html.h"
#include "proto/message_json.h"
#include "proto/report_export.h"
#include "proto/run_spec.h"

namespace churnlab {

int RunsCommand(int argc, char** argv) {
  const std::string program = "churnlab runs";
  CoordinatorFlags coordinator;
  v1::ListRunsRequest request;
  FlagSet flags(program,
                "Lists the coordinator's runs, newest first, with their tags, a page at a time;\n"
                "the last line gives the command for the next page.\n"
                "Example: churnlab runs --tag=build=1234 --state=completed --limit=20");
  AddCoordinatorFlags(flags, &coordinator);
  int64_t limit = kDefaultRunsPage;
  std::string after, state;
  flags.Int("limit", &limit, "runs on the page (1..1000)");
  flags.String("after", &after, "the runs listed after this run id (the previous page's last)");
  flags.String("state", &state, "only runs in this state (running, completed, cancelled, ...)");
  flags.Custom("tag", "KEY=VALUE", "", "only runs with this tag (churnlab run --tag); repeatable",
               [&request](absl::string_view v) {
                 absl::StatusOr<std::pair<std::string, std::string>> tag = ParseTag(v);
                 if (!tag.ok()) return tag.status();
                 (*request.mutable_tags())[tag->first] = tag->second;
                 return absl::OkStatus();
               });
  flags.ParseFlagsOnlyOrExit(argc, argv);
  if (limit < 1 || limit > static_cast<int64_t>(kMaxRunsPage)) {
    return Fail(program, kExitBadInput,
                absl::StrCat("--limit=", limit, ": not in 1..", kMaxRunsPage));
  }
  request.set_limit(static_cast<uint32_t>(limit));
  request.set_after(after);
  if (!state.empty()) {
    absl::StatusOr<int> n = EnumFromWord(*v1::RunReport::State_descriptor(), state);
    if (!n.ok())
      return Fail(program, kExitBadInput, absl::StrCat("--state: ", n.status().message()));
    request.set_state(static_cast<v1::RunReport::State>(*n));
  }
  std::variant<Connection, int> dialed = Dial(program, coordinator);
  if (const int* code = std::get_if<int>(&dialed)) return *code;
  grpc::ClientContext context;
  v1::ListRunsResponse response;
  grpc::Status status = std::get<Connection>(dialed).stub->ListRuns(&context, request, &response);
  if (!status.ok()) return Fail(program, ExitCodeFor(status), status.error_message());
  std::printf("%s", FormatRuns({response.runs().begin(), response.runs().end()}).c_str());
  if (!response.next().empty()) {
    std::printf("more: churnlab runs --after=%s (with the same filters)\n",
                TerminalSafe(response.next()).c_str());
  }
  return kExitOk;
}

namespace {

// The most runs one `churnlab report` reads (as the HTTP API's side-by-side page).
constexpr size_t kMaxReportsAtOnce = 16;

// The reports of `ids`, in that order; on failure the exit code (the message printed).
std::variant<std::vector<v1::RunReport>, int> GetReports(const std::string& program,
                                                         v1::Control::Stub* stub,
                                                         const std::vector<std::string>& ids) {
  std::vector<v1::RunReport> reports;
  for (const std::string& id : ids) {
    grpc::ClientContext context;
    v1::GetRunRequest request;
    request.set_run_id(id);
    v1::GetRunResponse response;
    grpc::Status status = stub->GetRun(&context, request, &response);
    if (!status.ok()) return Fail(program, ExitCodeFor(status), status.error_message());
    reports.push_back(std::move(*response.mutable_report()));
  }
  return reports;
}

enum class Format { kText, kJson, kCsv, kHtml };
constexpr std::pair<absl::string_view, Format> kFormats[] = {{"text", Format::kText},
                                                             {"json", Format::kJson},
                                                             {"csv", Format::kCsv},
                                                             {"html", Format::kHtml}};

// The reports in `format`: one run's report (its per-second series for csv), or with `as_runs`
// the several-runs shape.
std::string Render(Format format, const std::vector<v1::RunReport>& reports, bool as_runs) {
  const v1::RunReport& r = reports[0];
  switch (format) {
    case Format::kText:
      return as_runs ? FormatReportsText(reports) : FormatReportText(r);
    case Format::kJson:
      return as_runs ? RunsToJson(reports) : ReportToJson(r);
    case Format::kCsv:
      return as_runs ? RunsToCsv(reports) : SeriesToCsv(r);
    case Format::kHtml:
      break;
  }
  return ReportsToHtml(reports);
}

}  // namespace

int ReportCommand(int argc, char** argv) {
  const std::string program = "churnlab report";
  CoordinatorFlags coordinator;
  Format format = Format::kText;
  std::string output;
  FlagSet flags(program,
                "Prints one run's report, or writes it as one self-contained HTML file that\n"
                "opens offline. Given several runs: text, one row each and why each verdict;\n"
                "json, {\"runs\": [...]}; csv, one row each with every latency summary; html,\n"
                "them side by side.\n"
                "Usage: churnlab report RUN_ID [--format=text|json|csv|html] [--output=FILE]\n"
                "       churnlab report RUN_ID RUN_ID... [--format=text|json|csv|html]");
  AddCoordinatorFlags(flags, &coordinator);
  // Parsed once here; a bad word exits 2 naming it.
  flags.Custom("format", "FORMAT", "text", "text | json | csv (the per-second series) | html",
               [&](absl::string_view word) {
                 for (const auto& [name, value] : kFormats) {
                   if (name == word) {
                     format = value;
                     return absl::OkStatus();
                   }
                 }
                 return absl::InvalidArgumentError("expected text, json, csv or html");
               });
  flags.String("output", &output, "write here instead of standard output");
  bool as_runs = false;
  flags.Bool("runs", &as_runs,
             "the several-runs shape even for one run (text rows, JSON {\"runs\": [...]}, CSV a "
             "row per run), for scripts that pass a list of any length");
  std::vector<std::string> positional = flags.ParseOrExit(argc, argv);
  if (positional.empty()) return Fail(program, kExitBadInput, "give a RUN_ID, or several");
  if (positional.size() > kMaxReportsAtOnce) {
    return Fail(program, kExitBadInput,
                absl::StrCat(positional.size(), " runs; at most ", kMaxReportsAtOnce, " at once"));
  }
  if (absl::Status writable = CheckOutputFile("output", output); !writable.ok()) {
    return Fail(program, kExitBadInput, std::string(writable.message()));
  }
  std::variant<Connection, int> dialed = Dial(program, coordinator);
  if (const int* code = std::get_if<int>(&dialed)) return *code;
  auto got = GetReports(program, std::get<Connection>(dialed).stub.get(), positional);
  if (const int* code = std::get_if<int>(&got)) return *code;
  const std::vector<v1::RunReport>& reports = std::get<std::vector<v1::RunReport>>(got);
  const std::string text = Render(format, reports, reports.size() > 1 || as_runs);
  if (output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else if (absl::Status written = WriteOutputFile(output, text, "the reports"); !written.ok()) {
    return Fail(program, kExitCannotRun, std::string(written.message()));
  }
  return kExitOk;
}

}  // namespace churnlab
