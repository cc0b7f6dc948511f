// The Windows words for the failures churnlab names. Most people meet connection churn on
// Windows or .NET first, and search for what they saw there: "Only one usage of each socket
// address (protocol/network address/port) is normally permitted" (10048), not EADDRNOTAVAIL.
// One table, read by the report (its `windows_errors`), the text report, the dashboard (through
// the report), churnlab-churn's summary and the docs (a test holds the README to it).
#pragma once

#include <span>
#include <string>

#include "absl/strings/string_view.h"

namespace churnlab {

struct WindowsError {
  int code = 0;               // 10048
  absl::string_view name;     // "WSAEADDRINUSE"
  absl::string_view message;  // the system's text (FormatMessage; SocketException.Message)
  absl::string_view dotnet;   // the System.Net.Sockets.SocketError member: "AddressAlreadyInUse"
};

// One row: a failure as churnlab names it (an errno name, or "connect-timeout"), the phase it
// happened in when that changes the answer ("" for any), and what Windows says in its place.
struct WindowsErrorRow {
  absl::string_view key;
  absl::string_view phase;
  WindowsError windows;
};

// Every row, in the order the docs list them.
std::span<const WindowsErrorRow> WindowsErrorTable();

// The counterpart of a failure `key` ("EADDRNOTAVAIL", "connect-timeout") in `phase` ("bind",
// "connect"; "" when unknown, as for a report's errors map, whose keys carry no phase: then the
// meaning churnlab's engine produces). nullptr when Windows has none ("EOF", "response-timeout").
const WindowsError* WindowsErrorFor(absl::string_view key, absl::string_view phase = "");

// `10048 WSAEADDRINUSE (SocketError.AddressAlreadyInUse) "Only one usage ... permitted."`
std::string DescribeWindowsError(const WindowsError& error);

// "Windows: 10048 WSAEADDRINUSE ..." for `key`, or "" when Windows has no counterpart.
std::string WindowsWordsFor(absl::string_view key, absl::string_view phase = "");

}  // namespace churnlab
