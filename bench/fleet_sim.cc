// churnlab-fleet-sim: one real churnlab-coordinator driven by many lightweight fake agents that
// speak the real AgentGateway protocol but send no traffic. Each attaches, takes its shard of a
// run and sends cumulative telemetry once a second, all in step as real agents do. Prints the
// coordinator's CPU (cores, over the steady part of the run), its resident memory, and the delay
// from a telemetry burst to the run update that carries it, on WatchRun (gRPC) and on the
// dashboard's event stream (SSE).
//
// churnlab-fleet-sim --agents=1000 --seconds=30
// churnlab-fleet-sim --agents=300 --ips-per-agent=4096 --run-ips-per-agent=4 --pages=20
//   (maximal hellos, 20 dashboard pages open)
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "churnlab/v1/agent.grpc.pb.h"
#include "churnlab/v1/control.grpc.pb.h"
#include "common/flags.h"
#include "common/histogram.h"
#include "proto/grpc_link.h"
#include "proto/telemetry_codec.h"
#include "tests/support/child_process.h"

namespace churnlab {
namespace {

using Clock = std::chrono::steady_clock;

// One fake agent: a bidi stream whose writes go out one at a time.
class FakeAgent final : public grpc::ClientBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  FakeAgent(v1::AgentGateway::Stub* stub, int index, int ips) : index_(index), ips_(ips) {
    stub->async()->Attach(&context_, this);
    v1::AgentMessage hello;
    v1::Hello* h = hello.mutable_hello();
    h->set_name(absl::StrCat("sim-", index));
    h->set_host(absl::StrCat("sim-host-", index / 8));
    for (int k = 0; k < ips_; ++k) h->add_source_ips(SourceIp(k));
    h->add_allow_targets("127.0.0.0/8");
    h->mutable_port_range()->set_low(32768);
    h->mutable_port_range()->set_high(60999);
    (*h->mutable_sysctls())["net.ipv4.tcp_tw_reuse"] = "0";
    h->set_fd_limit(20000);
    h->set_version("sim");
    Send(hello);
    StartRead(&in_);
    StartCall();
  }

  // One second's telemetry: cumulative counts grow by the shard's rate.
  bool SendTelemetry(double elapsed_s, bool final) {
    std::string run_id;
    double rate;
    std::vector<std::string> sources;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (run_id_.empty() || done_) return false;
      run_id = run_id_;
      rate = rate_;
      sources = sources_;
    }
    v1::AgentMessage message;
    v1::ShardTelemetry* t = message.mutable_telemetry();
    t->set_run_id(run_id);
    t->mutable_elapsed()->set_seconds(static_cast<int64_t>(elapsed_s));
    t->set_final(final);
    t->set_port_range_size(28232);
    // The shard's source IPs, as a real agent reports them (all of its own when none is named).
    if (sources.empty()) {
      for (int k = 0; k < ips_; ++k) sources.push_back(SourceIp(k));
    }
    uint64_t count = static_cast<uint64_t>(rate * elapsed_s / sources.size());
    for (const std::string& ip : sources) {
      v1::SourceCounts* s = t->add_sources();
      s->set_ip(ip);
      s->set_attempted(count);
      s->set_succeeded(count);
      s->set_requests(count);
      s->set_ports_in_use(std::min<uint64_t>(count, 28232));
      s->set_peak_ports_in_use(s->ports_in_use());
      s->mutable_tcp_states()->set_time_wait(s->ports_in_use());
      s->mutable_tcp_states()->set_established(2);
    }
    Histogram connect;
    for (uint64_t i = 0; i < std::min<uint64_t>(count, 200); ++i) connect.Record(50000 + 997 * i);
    HistogramToProto(connect, t->mutable_connect_latency());
    HistogramToProto(connect, t->mutable_connection_latency());
    (*t->mutable_host()->mutable_counter_deltas())["ActiveOpens"] = static_cast<int64_t>(count);
    return Send(message);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (in_.has_assign()) {
      std::lock_guard<std::mutex> lock(mu_);
      run_id_ = in_.assign().run_id();
      rate_ = in_.assign().rate();
      sources_.assign(in_.assign().source_ips().begin(), in_.assign().source_ips().end());
    }
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) done_ = true;
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    finished_ = true;
    cv_.notify_all();
  }
  void Close() {
    context_.TryCancel();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return finished_; });
  }
  std::atomic<uint64_t> skipped{0};

 private:
  // Addresses that exist nowhere (10.200.0.0/13): the fake agents send no traffic.
  std::string SourceIp(int k) const {
    int n = index_ * ips_ + k;
    return absl::StrFormat("10.%d.%d.%d", 200 + n / 65536, (n / 256) % 256, n % 256);
  }

  // False (counted as skipped) when the previous write has not gone out yet.
  bool Send(const v1::AgentMessage& message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return false;
    if (writing_) {
      skipped.fetch_add(1);
      return false;
    }
    writing_ = true;
    out_ = message;
    StartWrite(&out_);
    return true;
  }

  int index_;
  int ips_;
  grpc::ClientContext context_;
  v1::CoordinatorMessage in_;
  v1::AgentMessage out_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool writing_ = false;
  bool done_ = false;
  bool finished_ = false;
  std::string run_id_;
  double rate_ = 0;
  std::vector<std::string> sources_;
};

// Delays from a telemetry burst to the update that carries it.
class DelayLog {
 public:
  void Burst(Clock::time_point at) {
    std::lock_guard<std::mutex> lock(mu_);
    bursts_.push_back(at);
  }
  // An update arrived: its delay after the newest burst before it.
  void Update(Clock::time_point at) {
    std::lock_guard<std::mutex> lock(mu_);
    if (bursts_.empty()) return;
    delays_ms_.push_back(std::chrono::duration<double, std::milli>(at - bursts_.back()).count());
  }
  std::string Summary() {
    std::lock_guard<std::mutex> lock(mu_);
    if (delays_ms_.empty()) return "no updates";
    std::vector<double> d = delays_ms_;
    std::sort(d.begin(), d.end());
    return absl::StrFormat("p50 %.0f ms, p90 %.0f ms, max %.0f ms over %d updates", d[d.size() / 2],
                           d[d.size() * 9 / 10], d.back(), d.size());
  }

 private:
  std::mutex mu_;
  std::vector<Clock::time_point> bursts_;
  std::vector<double> delays_ms_;
};

struct ProcessUsage {
  double cpu_seconds;
  long rss_kib;
  long hwm_kib;
};

ProcessUsage Usage(pid_t pid) {
  ProcessUsage u{0, 0, 0};
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string field;
  for (int i = 1; i <= 15 && stat >> field; ++i) {
    if (i == 14 || i == 15) u.cpu_seconds += std::stod(field) / sysconf(_SC_CLK_TCK);
  }
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kib = std::stol(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) u.hwm_kib = std::stol(line.substr(6));
  }
  return u;
}

// Polls the coordinator until all `agents` are attached (at most a minute).
bool WaitForAgents(v1::Control::Stub& control, int64_t agents) {
  for (int tries = 0;; ++tries) {
    grpc::ClientContext context;
    v1::ListAgentsResponse listed;
    control.ListAgents(&context, v1::ListAgentsRequest(), &listed);
    if (listed.agents_size() == agents) return true;
    if (tries > 600) {
      std::fprintf(stderr, "only %d of %lld agents attached\n", listed.agents_size(),
                   static_cast<long long>(agents));
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// A run of 10 connections/s per agent aimed at the discard port, from `run_ips` source IPs of
// each agent (0: all); its id.
absl::StatusOr<std::string> StartFleetRun(v1::Control::Stub& control, int64_t agents,
                                          int64_t seconds, int64_t run_ips) {
  v1::StartRunRequest start;
  v1::RunSpec* spec = start.mutable_spec();
  spec->set_name("fleet-sim");
  if (run_ips > 0) spec->set_source_ips_per_agent(static_cast<int32_t>(run_ips));
  spec->add_targets("127.0.0.1:9");
  spec->set_rate(10.0 * agents);
  spec->mutable_duration()->set_seconds(seconds);
  v1::StartRunResponse started;
  grpc::ClientContext context;
  grpc::Status s = control.StartRun(&context, start, &started);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return started.run_id();
}

// Pages through the stored runs (ListRuns, 100 at a time, as `churnlab runs` does) and reads
// each page's first run whole (GetRun), over and over until `stop`, as a client browsing the
// store would; adds the calls it made to `calls`. Returns "" at `stop`, or the error of the call
// that failed.
std::string PageThroughRuns(v1::Control::Stub& control, const std::atomic<bool>& stop,
                            std::atomic<uint64_t>& calls) {
  std::string after;
  while (!stop.load()) {
    grpc::ClientContext context;
    v1::ListRunsRequest request;
    request.set_limit(100);
    request.set_after(after);
    v1::ListRunsResponse page;
    grpc::Status listed = control.ListRuns(&context, request, &page);
    if (!listed.ok()) return "ListRuns: " + listed.error_message();
    calls.fetch_add(1);
    if (page.runs_size() > 0) {
      grpc::ClientContext read_context;
      v1::GetRunRequest read;
      read.set_run_id(page.runs(0).run_id());
      v1::GetRunResponse report;
      grpc::Status got = control.GetRun(&read_context, read, &report);
      if (!got.ok()) return "GetRun: " + got.error_message();
      calls.fetch_add(1);
    }
    after = page.next();
  }
  return "";
}

// Long: the benchmark's script from top to bottom (start, attach, run, measure, print); the
// threads and figures it shares are local to it on purpose.
int Main(int argc, char** argv) {
  int64_t agents = 1000;
  int64_t seconds = 30;
  int64_t channels = 50;
  int64_t ips = 1;
  bool sse = true;
  int64_t pages = 1;
  int64_t run_ips = 0;
  int64_t pagers = 0;
  std::string db;
  FlagSet flags("churnlab-fleet-sim",
                "Drives a real churnlab-coordinator with fake agents (the real protocol, no\n"
                "traffic) and reports its CPU, memory and telemetry-to-update delay.");
  flags.Int("agents", &agents, "fake agents");
  flags.Int("seconds", &seconds, "length of the run");
  flags.Int("channels", &channels, "gRPC connections the agents share");
  flags.Int("ips-per-agent", &ips, "source IPs each fake agent reports");
  flags.Bool("sse", &sse, "also follow the dashboard's event stream (as an open page does)");
  flags.Int("run-ips-per-agent", &run_ips, "source IPs of each agent the run uses (0: all)");
  flags.Int("pagers", &pagers,
            "clients paging through the stored runs (ListRuns and GetRun) during the run");
  flags.String("db", &db, "a run store to start from (copied; default: an empty one)");
  flags.Int("pages", &pages, "event streams open at once with --sse (open dashboard pages)");
  flags.ParseFlagsOnlyOrExit(argc, argv);
  if (agents < 1 || agents > 100000 || seconds < 5 || channels < 1 || ips < 1 || ips > 4096 ||
      pages < 1 || pages > 256 || run_ips < 0 || run_ips > ips || pagers < 0 || pagers > 256) {
    ExitIfBadInput(
        "churnlab-fleet-sim",
        absl::InvalidArgumentError("want --agents 1..100000, --seconds >= 5, "
                                   "--channels >= 1, --ips-per-agent 1..4096, "
                                   "--pages 1..256, --run-ips-per-agent 0..ips, --pagers 0..256"));
  }

  std::string dir = testing::MakeTempDir();
  std::error_code copy_error;
  if (!db.empty() && !std::filesystem::copy_file(db, dir + "/runs.db", copy_error)) {
    std::fprintf(stderr, "cannot copy --db=%s: %s\n", db.c_str(), copy_error.message().c_str());
    return kExitCannotRun;
  }
  absl::StatusOr<testing::ChildProcess> coordinator = testing::ChildProcess::Start(
      {testing::BinaryPath("churnlab-coordinator"), "--grpc-listen=127.0.0.1:0",
       "--http-listen=127.0.0.1:0", "--address-file=" + dir + "/grpc",
       "--http-address-file=" + dir + "/http", "--db=" + dir + "/runs.db"});
  if (!coordinator.ok()) return kExitCannotRun;
  absl::StatusOr<std::string> grpc_address = testing::WaitForFile(dir + "/grpc", absl::Seconds(10));
  absl::StatusOr<std::string> http_address = testing::WaitForFile(dir + "/http", absl::Seconds(10));
  if (!grpc_address.ok() || !http_address.ok()) return kExitCannotRun;
  std::printf("dashboard: http://%s/\n", http_address->c_str());
  std::fflush(stdout);

  std::vector<std::shared_ptr<grpc::Channel>> pool;
  std::vector<std::unique_ptr<v1::AgentGateway::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    args.SetInt("churnlab.sim_channel", i);
    pool.push_back(
        grpc::CreateCustomChannel(*grpc_address, grpc::InsecureChannelCredentials(), args));
    stubs.push_back(v1::AgentGateway::NewStub(pool.back()));
  }
  std::vector<std::unique_ptr<FakeAgent>> fleet;
  for (int i = 0; i < agents; ++i) {
    fleet.push_back(std::make_unique<FakeAgent>(stubs[i % channels].get(), i, ips));
  }
  grpc::ChannelArguments control_args;
  control_args.SetMaxReceiveMessageSize(-1);  // ListAgents carries every agent
  auto control = v1::Control::NewStub(
      grpc::CreateCustomChannel(*grpc_address, grpc::InsecureChannelCredentials(), control_args));
  if (!WaitForAgents(*control, agents)) return kExitFailed;
  ProcessUsage idle = Usage(coordinator->pid());

  absl::StatusOr<std::string> run_id = StartFleetRun(*control, agents, seconds, run_ips);
  if (!run_id.ok()) {
    std::fprintf(stderr, "StartRun: %s\n", std::string(run_id.status().message()).c_str());
    return kExitFailed;
  }
  DelayLog watch_delays;
  DelayLog sse_delays;
  std::thread watcher([&] {
    grpc::ClientContext context;
    v1::WatchRunRequest request;
    request.set_run_id(*run_id);
    auto reader = control->WatchRun(&context, request);
    v1::RunUpdate update;
    while (reader->Read(&update)) watch_delays.Update(Clock::now());
  });
  std::atomic<bool> stop_sse{false};
  std::atomic<uint64_t> pager_calls{0};
  std::vector<std::string> pager_errors(static_cast<size_t>(pagers));
  std::vector<std::thread> pager_threads;
  for (int64_t i = 0; i < pagers; ++i) {
    pager_threads.emplace_back(
        [&, i] { pager_errors[i] = PageThroughRuns(*control, stop_sse, pager_calls); });
  }
  std::vector<std::thread> sse_readers;
  for (int64_t page = 0; sse && page < pages; ++page) {
    sse_readers.emplace_back([&, page] {
      httplib::Client http(absl::StrCat("http://", *http_address));
      http.set_read_timeout(5, 0);
      std::string pending;
      http.Get("/api/events", [&](const char* data, size_t n) {
        pending.append(data, n);
        for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
          // The first page's delays stand for all: the frames are the same for every page.
          if (page == 0 && pending.rfind("event: run", 0) == 0) sse_delays.Update(Clock::now());
          pending.erase(0, end + 2);
        }
        return !stop_sse.load();
      });
    });
  }

  // Telemetry bursts once a second after the shards' start delay (0.5 s), as real agents do.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Clock::time_point run_start = Clock::now();
  ProcessUsage steady_from{};
  Clock::time_point steady_at;
  uint64_t sent = 0;
  for (int s = 1; s <= seconds; ++s) {
    std::this_thread::sleep_until(run_start + std::chrono::seconds(s));
    if (s == 5) {
      steady_from = Usage(coordinator->pid());
      steady_at = Clock::now();
    }
    Clock::time_point burst = Clock::now();
    watch_delays.Burst(burst);
    sse_delays.Burst(burst);
    for (auto& agent : fleet) sent += agent->SendTelemetry(s, s == seconds);
  }
  ProcessUsage steady_to = Usage(coordinator->pid());
  double steady_s = std::chrono::duration<double>(Clock::now() - steady_at).count();
  watcher.join();
  stop_sse.store(true);
  for (std::thread& pager : pager_threads) pager.join();
  for (std::thread& reader : sse_readers) reader.join();
  uint64_t skipped = 0;
  for (auto& agent : fleet) skipped += agent->skipped.load();

  std::printf(
      "agents %lld over %lld connections, run %llds, %llu telemetry messages sent "
      "(%llu skipped: previous write still pending)\n",
      static_cast<long long>(agents), static_cast<long long>(channels),
      static_cast<long long>(seconds), static_cast<unsigned long long>(sent),
      static_cast<unsigned long long>(skipped));
  std::printf(
      "coordinator CPU: %.2f cores over the steady %.0fs (idle with agents attached "
      "before the run: %.1f CPU-s in all)\n",
      (steady_to.cpu_seconds - steady_from.cpu_seconds) / steady_s, steady_s, idle.cpu_seconds);
  std::printf("coordinator memory: RSS %.0f MiB at the end, peak %.0f MiB\n",
              steady_to.rss_kib / 1024.0, steady_to.hwm_kib / 1024.0);
  std::printf("telemetry -> WatchRun update: %s\n", watch_delays.Summary().c_str());
  std::printf("telemetry -> dashboard event (SSE): %s\n", sse_delays.Summary().c_str());
  if (pagers > 0) {
    std::printf("%lld clients paging through the store made %llu calls\n",
                static_cast<long long>(pagers),
                static_cast<unsigned long long>(pager_calls.load()));
  }
  for (const std::string& error : pager_errors) {
    if (!error.empty())
      std::printf("a client paging through the store stopped: %s\n", error.c_str());
  }
  for (auto& agent : fleet) agent->Close();
  coordinator->Stop(SIGTERM);
  return kExitOk;
}

}  // namespace
}  // namespace churnlab

int main(int argc, char** argv) { return churnlab::Main(argc, argv); }
