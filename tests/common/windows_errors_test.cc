#include "common/windows_errors.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "common/errno_name.h"
#include "gtest/gtest.h"
#include "tests/support/source_path.h"

namespace churnlab {
namespace {

constexpr char kAddressInUse[] =
    "Only one usage of each socket address (protocol/network address/port) is normally permitted.";

void ExpectMaps(const char* key, const char* phase, int code, const char* name,
                const char* dotnet) {
  const WindowsError* w = WindowsErrorFor(key, phase);
  ASSERT_NE(w, nullptr) << key << " in " << phase;
  EXPECT_EQ(w->code, code) << key << " in " << phase;
  EXPECT_EQ(w->name, name) << key << " in " << phase;
  EXPECT_EQ(w->dotnet, dotnet) << key << " in " << phase;
}

// Out of ports: Linux says EADDRNOTAVAIL at connect() and EADDRINUSE at bind(); Windows says
// 10048 for both, in the words users search for.
TEST(WindowsErrorsTest, PortExhaustionReadsAs10048) {
  ExpectMaps("EADDRNOTAVAIL", "connect", 10048, "WSAEADDRINUSE", "AddressAlreadyInUse");
  ExpectMaps("EADDRNOTAVAIL", "", 10048, "WSAEADDRINUSE", "AddressAlreadyInUse");
  ExpectMaps("EADDRINUSE", "bind", 10048, "WSAEADDRINUSE", "AddressAlreadyInUse");
  EXPECT_EQ(WindowsErrorFor("EADDRNOTAVAIL")->message, kAddressInUse);
  EXPECT_EQ(WindowsErrorFor("EADDRINUSE", "bind")->message, kAddressInUse);
  // bind() to an address the host lacks is the one EADDRNOTAVAIL both call "not available".
  ExpectMaps("EADDRNOTAVAIL", "bind", 10049, "WSAEADDRNOTAVAIL", "AddressNotAvailable");
}

TEST(WindowsErrorsTest, TheFieldReportsCodesAndTexts) {
  ExpectMaps("ECONNREFUSED", "connect", 10061, "WSAECONNREFUSED", "ConnectionRefused");
  EXPECT_EQ(WindowsErrorFor("ECONNREFUSED")->message,
            "No connection could be made because the target machine actively refused it.");
  ExpectMaps("ETIMEDOUT", "", 10060, "WSAETIMEDOUT", "TimedOut");
  ExpectMaps("connect-timeout", "", 10060, "WSAETIMEDOUT", "TimedOut");
  ExpectMaps("ECONNRESET", "read", 10054, "WSAECONNRESET", "ConnectionReset");
  EXPECT_EQ(WindowsErrorFor("ECONNRESET")->message,
            "An existing connection was forcibly closed by the remote host.");
  ExpectMaps("ENOBUFS", "", 10055, "WSAENOBUFS", "NoBufferSpaceAvailable");
  ExpectMaps("EMFILE", "socket", 10024, "WSAEMFILE", "TooManyOpenSockets");
  EXPECT_EQ(WindowsErrorFor("EMFILE")->message, "Too many open sockets.");
  // Network and host unreachable are two codes, easy to swap.
  ExpectMaps("ENETUNREACH", "connect", 10051, "WSAENETUNREACH", "NetworkUnreachable");
  ExpectMaps("EHOSTUNREACH", "connect", 10065, "WSAEHOSTUNREACH", "HostUnreachable");
  EXPECT_EQ(WindowsErrorFor("ENETUNREACH")->message,
            "A socket operation was attempted to an unreachable network.");
  EXPECT_EQ(WindowsErrorFor("EHOSTUNREACH")->message,
            "A socket operation was attempted to an unreachable host.");
}

TEST(WindowsErrorsTest, KindsWindowsHasNoCodeForHaveNone) {
  for (const char* key :
       {"EOF", "response-timeout", "protocol", "stopped", "BAD_RESPONSE", "E999", "ENOMEM"}) {
    EXPECT_EQ(WindowsErrorFor(key), nullptr) << key;
    EXPECT_EQ(WindowsWordsFor(key), "") << key;
  }
}

TEST(WindowsErrorsTest, EveryRowIsAnErrnoOrChurnlabsOwnKindAndOneWindowsError) {
  std::map<int, const WindowsError*> by_code;
  for (const WindowsErrorRow& row : WindowsErrorTable()) {
    std::string key(row.key);
    EXPECT_TRUE(key == "connect-timeout" || ErrnoFromName(key) > 0) << key;
    EXPECT_GE(row.windows.code, 10000) << key;
    EXPECT_TRUE(row.windows.name.substr(0, 4) == "WSAE") << row.windows.name;
    EXPECT_FALSE(row.windows.dotnet.empty()) << key;
    EXPECT_EQ(row.windows.message.back(), '.') << key;
    // One code, one name, one text, one .NET member.
    auto [it, fresh] = by_code.emplace(row.windows.code, &row.windows);
    if (!fresh) {
      EXPECT_EQ(it->second->name, row.windows.name);
      EXPECT_EQ(it->second->message, row.windows.message);
      EXPECT_EQ(it->second->dotnet, row.windows.dotnet);
    }
  }
  EXPECT_GE(by_code.size(), 15u);
}

TEST(WindowsErrorsTest, DescribedAsUsersSeeIt) {
  EXPECT_EQ(WindowsWordsFor("ECONNREFUSED"),
            "Windows: 10061 WSAECONNREFUSED (SocketError.ConnectionRefused) \"No connection "
            "could be made because the target machine actively refused it.\"");
}

// The docs list the same table: every code, name, .NET member and text appears in the README.
TEST(WindowsErrorsTest, TheReadmeListsEveryRow) {
  std::ifstream in(testing::SourcePath("/README.md"));
  std::stringstream text;
  text << in.rdbuf();
  std::string readme = text.str();
  ASSERT_FALSE(readme.empty());
  for (const WindowsErrorRow& row : WindowsErrorTable()) {
    for (absl::string_view word :
         {row.key, row.windows.name, row.windows.message, row.windows.dotnet}) {
      EXPECT_NE(readme.find(std::string(word)), std::string::npos) << word;
    }
    EXPECT_NE(readme.find(std::to_string(row.windows.code)), std::string::npos) << row.key;
  }
}

}  // namespace
}  // namespace churnlab
