// A running shard's destinations when its targets include host names, and the lookups that
// keep them current. The engine's table only grows (a connection's index into it stays valid);
// each name's addresses as last looked up are the entries new connections go to. Every address
// a lookup adds is checked against the agent's allow-list first: DNS cannot widen it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/engine_params.h"
#include "common/net_address.h"
#include "common/target_names.h"

namespace churnlab {

class DestinationTable {
 public:
  // The engine's table as ResolveEngineTargets made it (targets, and per target its host name,
  // "" for an IP literal).
  DestinationTable(std::vector<SocketAddress> targets, std::vector<std::string> names);

  // A name's fresh lookup (ResolveName's answer, or why it failed): its addresses of the run's
  // family, at most kMaxAddressesPerName, those `allowed` takes, become the name's entries (new
  // ones appended). A failed lookup, or one left with no address, keeps the name's entries.
  // Notes for the log go to *notes.
  void Take(const NamedTarget& name, const absl::StatusOr<std::vector<SocketAddress>>& found,
            const std::function<bool(const SocketAddress&)>& allowed,
            std::vector<std::string>* notes);
  // What changed since the last call (nothing when no entry was added and the active set is the
  // same): the update for the engine.
  std::optional<DestinationUpdate> Update();

  const std::vector<SocketAddress>& targets() const { return targets_; }
  const std::vector<std::string>& names() const { return names_; }
  // Addresses lookups found that the table had no room for (kMaxDestinations).
  uint64_t dropped() const { return dropped_; }

 private:
  std::vector<uint32_t> Active() const;

  // The entries of each name ("host:port") and of each (host, address): lookups are hash finds.
  using Key = std::pair<std::string, SocketAddress>;
  absl::flat_hash_map<std::string, std::vector<uint32_t>> by_name_;
  absl::flat_hash_map<Key, uint32_t> by_address_;
  void Index(uint32_t entry);

  std::vector<SocketAddress> targets_;
  std::vector<std::string> names_;
  // Whether each entry takes new connections: IP literals always, a name's while its last
  // lookup had it.
  std::vector<bool> active_;
  uint32_t first_new_ = 0;             // entries from here on are not in an update yet
  std::vector<uint32_t> last_active_;  // as of the last update
  uint64_t dropped_ = 0;
};

// A table's entries by name ("" entries left out), in the order first used: every address each
// name was used at.
std::vector<Resolution> UsedByName(const std::vector<SocketAddress>& targets,
                                   const std::vector<std::string>& names);

// Looks a shard's names up again every `interval` on a thread of its own, so the thread that
// polls the engine never waits for DNS; the caller takes each update and gives it to the engine.
class NameWatch {
 public:
  // `table` as the run starts, `names` its targets given by name, `allowed` the agent's rule
  // (CheckTargetsAllowed against its allow-list), `log` for notes. Lookups start one interval
  // from now.
  NameWatch(DestinationTable table, std::vector<NamedTarget> names, absl::Duration interval,
            std::function<bool(const SocketAddress&)> allowed,
            std::function<void(const std::string&)> log);
  // Stops and joins: a lookup under way ends within kResolveTimeout.
  ~NameWatch();

  struct Found {
    DestinationUpdate update;
    // The table after it, for the telemetry (every address used, per name).
    std::vector<SocketAddress> targets;
    std::vector<std::string> names;
  };
  // The change found since the last call, if any.
  std::optional<Found> Take();
  // Lookups done so far (each a pass over every name), and per name (in the order given) those
  // that failed.
  uint32_t rounds() const;
  std::vector<uint32_t> failures() const;
  const std::vector<NamedTarget>& names() const { return names_; }

 private:
  void Loop();

  DestinationTable table_;  // the lookup thread's own
  const std::vector<NamedTarget> names_;
  const absl::Duration interval_;
  const std::function<bool(const SocketAddress&)> allowed_;
  const std::function<void(const std::string&)> log_;
  mutable std::mutex mu_;  // guards the members below
  std::condition_variable cv_;
  bool stop_ = false;
  std::optional<Found> found_;
  uint32_t rounds_ = 0;
  std::vector<uint32_t> failures_;
  std::thread thread_;
};

}  // namespace churnlab
