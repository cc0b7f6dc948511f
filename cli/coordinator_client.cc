#include "cli/coordinator_client.h"

#include <chrono>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/terminal_text.h"

namespace churnlab {

int Fail(const std::string& program, int code, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(), TerminalSafe(message).c_str());
  return code;
}

int ExitCodeFor(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                 status.error_code() == grpc::StatusCode::NOT_FOUND
             ? kExitBadInput
             : kExitCannotRun;
}

int ExitCodeFor(const absl::Status& status) {
  return ExitCodeFor(grpc::Status(static_cast<grpc::StatusCode>(status.code()), ""));
}

void AddCoordinatorFlags(FlagSet& flags, CoordinatorFlags* f) {
  flags.String("coordinator", &f->address, "HOST:PORT of the coordinator");
  AddSecurityFlags(flags, &f->security, /*server=*/false);
}

std::variant<Connection, int> Dial(const std::string& program, const CoordinatorFlags& f) {
  absl::StatusOr<LinkSecurity> security = LoadLinkSecurity(f.security);
  if (!security.ok()) return Fail(program, kExitBadInput, std::string(security.status().message()));
  std::shared_ptr<grpc::Channel> channel = DialCoordinator(f.address, *security);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    return Fail(program, kExitCannotRun,
                absl::StrCat("cannot reach the coordinator at ", f.address));
  }
  return Connection{v1::Control::NewStub(channel)};
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace churnlab
