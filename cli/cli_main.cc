// churnlab: the command line of the control plane.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/budget.h"
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
    "  report   print one run's report (text, json or csv), or write it as one HTML file that\n"
    "           opens offline (--format=html; several runs: side by side)\n"
    "  cancel   stop a running run\n"
    "  budget   plan the tuple budget of a client host, no agents needed: the new connections/s\n"
    "           it sustains, how long a rate lasts, what changes it most (--preset=windows ...)\n"
    "  demo     the demo: a coordinator, a target and 4 agents on this machine, the TIME_WAIT\n"
    "           scenario as a compare, then the dashboard until Ctrl-C (--exit: stop at once);\n"
    "           runs the demo installed beside this binary (share/churnlab/scripts), or\n"
    "           scripts/demo.sh of the source tree it was built from\n\n"
    "Exit codes: 0 completed and thresholds passed (without thresholds: error_rate < 0.01),\n"
    "1 a threshold failed, or the run was cancelled or interrupted (its coordinator stopped;\n"
    "budget: the ports run out at --rate),\n"
    "2 invalid input, 3 could not run (coordinator unreachable, no eligible agent).\n"
    "churnlab --version prints the version.\n";

// Process orchestration (namespaces, background processes, cleanup) is the shell's job; the
// demo lives in scripts/demo.sh and this hands over to it. An installed churnlab finds the copy
// installed beside it (<prefix>/share/churnlab/scripts) and runs it with its own binaries;
// a churnlab in a build tree runs the source tree's, which builds first.
int DemoCommand(int argc, char** argv) {
  std::error_code error;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  std::filesystem::path installed =
      self.parent_path().parent_path() / "share" / "churnlab" / "scripts" / "demo.sh";
  std::string source = std::string(CHURNLAB_SOURCE_DIR) + "/scripts/demo.sh";
  bool use_installed = !error && access(installed.c_str(), R_OK) == 0;
  std::string script = use_installed ? installed.string() : source;
  if (access(script.c_str(), R_OK) != 0) {
    std::fprintf(stderr,
                 "churnlab demo: neither %s nor %s is there; install churnlab (cmake --install) or "
                 "run scripts/demo.sh from a source tree\n",
                 installed.c_str(), source.c_str());
    return churnlab::kExitCannotRun;
  }
  std::vector<std::string> words = {"bash", script};
  if (use_installed) {
    // The binaries are this one's neighbours; there is nothing to build.
    setenv("CHURNLAB_BIN", self.parent_path().c_str(), 1);
    words.push_back("--no-build");
  }
  for (int i = 1; i < argc; ++i) words.push_back(argv[i]);
  std::vector<char*> args;
  for (std::string& w : words) args.push_back(w.data());
  args.push_back(nullptr);
  execvp("bash", args.data());
  std::perror("churnlab demo: bash");
  return churnlab::kExitCannotRun;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("churnlab %s\n", churnlab::kChurnlabVersion);
    return churnlab::kExitOk;
  }
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
  if (std::strcmp(command, "budget") == 0) return churnlab::BudgetCommand(argc - 1, argv + 1);
  if (std::strcmp(command, "demo") == 0) return DemoCommand(argc - 1, argv + 1);
  std::fprintf(stderr, "churnlab: unknown command '%s'\n%s", command, kUsage);
  return churnlab::kExitBadInput;
}
