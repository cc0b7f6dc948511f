#include "cli/commands.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <thread>
#include <variant>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "analysis/compare_summary.h"
#include "analysis/run_sources.h"
#include "churnlab/v1/control.grpc.pb.h"
#include "cli/compare.h"
#include "cli/coordinator_client.h"
#include "cli/junit_report.h"
#include "cli/output_file.h"
#include "cli/report_format.h"
#include "cli/spec_flags.h"
#include "common/flags.h"
#include "common/terminal_text.h"
#include "dashboard/report_html.h"
#include "proto/grpc_link.h"
#include "proto/hello.h"
#include "proto/report_export.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

std::atomic<bool> interrupted{false};
void OnSignal(int) { interrupted.store(true); }

// Sends CancelRun once when the user presses Ctrl-C; the watch then ends with the final report.
class CancelOnInterrupt {
 public:
  CancelOnInterrupt(v1::Control::Stub* stub, std::string run_id)
      : thread_([this, stub, run_id] {
          while (!done_.load()) {
            if (interrupted.load()) {
              grpc::ClientContext context;
              v1::CancelRunRequest request;
              request.set_run_id(run_id);
              v1::CancelRunResponse response;
              stub->CancelRun(&context, request, &response);
              std::fprintf(stderr, "churnlab run: cancelling %s\n", TerminalSafe(run_id).c_str());
              return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        }) {}
  ~CancelOnInterrupt() {
    done_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

namespace {

// How long `churnlab run` keeps watching again after its progress stream broke before it gives
// up: a starved coordinator can miss the channel's keepalive, and the run goes on without us.
constexpr absl::Duration kRewatchFor = absl::Seconds(30);

// Watches run `id`, printing its progress each second, until its final report arrives. A stream
// that breaks first (a keepalive missed on a busy host, a restarted proxy) is opened again: the
// coordinator keeps the run, and a watch of an ended run gives its final report at once.
// UNAVAILABLE once it has failed for kRewatchFor in a row.
absl::StatusOr<v1::RunReport> WatchToTheEnd(v1::Control::Stub* stub, const std::string& id) {
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> failing_since;
  for (;;) {
    grpc::ClientContext context;
    v1::WatchRunRequest watch;
    watch.set_run_id(id);
    auto reader = stub->WatchRun(&context, watch);
    v1::RunUpdate update;
    std::optional<v1::RunReport> final_report;
    while (reader->Read(&update)) {
      failing_since.reset();
      if (update.report().verdict() != v1::RunReport::VERDICT_UNSPECIFIED) {
        final_report = update.report();  // the last update; the stream ends after it
      } else {
        std::printf("%s\n", FormatProgressLine(update.report()).c_str());
        std::fflush(stdout);
      }
    }
    grpc::Status status = reader->Finish();
    if (final_report.has_value()) {
      if (!status.ok()) {
        std::fprintf(stderr,
                     "churnlab run: the watch closed with an error after the final "
                     "report (%s)\n",
                     TerminalSafe(status.error_message()).c_str());
      }
      return *std::move(final_report);
    }
    if (status.ok()) return absl::UnavailableError("the watch ended without the final report");
    const grpc::StatusCode code = status.error_code();
    const bool for_good = code == grpc::StatusCode::NOT_FOUND ||
                          code == grpc::StatusCode::PERMISSION_DENIED ||
                          code == grpc::StatusCode::UNAUTHENTICATED;
    if (!failing_since.has_value()) {
      failing_since = Clock::now();
      if (!for_good) {  // said once per break, however many tries it takes
        std::fprintf(stderr, "churnlab run: the progress stream broke (%s); watching again\n",
                     TerminalSafe(status.error_message()).c_str());
      }
    }
    if (for_good || interrupted.load() ||
        Clock::now() - *failing_since > absl::ToChronoSeconds(kRewatchFor)) {
      return absl::UnavailableError("lost the run's progress: " + status.error_message());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

// Starts `spec`, prints its progress each second until it ends, and returns the final report.
// A failed StartRun comes back as its status (the caller decides what it means); a watch that
// breaks is UNAVAILABLE.
absl::StatusOr<v1::RunReport> ExecuteRun(v1::Control::Stub* stub, const v1::RunSpec& spec) {
  v1::StartRunRequest start;
  *start.mutable_spec() = spec;
  v1::StartRunResponse started;
  {
    grpc::ClientContext context;
    grpc::Status status = stub->StartRun(&context, start, &started);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
  }
  std::printf("run %s on %d agent(s): %s\n", TerminalSafe(started.run_id()).c_str(),
              started.agent_names_size(),
              TerminalSafe(absl::StrJoin(started.agent_names(), ",")).c_str());
  for (const std::string& warning : started.warnings()) {
    std::printf("warning: %s\n", TerminalSafe(warning).c_str());
  }
  std::fflush(stdout);
  CancelOnInterrupt canceller(stub, started.run_id());
  return WatchToTheEnd(stub, started.run_id());
}

// Named agents left without a source IP the spec may use (the scheduler's rule: the targets'
// family, less the exclusions) would make the run fail; leave them out (the others stay).
void DropAgentsLeftWithoutSources(v1::Control::Stub* stub, v1::RunSpec* spec) {
  if (spec->agent_names_size() == 0) return;
  grpc::ClientContext context;
  v1::ListAgentsRequest request;
  for (int i = 0; i < spec->agent_names_size() && i < kMaxAgentsInFull; ++i) {
    request.add_names(spec->agent_names(i));  // in full: every source IP
  }
  v1::ListAgentsResponse agents;
  if (!stub->ListAgents(&context, request, &agents).ok()) return;
  const analysis::RunSources sources(analysis::ShapeOf(*spec));
  std::vector<std::string> keep;
  for (const std::string& name : spec->agent_names()) {
    bool has_source = true;  // an agent not listed is left for the coordinator to judge
    for (const v1::AgentInfo& agent : agents.agents()) {
      if (agent.hello().name() == name) {
        has_source = sources.WhyNone(SourceAddressesOf(agent.hello())).empty();
      }
    }
    if (has_source) keep.push_back(name);
  }
  if (keep.empty()) return;  // nothing would be left: the caller falls back to no exclusion
  spec->clear_agent_names();
  for (const std::string& name : keep) spec->add_agent_names(name);
}

// compare's second run: `spec` spread over the agents, leaving out the source IP the single run
// used (its ports are in TIME_WAIT) unless no other is available.
absl::StatusOr<v1::RunReport> ExecuteSpreadRun(v1::Control::Stub* stub, const v1::RunSpec& spec,
                                               const v1::RunReport& single) {
  v1::RunSpec spread = spec;
  spread.set_name(spec.name().empty() ? "distributed" : spec.name() + " (distributed)");
  std::string used = FirstSourceIp(single);
  const v1::RunSpec unexcluded = spread;
  if (!used.empty() && BindsSourceIps(spec.bind_mode())) {
    spread.add_exclude_source_ips(used);
    DropAgentsLeftWithoutSources(stub, &spread);
  }
  absl::StatusOr<v1::RunReport> distributed = ExecuteRun(stub, spread);
  if (!distributed.ok() && absl::IsFailedPrecondition(distributed.status()) &&
      spread.exclude_source_ips_size() > 0) {
    std::printf("(no other source IP is available: the spread run uses %s too)\n",
                TerminalSafe(used).c_str());
    distributed = ExecuteRun(stub, unexcluded);
  }
  return distributed;
}

// The flags `run` and `compare` share; returns the spec or exits 2.
struct RunFlags {
  CoordinatorFlags coordinator;
  std::string spec_file;
  std::string report_file;
  std::string junit_file;
  std::string html_file;
  int64_t expect_agents = 0;
  absl::Duration expect_agents_timeout = absl::Minutes(1);
  SpecOverrides overrides;
};

// The most agents --expect-agents waits for, and the longest it waits.
constexpr int64_t kMaxExpectedAgents = 100'000;
constexpr absl::Duration kMaxExpectAgentsTimeout = absl::Hours(24);

void AddRunFlags(FlagSet& flags, RunFlags& f) {
  AddCoordinatorFlags(flags, &f.coordinator);
  flags.String("spec", &f.spec_file, "a RunSpec as JSON");
  flags.String("report", &f.report_file, "write the final report here as JSON");
  flags.String("junit", &f.junit_file,
               "write a JUnit XML report here for CI: per run, a test case for its completion "
               "and one per threshold");
  flags.String("html", &f.html_file,
               "write the report here as one HTML file that opens offline (compare: both runs "
               "side by side)");
  flags.Custom("expect-agents", "N", "0",
               "before starting, wait until N agents are attached and idle (of --agents when "
               "given), showing who is there; 0: start with whoever is",
               InRange<int64_t>(&f.expect_agents, 0, kMaxExpectedAgents));
  flags.Duration("expect-agents-timeout", &f.expect_agents_timeout,
                 "how long --expect-agents waits before giving up (exit 3)");
  AddSpecFlags(flags, f.overrides);
}

// What `run` and `compare` have once their flags are parsed: the spec and a live connection.
struct PreparedRun {
  RunFlags flags;
  v1::RunSpec spec;
  Connection conn;
};

// Parses the shared flags, builds the spec and dials the coordinator, with Ctrl-C set to cancel.
// On failure returns the exit code (the message printed).
std::variant<PreparedRun, int> PrepareRun(const std::string& program, const std::string& summary,
                                          int argc, char** argv) {
  RunFlags f;
  FlagSet flags(program, summary);
  AddRunFlags(flags, f);
  flags.ParseFlagsOnlyOrExit(argc, argv);
  if (f.expect_agents_timeout <= absl::ZeroDuration() ||
      f.expect_agents_timeout > kMaxExpectAgentsTimeout) {
    return Fail(
        program, kExitBadInput,
        absl::StrCat("--expect-agents-timeout=", absl::FormatDuration(f.expect_agents_timeout),
                     ": want over 0, ", absl::FormatDuration(kMaxExpectAgentsTimeout), " at most"));
  }
  absl::StatusOr<v1::RunSpec> spec = BuildSpec(f.spec_file, f.overrides);
  if (!spec.ok()) return Fail(program, kExitBadInput, std::string(spec.status().message()));
  // Where the results go is checked before any traffic: a path that cannot be written found
  // after the run would leave its results on the terminal only.
  for (const auto& [flag, path] :
       {std::pair<const char*, const std::string&>{"report", f.report_file},
        {"html", f.html_file},
        {"junit", f.junit_file}}) {
    absl::Status writable = CheckOutputFile(flag, path);
    if (!writable.ok()) return Fail(program, kExitBadInput, std::string(writable.message()));
  }
  if (spec->agent_names_size() > 0 && f.expect_agents > spec->agent_names_size()) {
    return Fail(program, kExitBadInput,
                absl::StrCat("--expect-agents=", f.expect_agents, ": only ",
                             spec->agent_names_size(), " agent(s) are named (--agents)"));
  }
  std::variant<Connection, int> conn = Dial(program, f.coordinator);
  if (const int* code = std::get_if<int>(&conn)) return *code;
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  if (f.expect_agents > 0) {
    const std::vector<std::string> names(spec->agent_names().begin(), spec->agent_names().end());
    int code = WaitForAgents(program, std::get<Connection>(conn).stub.get(), f.expect_agents, names,
                             f.expect_agents_timeout, [] { return interrupted.load(); });
    if (code != kExitOk) return code;
  }
  return PreparedRun{std::move(f), *std::move(spec), std::get<Connection>(std::move(conn))};
}

// The JUnit suite of a run: named by the spec's name, not the run id, so that a CI system
// follows the same test cases from build to build.
std::string SuiteName(const std::string& command, const v1::RunSpec& spec,
                      const std::string& part = "") {
  std::string name =
      absl::StrCat("churnlab ", command, " ", spec.name().empty() ? "(unnamed)" : spec.name());
  return part.empty() ? name : absl::StrCat(name, ": ", part);
}

// Writes --report (`json`) and --html (of `reports`) where they were asked for: 0, or 3 with
// the kernel's reason printed.
int WriteReports(const std::string& program, const RunFlags& f, const std::string& json,
                 const std::vector<v1::RunReport>& reports) {
  absl::Status written = absl::OkStatus();
  if (!f.report_file.empty()) written = WriteOutputFile(f.report_file, json, "the report");
  if (written.ok() && !f.html_file.empty()) {
    written = WriteOutputFile(f.html_file, ReportsToHtml(reports), "the HTML report");
  }
  return written.ok() ? kExitOk : Fail(program, kExitCannotRun, std::string(written.message()));
}

// Writes --junit when it was given; returns `code`, or 3 (the message printed) when the file
// cannot be written.
int WithJunit(const std::string& program, const std::string& path,
              const std::vector<JunitRun>& runs, int code) {
  if (path.empty()) return code;
  absl::Status written = WriteJunitFile(path, runs);
  if (!written.ok()) return Fail(program, kExitCannotRun, std::string(written.message()));
  return code;
}

}  // namespace

// 0 when the run passed and is stored; 1 when it failed, or passed but the coordinator's run
// store could not keep it (a script must not take an unrecorded run for a recorded one).
int ExitCodeForReport(const v1::RunReport& report) {
  return report.verdict() == v1::RunReport::VERDICT_PASS && report.store_error().empty()
             ? kExitOk
             : kExitFailed;
}

int RunCommand(int argc, char** argv) {
  const std::string program = "churnlab run";
  auto prepared = PrepareRun(
      program,
      "Starts a run on the coordinator's agents, prints its progress every second, then\n"
      "its summary; writes the JSON report with --report. Flags override --spec fields.\n"
      "Example: churnlab run --target=127.0.0.1:9000 --rate=2000 --duration=30s",
      argc, argv);
  if (int* code = std::get_if<int>(&prepared)) return *code;
  auto& [f, spec, conn] = std::get<PreparedRun>(prepared);
  absl::StatusOr<v1::RunReport> report = ExecuteRun(conn.stub.get(), spec);
  if (!report.ok()) {
    const std::string why(report.status().message());
    return WithJunit(program, f.junit_file, {{SuiteName("run", spec), nullptr, why}},
                     Fail(program, ExitCodeFor(report.status()), why));
  }
  std::printf("%s", FormatReportText(*report).c_str());
  if (int code = WriteReports(program, f, ReportToJson(*report), {*report}); code != kExitOk) {
    return code;
  }
  return WithJunit(program, f.junit_file, {{SuiteName("run", spec), &*report, ""}},
                   ExitCodeForReport(*report));
}

int CompareCommand(int argc, char** argv) {
  const std::string program = "churnlab compare";
  auto prepared = PrepareRun(
      program,
      "Runs one workload twice: from a single source IP (one agent), then spread over\n"
      "the agents and source IPs the spec allows, and prints them side by side with the\n"
      "tuple budget that explains the difference. The spread run leaves out the single\n"
      "run's source IP, whose ports that run left in TIME_WAIT, when others remain.\n"
      "Exit code: that of the spread run (0 pass, 1 a threshold failed, 2, 3 as run).",
      argc, argv);
  if (int* code = std::get_if<int>(&prepared)) return *code;
  auto& [f, spec, conn] = std::get<PreparedRun>(prepared);

  v1::CompareReport compare;
  std::printf("== single source\n");
  absl::StatusOr<v1::RunReport> single = ExecuteRun(conn.stub.get(), SingleSourceSpec(spec));
  const std::string single_suite = SuiteName("compare", spec, "single source");
  const std::string spread_suite = SuiteName("compare", spec, "distributed");
  if (!single.ok()) {
    const std::string why(single.status().message());
    return WithJunit(program, f.junit_file, {{single_suite, nullptr, why}},
                     Fail(program, ExitCodeFor(single.status()), why));
  }
  *compare.mutable_single() = *single;
  if (interrupted.load()) {
    return WithJunit(program, f.junit_file, {{single_suite, &*single, ""}},
                     Fail(program, kExitFailed, "interrupted"));
  }

  std::printf("\n== distributed\n");
  absl::StatusOr<v1::RunReport> distributed = ExecuteSpreadRun(conn.stub.get(), spec, *single);
  if (!distributed.ok()) {
    const std::string why(distributed.status().message());
    return WithJunit(program, f.junit_file,
                     {{single_suite, &*single, ""}, {spread_suite, nullptr, why}},
                     Fail(program, ExitCodeFor(distributed.status()), why));
  }
  *compare.mutable_distributed() = *distributed;
  for (std::string& line : analysis::CompareSummary(*single, *distributed))
    compare.add_summary(std::move(line));
  std::printf("%s", FormatCompare(compare).c_str());
  if (int code = WriteReports(program, f, MessageToJson(compare), {*single, *distributed});
      code != kExitOk) {
    return code;
  }
  return WithJunit(program, f.junit_file,
                   {{single_suite, &*single, ""}, {spread_suite, &*distributed, ""}},
                   ExitCodeForReport(*distributed));
}

namespace {

// The coordinator's agents by name, for a message: "known: a1, a2" (attached or lost, the
// first kAgentNamesInMessages and how many more), "none known", or that the list failed.
constexpr int kAgentNamesInMessages = 16;
std::string KnownAgents(v1::Control::Stub* stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListAgentsResponse all;
  grpc::Status status = stub->ListAgents(&context, v1::ListAgentsRequest(), &all);
  if (!status.ok()) return absl::StrCat("the agent list failed: ", status.error_message());
  if (all.agents().empty()) return "none known";
  std::vector<std::string> names;
  for (const v1::AgentInfo& agent : all.agents()) {
    if (names.size() == kAgentNamesInMessages) {
      names.push_back(absl::StrCat("and ", all.agents_size() - kAgentNamesInMessages, " more"));
      break;
    }
    names.push_back(agent.hello().name());
  }
  return absl::StrCat("known: ", TerminalSafe(absl::StrJoin(names, ", ")));
}

}  // namespace

int AgentsCommand(int argc, char** argv) {
  const std::string program = "churnlab agents";
  CoordinatorFlags coordinator;
  FlagSet flags(program,
                "Lists the agents attached to the coordinator (and those lost during a run), each "
                "with its\nfirst 16 source IPs; named agents are listed with all of them (a "
                "NAME no agent\nanswers to exits 2, saying which agents are known).\n"
                "Usage: churnlab agents [NAME...]");
  AddCoordinatorFlags(flags, &coordinator);
  std::vector<std::string> names = flags.ParseOrExit(argc, argv);
  if (names.size() > static_cast<size_t>(kMaxAgentsInFull)) {
    return Fail(program, kExitBadInput,
                absl::StrCat(names.size(), " names; at most ", kMaxAgentsInFull, " at once"));
  }
  std::variant<Connection, int> dialed = Dial(program, coordinator);
  if (const int* code = std::get_if<int>(&dialed)) return *code;
  grpc::ClientContext context;
  v1::ListAgentsRequest request;
  for (const std::string& name : names) request.add_names(name);
  v1::ListAgentsResponse response;
  v1::Control::Stub* stub = std::get<Connection>(dialed).stub.get();
  grpc::Status status = stub->ListAgents(&context, request, &response);
  if (!status.ok()) return Fail(program, ExitCodeFor(status), status.error_message());
  std::set<std::string> missing(names.begin(), names.end());
  for (const v1::AgentInfo& agent : response.agents()) missing.erase(agent.hello().name());
  if (!response.agents().empty()) {
    std::printf("%s", FormatAgents({response.agents().begin(), response.agents().end()}).c_str());
  }
  if (missing.empty()) {
    if (response.agents().empty()) std::printf("%s", FormatAgents({}).c_str());
    return kExitOk;
  }
  // A name nobody answers to is the caller's mistake (exit 2), said with who is there.
  return Fail(program, kExitBadInput,
              absl::StrCat("no agent named ", TerminalSafe(absl::StrJoin(missing, ", ")), " (",
                           KnownAgents(stub), ")"));
}

int CancelCommand(int argc, char** argv) {
  const std::string program = "churnlab cancel";
  CoordinatorFlags coordinator;
  FlagSet flags(
      program,
      "Stops a running run; its report keeps what was measured.\nUsage: churnlab cancel RUN_ID");
  AddCoordinatorFlags(flags, &coordinator);
  std::vector<std::string> positional = flags.ParseOrExit(argc, argv);
  if (positional.size() != 1) return Fail(program, kExitBadInput, "give exactly one RUN_ID");
  std::variant<Connection, int> dialed = Dial(program, coordinator);
  if (const int* code = std::get_if<int>(&dialed)) return *code;
  Connection* conn = &std::get<Connection>(dialed);
  grpc::ClientContext context;
  v1::CancelRunRequest request;
  request.set_run_id(positional[0]);
  v1::CancelRunResponse response;
  grpc::Status status = conn->stub->CancelRun(&context, request, &response);
  if (!status.ok()) {
    return Fail(program, ExitCodeFor(status), status.error_message());
  }
  std::printf("cancelling %s\n", TerminalSafe(positional[0]).c_str());
  return kExitOk;
}

}  // namespace churnlab
