// churnlab: the command line of the control plane.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

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
    "  cancel   stop a running run\n"
    "  demo     the demo: a coordinator, a target and 4 agents on this machine, the TIME_WAIT\n"
    "           scenario as a compare, then the dashboard until Ctrl-C (--exit: stop at once);\n"
    "           runs scripts/demo.sh of the source tree this binary was built from\n\n"
    "Exit codes: 0 completed and thresholds passed (without thresholds: error_rate < 0.01),\n"
    "1 a threshold failed or the run was cancelled, 2 invalid input, 3 could not run\n"
    "(coordinator unreachable, no eligible agent).\n";

// Process orchestration (namespaces, background processes, cleanup) is the shell's job; the
// demo lives in scripts/demo.sh and this hands over to it.
int DemoCommand(int argc, char** argv) {
  std::string script = std::string(CHURNLAB_SOURCE_DIR) + "/scripts/demo.sh";
  if (access(script.c_str(), R_OK) != 0) {
    std::fprintf(stderr,
                 "churnlab demo: %s is not there; the demo runs from a churnlab source tree "
                 "(git clone, then bash scripts/demo.sh)\n",
                 script.c_str());
    return churnlab::kExitCannotRun;
  }
  std::vector<char*> args = {const_cast<char*>("bash"), script.data()};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execvp("bash", args.data());
  std::perror("churnlab demo: bash");
  return churnlab::kExitCannotRun;
}

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
  if (std::strcmp(command, "demo") == 0) return DemoCommand(argc - 1, argv + 1);
  std::fprintf(stderr, "churnlab: unknown command '%s'\n%s", command, kUsage);
  return churnlab::kExitBadInput;
}
