#include "agent/destinations.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace churnlab {

DestinationTable::DestinationTable(std::vector<SocketAddress> targets,
                                   std::vector<std::string> names)
    : targets_(std::move(targets)), names_(std::move(names)) {
  names_.resize(targets_.size());
  active_.assign(targets_.size(), true);
  for (uint32_t i = 0; i < targets_.size(); ++i) Index(i);
  first_new_ = static_cast<uint32_t>(targets_.size());
  last_active_ = Active();
}

void DestinationTable::Index(uint32_t entry) {
  if (names_[entry].empty()) return;  // an IP literal: no lookup changes it
  by_name_[absl::StrCat(names_[entry], ":", targets_[entry].port())].push_back(entry);
  by_address_.emplace(Key{names_[entry], targets_[entry]}, entry);
}

void DestinationTable::Take(const NamedTarget& name,
                            const absl::StatusOr<std::vector<SocketAddress>>& found,
                            const std::function<bool(const SocketAddress&)>& allowed,
                            std::vector<std::string>* notes) {
  const std::string label = absl::StrCat(name.host, ":", name.port);
  if (!found.ok()) {
    notes->push_back(absl::StrCat(found.status().message(), "; ", label, " keeps its addresses"));
    return;
  }
  const int family = targets_.front().family();
  std::vector<uint32_t> entries;
  std::vector<std::string> refused;
  size_t kept = 0;
  for (const SocketAddress& address : *found) {
    if (address.family() != family || kept == kMaxAddressesPerName) continue;
    ++kept;
    auto known = by_address_.find(Key{name.host, address});
    if (known != by_address_.end()) {
      entries.push_back(known->second);
      continue;
    }
    if (!allowed(address)) {
      refused.push_back(address.ToString());
      continue;
    }
    if (targets_.size() >= kMaxDestinations) {
      ++dropped_;
      continue;
    }
    const auto at = static_cast<uint32_t>(targets_.size());
    targets_.push_back(address);
    names_.push_back(name.host);
    active_.push_back(false);
    Index(at);
    entries.push_back(at);
  }
  if (!refused.empty()) {
    notes->push_back(absl::StrCat(label, " now resolves to ", absl::StrJoin(refused, ", "),
                                  ", outside the allowed targets: not used"));
  }
  if (entries.empty()) {
    notes->push_back(
        absl::StrCat(label, " has no usable address in this lookup; it keeps ", "its addresses"));
    return;
  }
  for (uint32_t i : by_name_[label]) active_[i] = false;
  for (uint32_t i : entries) active_[i] = true;
}

std::vector<uint32_t> DestinationTable::Active() const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < active_.size(); ++i) {
    if (active_[i]) out.push_back(i);
  }
  return out;
}

std::optional<DestinationUpdate> DestinationTable::Update() {
  std::vector<uint32_t> active = Active();
  if (first_new_ == targets_.size() && active == last_active_) return std::nullopt;
  DestinationUpdate update;
  update.first = first_new_;
  update.added.assign(targets_.begin() + first_new_, targets_.end());
  update.added_names.assign(names_.begin() + first_new_, names_.end());
  update.active = active;
  first_new_ = static_cast<uint32_t>(targets_.size());
  last_active_ = std::move(active);
  return update;
}

std::vector<Resolution> UsedByName(const std::vector<SocketAddress>& targets,
                                   const std::vector<std::string>& names) {
  std::vector<Resolution> out;
  absl::flat_hash_map<std::string, size_t> at;
  for (size_t i = 0; i < targets.size() && i < names.size(); ++i) {
    if (names[i].empty()) continue;
    auto [it, added] = at.try_emplace(absl::StrCat(names[i], ":", targets[i].port()), out.size());
    if (added) {
      out.push_back(Resolution{NamedTarget{names[i], static_cast<uint16_t>(targets[i].port())}});
    }
    out[it->second].addresses.push_back(targets[i]);
    out[it->second].found = out[it->second].addresses.size();
  }
  return out;
}

NameWatch::NameWatch(DestinationTable table, std::vector<NamedTarget> names,
                     absl::Duration interval, std::function<bool(const SocketAddress&)> allowed,
                     std::function<void(const std::string&)> log)
    : table_(std::move(table)),
      names_(std::move(names)),
      interval_(interval),
      allowed_(std::move(allowed)),
      log_(std::move(log)),
      failures_(names_.size(), 0),
      thread_(&NameWatch::Loop, this) {}

NameWatch::~NameWatch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void NameWatch::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, absl::ToChronoNanoseconds(interval_), [&] { return stop_; })) {
    lock.unlock();
    std::vector<std::string> notes;
    std::vector<bool> failed;
    for (const NamedTarget& name : names_) {
      {
        std::lock_guard<std::mutex> stopping(mu_);
        if (stop_) return;  // a stop waits for one lookup at most, not a whole round
      }
      absl::StatusOr<std::vector<SocketAddress>> found = ResolveName(name);
      failed.push_back(!found.ok());
      table_.Take(name, found, allowed_, &notes);
    }
    for (const std::string& note : notes) log_(note);
    std::optional<DestinationUpdate> update = table_.Update();
    lock.lock();
    ++rounds_;
    for (size_t i = 0; i < failed.size(); ++i) failures_[i] += failed[i] ? 1 : 0;
    if (update.has_value()) {
      // An update not taken yet is part of this one: its entries are in the same table.
      if (found_.has_value()) {
        update->first = found_->update.first;
        update->added.insert(update->added.begin(), found_->update.added.begin(),
                             found_->update.added.end());
        update->added_names.insert(update->added_names.begin(), found_->update.added_names.begin(),
                                   found_->update.added_names.end());
      }
      found_ = Found{*std::move(update), table_.targets(), table_.names()};
    }
  }
}

std::optional<NameWatch::Found> NameWatch::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(found_, std::nullopt);
}

uint32_t NameWatch::rounds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rounds_;
}

std::vector<uint32_t> NameWatch::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

}  // namespace churnlab
