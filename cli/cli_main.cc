// churnlab: the command line of the control plane.
#include <cstdio>
#include <cstring>

#include "cli/commands.h"
#include "common/flags.h"

namespace {

constexpr char kUsage[] =
    "Usage: churnlab COMMAND [flags]   (churnlab COMMAND --help for its flags)\n\n"
    "Commands:\n"
    "  run      start a run on the coordinator's agents, watch it, print and save the report\n"
    "  compare  run a workload from one source IP, then spread out, and show both side by side\n"
    "  agents   list the attached agents\n"
    "  runs     list the runs, newest first\n"
    "  report   print one run's report (text, json or csv)\n"
    "  cancel   stop a running run\n\n"
    "Exit codes: 0 completed and thresholds passed, 1 a threshold failed or the run was\n"
    "cancelled, 2 invalid input, 3 could not run (coordinator unreachable, no eligible agent).\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? churnlab::kExitBadInput : churnlab::kExitOk;
  }
  const char* command = argv[1];
  // The subcommand sees itself as argv[0].
  if (std::strcmp(command, "run") == 0) return churnlab::RunCommand(argc - 1, argv + 1);
  if (std::strcmp(command, "compare") == 0) return churnlab::CompareCommand(argc - 1, argv + 1);
  if (std::strcmp(command, "agents") == 0) return churnlab::AgentsCommand(argc - 1, argv + 1);
  if (std::strcmp(command, "runs") == 0) return churnlab::RunsCommand(argc - 1, argv + 1);
  if (std::strcmp(command, "report") == 0) return churnlab::ReportCommand(argc - 1, argv + 1);
  if (std::strcmp(command, "cancel") == 0) return churnlab::CancelCommand(argc - 1, argv + 1);
  std::fprintf(stderr, "churnlab: unknown command '%s'\n%s", command, kUsage);
  return churnlab::kExitBadInput;
}
