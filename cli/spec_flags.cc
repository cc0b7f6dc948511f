#include "cli/spec_flags.h"

#include <google/protobuf/util/time_util.h>

#include <limits>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/engine_params.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "common/wire_protocol.h"
#include "proto/message_json.h"
#include "proto/run_spec.h"

namespace churnlab {
namespace {

using google::protobuf::util::TimeUtil;

void AddSpecFlag(FlagSet& flags, SpecOverrides& o, const std::string& name,
                 const std::string& value_name, const std::string& help,
                 std::function<absl::Status(absl::string_view, v1::RunSpec*)> apply,
                 bool* given = nullptr) {
  flags.Custom(name, value_name, "", help, [&o, name, apply, given](absl::string_view v) {
    if (given != nullptr) *given = true;
    std::string value(v);
    // Applied once the spec file is read; its error names the flag as a parse error would.
    o.edits.push_back([name, apply, value](v1::RunSpec* spec) {
      absl::Status status = apply(value, spec);
      if (status.ok()) return status;
      return absl::Status(status.code(),
                          absl::StrCat("--", name, "=", value, ": ", status.message()));
    });
    return absl::OkStatus();
  });
}

// --stage=DURATION:RATE, repeatable: the stages of the command line replace the file's.
void AddStageFlag(FlagSet& flags, SpecOverrides& o) {
  flags.Custom(
      "stage", "DURATION:RATE", "",
      "open model, repeatable: the rate goes linearly to RATE over DURATION (from 0 for the "
      "first), e.g. --stage=10s:100 --stage=30s:100 --stage=10s:0",
      [&o](absl::string_view v) {
        absl::StatusOr<RateStage> parsed = ParseRateStage(v);
        if (!parsed.ok()) return parsed.status();
        if (o.stages.empty()) {
          o.edits.push_back([&o](v1::RunSpec* spec) {
            spec->clear_stages();
            spec->clear_ramp_up();
            for (const RateStage& from : o.stages) {
              v1::Stage* stage = spec->add_stages();
              *stage->mutable_duration() =
                  TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(from.duration));
              stage->set_rate(from.rate);
            }
            if (!o.rate_given && !o.concurrency_given) spec->set_rate(0);  // their peak
            if (!o.duration_given) spec->clear_duration();                 // their sum
            return absl::OkStatus();
          });
        }
        o.stages.push_back(*parsed);
        return absl::OkStatus();
      });
}

// A switch: bare `--name` or `--name=true|false`.
void AddSpecSwitch(FlagSet& flags, SpecOverrides& o, const std::string& name,
                   const std::string& help, void (v1::RunSpec::*set)(bool)) {
  flags.CustomBool(name, "", help, [&o, set](absl::string_view v) {
    bool on;
    if (!absl::SimpleAtob(v, &on)) return absl::InvalidArgumentError("not true or false");
    o.edits.push_back([set, on](v1::RunSpec* spec) {
      (spec->*set)(on);
      return absl::OkStatus();
    });
    return absl::OkStatus();
  });
}

absl::Status SetDuration(absl::string_view text, google::protobuf::Duration* out) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a duration like 30s"));
  }
  *out = TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
  return absl::OkStatus();
}

template <typename T>
absl::Status SetNumber(absl::string_view text, T* out) {
  if (!absl::SimpleAtoi(text, out)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an integer"));
  }
  return absl::OkStatus();
}

using SpecEdit = std::function<absl::Status(absl::string_view, v1::RunSpec*)>;

// Edits for one spec field, by its setter: a string, an integer, a duration.
SpecEdit Text(void (v1::RunSpec::*set)(const std::string&)) {
  return [set](absl::string_view v, v1::RunSpec* s) {
    (s->*set)(std::string(v));
    return absl::OkStatus();
  };
}
// A choice flag takes the words the JSON takes ("client-fin"), from the enum's `word` options.
template <typename Enum>
SpecEdit Choice(void (v1::RunSpec::*set)(Enum), const google::protobuf::EnumDescriptor* type) {
  return [set, type](absl::string_view v, v1::RunSpec* s) {
    absl::StatusOr<int> number = EnumFromWord(*type, v);
    if (!number.ok()) return number.status();
    (s->*set)(static_cast<Enum>(*number));
    return absl::OkStatus();
  };
}
// An integer field. `min` 1 for a count that must be at least one: in the spec 0 means "not
// given" and takes the default, so an explicit 0 on the command line is refused rather than
// quietly replaced.
template <typename Int>
SpecEdit Integer(void (v1::RunSpec::*set)(Int), Int min = std::numeric_limits<Int>::min()) {
  return [set, min](absl::string_view v, v1::RunSpec* s) {
    Int n;
    if (absl::Status st = SetNumber(v, &n); !st.ok()) return st;
    if (n < min) return absl::InvalidArgumentError(absl::StrCat(n, " is less than ", min));
    (s->*set)(n);
    return absl::OkStatus();
  };
}
SpecEdit Duration(google::protobuf::Duration* (v1::RunSpec::*field)()) {
  return [field](absl::string_view v, v1::RunSpec* s) { return SetDuration(v, (s->*field)()); };
}
// A comma-separated list replacing a repeated field.
SpecEdit List(google::protobuf::RepeatedPtrField<std::string>* (v1::RunSpec::*field)()) {
  return [field](absl::string_view v, v1::RunSpec* s) {
    auto* list = (s->*field)();
    list->Clear();
    for (absl::string_view item : absl::StrSplit(v, ',')) list->Add(std::string(item));
    return absl::OkStatus();
  };
}

// Edits of the spec's request (protocols http and https).
SpecEdit Request(std::function<absl::Status(absl::string_view, v1::HttpRequest*)> edit) {
  return [edit](absl::string_view v, v1::RunSpec* s) { return edit(v, s->mutable_request()); };
}

// What each connection carries after connect(): the HTTP request, the expected status, TLS.
void AddExchangeFlags(FlagSet& flags, SpecOverrides& o) {
  using R = v1::HttpRequest;
  AddSpecFlag(flags, o, "method", "METHOD", "http/https: the request method (default GET)",
              Request([](absl::string_view v, R* r) {
                r->set_method(std::string(v));
                return absl::OkStatus();
              }));
  AddSpecFlag(flags, o, "path", "PATH", "http/https: the request path and query (default /)",
              Request([](absl::string_view v, R* r) {
                r->set_path(std::string(v));
                return absl::OkStatus();
              }));
  AddSpecFlag(flags, o, "header", "'NAME: VALUE'", "http/https, repeatable: a request header",
              Request([](absl::string_view v, R* r) {
                RETURN_IF_ERROR(CheckHeaderLine(v));
                r->add_headers(std::string(v));
                return absl::OkStatus();
              }));
  AddSpecFlag(flags, o, "body-file", "FILE", "http/https: the request body, from a file",
              Request([](absl::string_view v, R* r) {
                return ReadFlagFile(v, kMaxRequestBodyBytes, r->mutable_body());
              }));
  AddSpecFlag(flags, o, "expect-status", "CODE",
              "http/https: a response with another status fails (phase status)",
              Request([](absl::string_view v, R* r) {
                int32_t code = 0;
                RETURN_IF_ERROR(InRange<int32_t>(&code, 100, 599)(v));
                r->set_expect_status(code);
                return absl::OkStatus();
              }));
  AddSpecFlag(flags, o, "target-ca", "FILE",
              "tls/https: verify servers against these CA certificates (PEM; read here, carried "
              "in the spec to the agents)",
              [](absl::string_view v, v1::RunSpec* s) {
                return ReadFlagFile(v, kMaxCaPemBytes, s->mutable_tls()->mutable_target_ca_pem());
              });
  flags.CustomBool("insecure", "false", "tls/https: take any certificate, unverified",
                   [&o](absl::string_view v) {
                     bool on;
                     if (!absl::SimpleAtob(v, &on)) {
                       return absl::InvalidArgumentError("not true or false");
                     }
                     o.edits.push_back([on](v1::RunSpec* spec) {
                       spec->mutable_tls()->set_insecure(on);
                       return absl::OkStatus();
                     });
                     return absl::OkStatus();
                   });
  AddSpecFlag(flags, o, "tls-resumption", "FRACTION",
              "tls/https: share of connections that resume a session of an earlier one from "
              "the same source IP to the same target",
              [](absl::string_view v, v1::RunSpec* s) {
                double share;
                if (!ParseFiniteDouble(v, &share)) {
                  return absl::InvalidArgumentError(absl::StrCat("'", v, "' is not a number"));
                }
                s->mutable_tls()->set_resumption(share);
                return absl::OkStatus();
              });
}

}  // namespace

// Long: a table of the spec's flags, one entry each, most with the few lines that parse it.
void AddSpecFlags(FlagSet& flags, SpecOverrides& o) {
  using S = v1::RunSpec;
  AddSpecFlag(flags, o, "target", "IP:PORT,...", "targets", List(&S::mutable_targets));
  AddSpecFlag(
      flags, o, "rate", "N", "open model: new connections/s in total",
      [](absl::string_view v, S* s) {
        double rate;
        if (!ParseFiniteDouble(v, &rate)) {
          return absl::InvalidArgumentError(absl::StrCat("'", v, "' is not a finite number"));
        }
        s->set_rate(rate);
        s->set_concurrency(0);
        return absl::OkStatus();
      },
      &o.rate_given);
  AddSpecFlag(
      flags, o, "concurrency", "N", "closed model: connections in flight in total",
      [](absl::string_view v, S* s) {
        s->set_rate(0);
        return Integer(&S::set_concurrency)(v, s);
      },
      &o.concurrency_given);
  AddSpecFlag(flags, o, "duration", "DURATION", "how long new connections start",
              Duration(&S::mutable_duration), &o.duration_given);
  AddStageFlag(flags, o);
  AddSpecFlag(flags, o, "ramp-up", "DURATION", "linear ramp of the rate",
              Duration(&S::mutable_ramp_up));
  AddSpecFlag(flags, o, "connect-timeout", "DURATION", "handshake timeout",
              Duration(&S::mutable_connect_timeout));
  AddSpecFlag(flags, o, "io-timeout", "DURATION", "response timeout",
              Duration(&S::mutable_io_timeout));
  AddSpecFlag(flags, o, "hold", "DURATION",
              "keep each connection open this long after its requests, then close it",
              Duration(&S::mutable_hold));
  AddSpecFlag(flags, o, "resolve-interval", "DURATION",
              "targets by name: look them up again this often (0s: once; default 30s)",
              Duration(&S::mutable_resolve_interval));
  AddSpecFlag(flags, o, "close", "POLICY", "client-fin | rst | server-fin",
              Choice(&S::set_close_policy, v1::ClosePolicy_descriptor()));
  AddSpecFlag(flags, o, "protocol", "counter|http|tls|https",
              "request/response protocol; tls and https run inside TLS",
              Choice(&S::set_protocol, v1::Protocol_descriptor()));
  AddSpecFlag(flags, o, "bind", "MODE",
              "none | no-port | bind | bind-any | engine (the engine picks each port)",
              Choice(&S::set_bind_mode, v1::BindMode_descriptor()));
  AddSpecFlag(flags, o, "name", "NAME", "a label for the run", Text(&S::set_name));
  AddSpecFlag(flags, o, "requests-per-connection", "N",
              "exchanges per connection; 0 = connect (and TLS handshake), then close",
              Integer(&S::set_requests_per_connection, int64_t{0}));
  AddExchangeFlags(flags, o);
  AddSpecFlag(flags, o, "max-in-flight", "N", "open model: cap on open connections in total",
              Integer(&S::set_max_in_flight, int64_t{1}));
  AddSpecFlag(flags, o, "agents", "N|NAME,...", "how many agents, or which by name",
              [](absl::string_view v, S* s) {
                int n;
                if (absl::SimpleAtoi(v, &n)) {
                  s->clear_agent_names();
                  s->set_agents(n);
                  return absl::OkStatus();
                }
                return List(&S::mutable_agent_names)(v, s);
              });
  AddSpecFlag(flags, o, "ips-per-agent", "N", "source IPs per agent (0 = all)",
              Integer(&S::set_source_ips_per_agent));
  AddSpecFlag(flags, o, "source-ips", "IP,...", "exactly these source IPs",
              List(&S::mutable_source_ips));
  AddSpecSwitch(flags, o, "rebalance",
                "open model: hand a lost agent's share to the agents still running",
                &S::set_rebalance);
  AddSpecFlag(flags, o, "threshold", "EXPR", "pass/fail condition, repeatable: 'error_rate < 0.01'",
              [](absl::string_view v, S* s) {
                s->add_thresholds(std::string(v));
                return absl::OkStatus();
              });
  AddSpecFlag(flags, o, "tag", "KEY=VALUE",
              "a label stored with the run, repeatable: --tag=build=1234 --tag=kernel=6.1 "
              "(churnlab runs --tag=build=1234 finds it)",
              [](absl::string_view v, S* s) {
                absl::StatusOr<std::pair<std::string, std::string>> tag = ParseTag(v);
                if (!tag.ok()) return tag.status();
                (*s->mutable_tags())[tag->first] = tag->second;
                return absl::OkStatus();
              });
}

absl::StatusOr<v1::RunSpec> BuildSpec(const std::string& spec_file,
                                      const SpecOverrides& overrides) {
  if (overrides.rate_given && overrides.concurrency_given) {
    return absl::InvalidArgumentError(
        "--rate and --concurrency: give one (rate: new connections/s, the open model; "
        "concurrency: connections in flight, the closed model), not both");
  }
  v1::RunSpec spec;
  if (!spec_file.empty()) {
    std::string text;
    if (absl::Status s = ReadFlagFile(spec_file, kMaxSpecJsonBytes, &text); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--spec: ", s.message()));
    }
    absl::StatusOr<v1::RunSpec> parsed = ParseRunSpecJson(text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(spec_file, ": ", parsed.status().message()));
    }
    spec = *parsed;
  }
  for (const auto& edit : overrides.edits) {
    if (absl::Status s = edit(&spec); !s.ok()) return s;
  }
  ApplyRunSpecDefaults(&spec);
  if (absl::Status s = ValidateRunSpec(spec); !s.ok()) return s;
  return spec;
}

}  // namespace churnlab
