#include "host/process_memory.h"

#include <dirent.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "host/proc_file.h"

namespace churnlab {
namespace {

// The value in kB of `key` ("Pss:") in a /proc file of "Key:   123 kB" lines, in bytes.
uint64_t KiBField(const std::string& path, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(ReadProcFile(path), '\n')) {
    if (!absl::ConsumePrefix(&line, key)) continue;
    uint64_t kib = 0;
    std::istringstream(std::string(line)) >> kib;
    return kib * 1024;
  }
  return 0;
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    // A process that exits meanwhile reads as "" (ReadProcFile), and is skipped.
    std::string text = ReadProcFile(absl::StrCat("/proc/", pid, "/stat"));
    // "pid (comm) state ppid ...": comm may hold spaces, so read after its closing parenthesis.
    size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    pid_t ppid = 0;
    std::istringstream(text.substr(close + 1)) >> state >> ppid;
    if (ppid == parent) out.push_back(pid);
  }
  closedir(proc);
  return out;
}

}  // namespace

ProcessMemory SelfAndChildrenMemory() {
  ProcessMemory out;
  std::vector<pid_t> pids = ChildrenOf(getpid());
  pids.push_back(getpid());
  for (pid_t pid : pids) {
    std::string dir = absl::StrCat("/proc/", pid, "/");
    out.pss_bytes += KiBField(dir + "smaps_rollup", "Pss:");
    out.rss_bytes += KiBField(dir + "status", "VmRSS:");
    ++out.processes;
  }
  return out;
}

HostMemory ReadHostMemory() {
  HostMemory out;
  out.slab_bytes = static_cast<int64_t>(KiBField("/proc/meminfo", "Slab:"));
  out.mem_available_bytes = KiBField("/proc/meminfo", "MemAvailable:");
  return out;
}

}  // namespace churnlab
