#include "common/flags.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/terminal_text.h"

namespace churnlab {

FlagSet::FlagSet(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void FlagSet::String(std::string name, std::string* value, std::string help) {
  Custom(std::move(name), "STRING", *value, std::move(help), [value](absl::string_view text) {
    *value = std::string(text);
    return absl::OkStatus();
  });
}

void FlagSet::Int(std::string name, int64_t* value, std::string help) {
  Custom(std::move(name), "N", absl::StrCat(*value), std::move(help),
         [value](absl::string_view text) {
           if (!absl::SimpleAtoi(text, value)) {
             return absl::InvalidArgumentError("not an integer");
           }
           return absl::OkStatus();
         });
}

void FlagSet::Double(std::string name, double* value, std::string help) {
  Custom(std::move(name), "X", absl::StrCat(*value), std::move(help),
         [value](absl::string_view text) {
           if (!ParseFiniteDouble(text, value)) {
             return absl::InvalidArgumentError("not a finite number");
           }
           return absl::OkStatus();
         });
}

void FlagSet::Bool(std::string name, bool* value, std::string help) {
  CustomBool(std::move(name), *value ? "true" : "false", std::move(help),
             [value](absl::string_view text) {
               if (!absl::SimpleAtob(text, value)) {
                 return absl::InvalidArgumentError("not true or false");
               }
               return absl::OkStatus();
             });
}

void FlagSet::CustomBool(std::string name, std::string default_text, std::string help,
                         Parser parse) {
  Custom(std::move(name), "", std::move(default_text), std::move(help), std::move(parse));
  flags_.back().is_bool = true;
}

void FlagSet::Duration(std::string name, absl::Duration* value, std::string help) {
  Custom(std::move(name), "DURATION", absl::FormatDuration(*value), std::move(help),
         [value](absl::string_view text) {
           if (!absl::ParseDuration(text, value)) {
             return absl::InvalidArgumentError("not a duration (like 250ms, 15s, 2m)");
           }
           return absl::OkStatus();
         });
}

void FlagSet::Custom(std::string name, std::string value_name, std::string default_text,
                     std::string help, Parser parse) {
  if (Find(name) != nullptr) {
    // Two flags of one name: the second could never be given. A bug in the binary, not in its
    // command line, caught by the first run of --help.
    std::fprintf(stderr, "FlagSet: --%s is defined twice\n", name.c_str());
    std::abort();
  }
  flags_.push_back(Flag{std::move(name), std::move(value_name), std::move(default_text),
                        std::move(help), false, std::move(parse)});
}

const FlagSet::Flag* FlagSet::Find(absl::string_view name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(int argc, char** argv) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      return positional;
    }
    if (arg == "--version") {
      version_requested_ = true;
      return positional;
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (!absl::StartsWith(arg, "--")) {
      positional.emplace_back(arg);
      continue;
    }
    arg.remove_prefix(2);
    size_t eq = arg.find('=');
    absl::string_view name = arg.substr(0, eq);
    const Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (flag->is_bool) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    }
    absl::Status status = flag->parse(value);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, "=", value, ": ", status.message()));
    }
  }
  return positional;
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("Usage: ", program_, " [flags]\n\n", summary_, "\n\nFlags:\n");
  for (const Flag& flag : flags_) {
    std::string left = absl::StrCat("  --", flag.name);
    if (!flag.value_name.empty()) absl::StrAppend(&left, "=", flag.value_name);
    absl::StrAppendFormat(&out, "%-30s %s", left, flag.help);
    if (!flag.default_text.empty()) absl::StrAppend(&out, " (default: ", flag.default_text, ")");
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help                         print this help and exit\n");
  absl::StrAppend(&out, "  --version                      print the version and exit\n");
  return out;
}

std::vector<std::string> FlagSet::ParseOrExit(int argc, char** argv) {
  absl::StatusOr<std::vector<std::string>> positional = Parse(argc, argv);
  if (help_requested_) {
    std::fputs(Usage().c_str(), stdout);
    std::exit(kExitOk);
  }
  if (version_requested_) {
    std::printf("%s %s\n", program_.c_str(), kChurnlabVersion);
    std::exit(kExitOk);
  }
  if (!positional.ok()) {
    // The message echoes the flag's value: printed escaped.
    std::fprintf(stderr, "%s: %s\nRun '%s --help' for the flags.\n", program_.c_str(),
                 TerminalSafe(positional.status().message()).c_str(), program_.c_str());
    std::exit(kExitBadInput);
  }
  return *std::move(positional);
}

void FlagSet::ParseFlagsOnlyOrExit(int argc, char** argv) {
  std::vector<std::string> positional = ParseOrExit(argc, argv);
  if (!positional.empty()) {
    ExitIfBadInput(program_, absl::InvalidArgumentError(
                                 absl::StrCat("unexpected argument '", positional[0], "'")));
  }
}

void ExitIfBadInput(const std::string& program, const absl::Status& status) {
  if (status.ok()) return;
  std::fprintf(stderr, "%s: %s\n", program.c_str(), TerminalSafe(status.message()).c_str());
  std::exit(kExitBadInput);
}

absl::Status ReadFlagFile(absl::string_view path, size_t max_bytes, std::string* out) {
  errno = 0;
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read '", path, "': ", errno != 0 ? std::strerror(errno) : "cannot open it"));
  }
  // One byte past the limit tells a file that is too big without reading it whole.
  std::string text(max_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read '", path, "': ", errno != 0 ? std::strerror(errno) : "a read failed"));
  }
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is over the size limit of ", max_bytes, " bytes"));
  }
  *out = std::move(text);
  return absl::OkStatus();
}

bool ParseFiniteDouble(absl::string_view text, double* out) {
  double parsed = 0;
  if (!absl::SimpleAtod(text, &parsed) || !std::isfinite(parsed)) return false;
  *out = parsed;
  return true;
}

}  // namespace churnlab
