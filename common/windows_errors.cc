#include "common/windows_errors.h"

#include "absl/strings/str_cat.h"

namespace churnlab {
namespace {

// Messages are the system's own text (what FormatMessage, a SocketException's Message and
// `net helpmsg` print), codes from winsock2.h, and .NET's SocketError members by value.
constexpr WindowsError kAddressInUse{
    10048, "WSAEADDRINUSE",
    "Only one usage of each socket address (protocol/network address/port) is normally permitted.",
    "AddressAlreadyInUse"};
constexpr WindowsError kTimedOut{
    10060, "WSAETIMEDOUT",
    "A connection attempt failed because the connected party did not properly respond after a "
    "period of time, or established connection failed because connected host has failed to "
    "respond.",
    "TimedOut"};

constexpr WindowsErrorRow kRows[] = {
    // A client that runs out of local ports: Linux says so at connect() (EADDRNOTAVAIL, "Cannot
    // assign requested address"), Windows with the same words as a port taken at bind().
    {"EADDRNOTAVAIL", "connect", kAddressInUse},
    // bind() to an address the host does not have: there the two agree.
    {"EADDRNOTAVAIL",
     "bind",
     {10049, "WSAEADDRNOTAVAIL", "The requested address is not valid in its context.",
      "AddressNotAvailable"}},
    {"EADDRINUSE", "", kAddressInUse},
    {"ECONNREFUSED",
     "",
     {10061, "WSAECONNREFUSED",
      "No connection could be made because the target machine actively refused it.",
      "ConnectionRefused"}},
    {"ETIMEDOUT", "", kTimedOut},
    // churnlab's own deadline for the handshake: a Windows client's connect() ends in 10060.
    {"connect-timeout", "", kTimedOut},
    {"ECONNRESET",
     "",
     {10054, "WSAECONNRESET", "An existing connection was forcibly closed by the remote host.",
      "ConnectionReset"}},
    {"ECONNABORTED",
     "",
     {10053, "WSAECONNABORTED",
      "An established connection was aborted by the software in your host machine.",
      "ConnectionAborted"}},
    {"ENOBUFS",
     "",
     {10055, "WSAENOBUFS",
      "An operation on a socket could not be performed because the system lacked sufficient "
      "buffer space or because a queue was full.",
      "NoBufferSpaceAvailable"}},
    {"EMFILE", "", {10024, "WSAEMFILE", "Too many open sockets.", "TooManyOpenSockets"}},
    {"ENETUNREACH",
     "",
     {10051, "WSAENETUNREACH", "A socket operation was attempted to an unreachable network.",
      "NetworkUnreachable"}},
    {"EHOSTUNREACH",
     "",
     {10065, "WSAEHOSTUNREACH", "A socket operation was attempted to an unreachable host.",
      "HostUnreachable"}},
    {"ENETDOWN",
     "",
     {10050, "WSAENETDOWN", "A socket operation encountered a dead network.", "NetworkDown"}},
    {"EHOSTDOWN",
     "",
     {10064, "WSAEHOSTDOWN", "A socket operation failed because the destination host was down.",
      "HostDown"}},
    {"ENETRESET",
     "",
     {10052, "WSAENETRESET",
      "The connection has been broken due to keep-alive activity detecting a failure while the "
      "operation was in progress.",
      "NetworkReset"}},
    {"EACCES",
     "",
     {10013, "WSAEACCES",
      "An attempt was made to access a socket in a way forbidden by its access permissions.",
      "AccessDenied"}},
    {"EINVAL", "", {10022, "WSAEINVAL", "An invalid argument was supplied.", "InvalidArgument"}},
    {"EAFNOSUPPORT",
     "",
     {10047, "WSAEAFNOSUPPORT", "An address incompatible with the requested protocol was used.",
      "AddressFamilyNotSupported"}},
    {"EISCONN",
     "",
     {10056, "WSAEISCONN", "A connect request was made on an already connected socket.",
      "IsConnected"}},
    {"ENOTCONN",
     "",
     {10057, "WSAENOTCONN",
      "A request to send or receive data was disallowed because the socket is not connected and "
      "(when sending on a datagram socket using a sendto call) no address was supplied.",
      "NotConnected"}},
    {"ESHUTDOWN",
     "",
     {10058, "WSAESHUTDOWN",
      "A request to send or receive data was disallowed because the socket had already been shut "
      "down in that direction with a previous shutdown call.",
      "Shutdown"}},
    {"EAGAIN",
     "",
     {10035, "WSAEWOULDBLOCK",
      "A non-blocking socket operation could not be completed immediately.", "WouldBlock"}},
    {"EINTR",
     "",
     {10004, "WSAEINTR", "A blocking operation was interrupted by a call to WSACancelBlockingCall.",
      "Interrupted"}},
};

}  // namespace

std::span<const WindowsErrorRow> WindowsErrorTable() { return kRows; }

const WindowsError* WindowsErrorFor(absl::string_view key, absl::string_view phase) {
  // A key's first row is its meaning in churnlab's engine; a later row with a phase applies only
  // in that phase.
  const WindowsError* first = nullptr;
  for (const WindowsErrorRow& row : kRows) {
    if (row.key != key) continue;
    if (!phase.empty() && row.phase == phase) return &row.windows;
    if (first == nullptr) first = &row.windows;
  }
  return first;
}

std::string DescribeWindowsError(const WindowsError& e) {
  return absl::StrCat(e.code, " ", e.name, " (SocketError.", e.dotnet, ") \"", e.message, "\"");
}

std::string WindowsWordsFor(absl::string_view key, absl::string_view phase) {
  const WindowsError* e = WindowsErrorFor(key, phase);
  return e == nullptr ? "" : absl::StrCat("Windows: ", DescribeWindowsError(*e));
}

}  // namespace churnlab
