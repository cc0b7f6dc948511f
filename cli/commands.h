// The `churnlab` subcommands. Each parses its own flags and returns the process exit code:
// 0 completed (and thresholds passed), 1 completed with a failed threshold or cancelled,
// 2 invalid input, 3 could not run (coordinator unreachable, no eligible agent).
#pragma once

namespace churnlab {

int RunCommand(int argc, char** argv);
int CompareCommand(int argc, char** argv);
int AgentsCommand(int argc, char** argv);
int RunsCommand(int argc, char** argv);
int ReportCommand(int argc, char** argv);
int CancelCommand(int argc, char** argv);

}  // namespace churnlab
