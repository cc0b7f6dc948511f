// Command-line flags for every churnlab binary: `--name=value` or `--name value`, `--help`,
// and errors that name the flag and the bad value. (Abseil 20220623's flags exit 1 on --help and
// cannot report bad input with our exit code 2, so the binaries use this small parser instead.)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace churnlab {

// The project's version (CMake's PROJECT_VERSION), which every binary's --version prints.
inline constexpr char kChurnlabVersion[] = CHURNLAB_VERSION;

// Exit codes shared by every binary.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitCannotRun = 3;

class FlagSet {
 public:
  using Parser = std::function<absl::Status(absl::string_view value)>;

  // `summary` is printed under the usage line of --help.
  FlagSet(std::string program, std::string summary);

  // Each registers `--name`; the variable's value at registration is the documented default.
  void String(std::string name, std::string* value, std::string help);
  void Int(std::string name, int64_t* value, std::string help);
  void Double(std::string name, double* value, std::string help);
  // A bool flag accepts `--name`, `--name=true|false`.
  void Bool(std::string name, bool* value, std::string help);
  // Durations as absl::ParseDuration reads them: "250ms", "15s", "2m".
  void Duration(std::string name, absl::Duration* value, std::string help);
  // Any other type: `parse` stores the value or returns why it is bad.
  void Custom(std::string name, std::string value_name, std::string default_text, std::string help,
              Parser parse);
  // A switch handled by `parse` like Custom: a bare `--name` hands it "true".
  void CustomBool(std::string name, std::string default_text, std::string help, Parser parse);

  // Parses argv[1..]. Returns the positional arguments; INVALID_ARGUMENT for an unknown flag, a
  // missing or malformed value (the message names both). Sets help_requested() on --help / -h.
  absl::StatusOr<std::vector<std::string>> Parse(int argc, char** argv);
  bool help_requested() const { return help_requested_; }
  // --version was given (ParseOrExit prints it and exits 0).
  bool version_requested() const { return version_requested_; }
  std::string Usage() const;

  // Parse, then: print usage and exit 0 on --help; print the error and exit 2 on bad input.
  std::vector<std::string> ParseOrExit(int argc, char** argv);
  // ParseOrExit for programs that take no positional arguments: one is bad input too.
  void ParseFlagsOnlyOrExit(int argc, char** argv);

 private:
  struct Flag {
    std::string name;
    std::string value_name;
    std::string default_text;
    std::string help;
    bool is_bool = false;
    Parser parse;
  };
  const Flag* Find(absl::string_view name) const;

  std::string program_;
  std::string summary_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
  bool version_requested_ = false;
};

// A Custom parser for an integer in [low, high]: the error says the range.
template <typename T>
FlagSet::Parser InRange(T* out, T low, T high) {
  return [out, low, high](absl::string_view text) {
    if (!absl::SimpleAtoi(text, out) || *out < low || *out > high) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected an integer from ", low, " to ", high));
    }
    return absl::OkStatus();
  };
}

// Reads the file a flag names, whole, when it holds at most `max_bytes` (a bigger one is never
// read whole). INVALID_ARGUMENT naming the path when it cannot be read or is too big.
absl::Status ReadFlagFile(absl::string_view path, size_t max_bytes, std::string* out);

// Exits with kExitBadInput after printing "program: message" when `status` is not OK.
void ExitIfBadInput(const std::string& program, const absl::Status& status);

// absl::SimpleAtod, less what no flag, spec or threshold of ours means: "nan", "inf", and
// numbers too large for a double. False for those and for what is not a number.
bool ParseFiniteDouble(absl::string_view text, double* out);

}  // namespace churnlab
