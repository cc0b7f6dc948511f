// Reading a file of /proc whole: the host module's counters, routes, conntrack figures and
// process memory read theirs through it (host_facts.cc reads single /proc/sys values by stream).
#pragma once

#include <string>

namespace churnlab {

// The file's text; "" when it cannot be opened or read. A process's file (/proc/PID/stat) whose
// process exits between the open() and the read() fails the read with ESRCH, an everyday event
// on a busy host: read through std::istreambuf_iterator, libstdc++ throws that failure out as
// std::ios_base::failure (it once ended an agent mid-run); read here, it is an empty text.
std::string ReadProcFile(const std::string& path);

}  // namespace churnlab
