// A running shard's destinations as names are looked up again: the table only grows and keeps
// each name's entries to its last lookup's addresses (inside the allow-list, within the caps),
// the update crosses the pipe to an engine process in orders that cannot be misapplied, and a
// running engine, in this process or split over processes, moves its new connections to the
// update's destinations.
#include "agent/destinations.h"

#include <thread>

#include "agent/engine.h"
#include "agent/engine_pipe.h"
#include "agent/engine_processes.h"
#include "gtest/gtest.h"
#include "target/target_server.h"
#include "tests/support/child_process.h"

namespace churnlab {
namespace {

SocketAddress At(const std::string& text) { return *SocketAddress::ParseIpPort(text); }

const NamedTarget kApi{"api.example", 443};
bool AnyAllowed(const SocketAddress&) { return true; }

// A table of one IP literal and one name with two addresses.
DestinationTable Table() {
  return DestinationTable({At("10.0.0.1:80"), At("10.0.1.1:443"), At("10.0.1.2:443")},
                          {"", "api.example", "api.example"});
}

TEST(DestinationTableTest, ANameFollowsItsLastLookupAndTheTableOnlyGrows) {
  DestinationTable table = Table();
  std::vector<std::string> notes;
  EXPECT_FALSE(table.Update().has_value());  // nothing changed yet
  table.Take(kApi, std::vector<SocketAddress>{At("10.0.1.2:443"), At("10.0.1.3:443")}, AnyAllowed,
             &notes);
  std::optional<DestinationUpdate> u = table.Update();
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->first, 3u);
  ASSERT_EQ(u->added.size(), 1u);
  EXPECT_EQ(u->added[0].ToString(), "10.0.1.3:443");
  EXPECT_EQ(u->added_names, std::vector<std::string>{"api.example"});
  // The IP literal stays; 10.0.1.1 is gone from the name's lookup, so it takes no new connections.
  EXPECT_EQ(u->active, (std::vector<uint32_t>{0, 2, 3}));
  // The same answer again changes nothing; an address back again is its old entry.
  table.Take(kApi, std::vector<SocketAddress>{At("10.0.1.2:443"), At("10.0.1.3:443")}, AnyAllowed,
             &notes);
  EXPECT_FALSE(table.Update().has_value());
  table.Take(kApi, std::vector<SocketAddress>{At("10.0.1.1:443")}, AnyAllowed, &notes);
  u = table.Update();
  ASSERT_TRUE(u.has_value());
  EXPECT_TRUE(u->added.empty());
  EXPECT_EQ(u->active, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(table.targets().size(), 4u);
  EXPECT_TRUE(notes.empty());
}

// DNS cannot widen the allow-list, and a lookup that fails or leaves nothing keeps the name's
// addresses: load never stops for DNS, and never goes where the agent was not allowed.
TEST(DestinationTableTest, RefusedFailedAndOtherFamilyAnswersKeepTheAddresses) {
  DestinationTable table = Table();
  std::vector<std::string> notes;
  auto only_10_0_1_2 = [](const SocketAddress& a) { return a.IpString() == "10.0.1.2"; };
  table.Take(kApi, std::vector<SocketAddress>{At("192.0.2.9:443"), At("[2001:db8::1]:443")},
             only_10_0_1_2, &notes);
  EXPECT_FALSE(table.Update().has_value());
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("192.0.2.9:443, outside the allowed targets"), std::string::npos)
      << notes[0];
  EXPECT_NE(notes[1].find("keeps its addresses"), std::string::npos) << notes[1];
  notes.clear();
  table.Take(kApi, absl::UnavailableError("target api.example: cannot resolve it"), AnyAllowed,
             &notes);
  EXPECT_FALSE(table.Update().has_value());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("cannot resolve it; api.example:443 keeps its addresses"),
            std::string::npos)
      << notes[0];
  EXPECT_EQ(table.targets().size(), 3u);
}

// Past kMaxAddressesPerName a lookup's addresses are not used; past kMaxDestinations new ones are
// not added, and are counted.
TEST(DestinationTableTest, TheTableIsBounded) {
  std::vector<SocketAddress> many;
  for (int i = 0; i < 40; ++i) many.push_back(At("10.2.0." + std::to_string(i + 1) + ":443"));
  DestinationTable table = Table();
  std::vector<std::string> notes;
  table.Take(kApi, many, AnyAllowed, &notes);
  std::optional<DestinationUpdate> u = table.Update();
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->added.size(), kMaxAddressesPerName);
  EXPECT_EQ(u->active.size(), 1 + kMaxAddressesPerName);

  std::vector<SocketAddress> full(kMaxDestinations - 1, At("10.0.0.1:80"));
  DestinationTable big(full, std::vector<std::string>(full.size()));
  big.Take(kApi, std::vector<SocketAddress>{At("10.3.0.1:443"), At("10.3.0.2:443")}, AnyAllowed,
           &notes);
  EXPECT_EQ(big.targets().size(), kMaxDestinations);
  EXPECT_EQ(big.dropped(), 1u);
}

TEST(DestinationOrdersTest, EachOrderFitsOneWriteAndAppliesInStepOnly) {
  DestinationUpdate u;
  u.first = 3;
  u.added = {At("10.0.1.3:443"), At("10.0.1.4:443")};
  u.added_names = {std::string(253, 'a'), "api.example"};
  u.active = {0, 4};
  std::vector<std::string> orders = DestinationOrders(u);
  ASSERT_EQ(orders.size(), 3u);
  DestinationOrderReader reader(3);
  for (size_t i = 0; i + 1 < orders.size(); ++i) {
    std::string inbox = orders[i];
    v1::EngineOrder order;
    bool bad = false;
    ASSERT_TRUE(TakeDelimited(inbox, kMaxEngineOrderBytes, &order, &bad));
    EXPECT_TRUE(reader.Add(order.add_destination()));
  }
  std::string inbox = orders.back();
  v1::EngineOrder active;
  bool bad = false;
  ASSERT_TRUE(TakeDelimited(inbox, kMaxEngineOrderBytes, &active, &bad));
  std::optional<DestinationUpdate> back = reader.Active(active.active_destinations());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->first, 3u);
  EXPECT_EQ(back->added, u.added);
  EXPECT_EQ(back->added_names, u.added_names);
  EXPECT_EQ(back->active, u.active);

  // An order lost on the way (the first add): the reader applies nothing after it.
  DestinationOrderReader skipped(3);
  std::string second = orders[1];
  v1::EngineOrder order;
  ASSERT_TRUE(TakeDelimited(second, kMaxEngineOrderBytes, &order, &bad));
  EXPECT_FALSE(skipped.Add(order.add_destination()));
  EXPECT_FALSE(skipped.Active(active.active_destinations()).has_value());

  // The largest active set still fits one atomic write.
  DestinationUpdate widest;
  for (uint32_t i = 0; i < kMaxDestinations; ++i) widest.active.push_back(i);
  EXPECT_LE(DestinationOrders(widest).back().size(), kMaxEngineOrderBytes);
}

TEST(DestinationUpdateTest, AnUpdateMustFitTheTable) {
  DestinationUpdate u{3, {At("10.0.1.3:443")}, {"api.example"}, {0, 3}};
  EXPECT_TRUE(UpdateFits(u, 3, AF_INET));
  EXPECT_FALSE(UpdateFits(u, 2, AF_INET));   // out of step
  EXPECT_FALSE(UpdateFits(u, 3, AF_INET6));  // another family
  DestinationUpdate past = u;
  past.active = {4};
  EXPECT_FALSE(UpdateFits(past, 3, AF_INET));
  DestinationUpdate none = u;
  none.active.clear();
  EXPECT_FALSE(UpdateFits(none, 3, AF_INET));
  DestinationUpdate unnamed = u;
  unnamed.added_names.clear();
  EXPECT_FALSE(UpdateFits(unnamed, 3, AF_INET));
}

// Two targets on loopback; the run starts on the first, and an update moves every new connection
// to the second: the first target's accept count stops where it was shortly after the update.
class MoveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* listen : {"127.0.0.1:0", "127.0.0.2:0"}) {
      TargetParams t;
      t.listen = {At(listen)};
      absl::StatusOr<std::unique_ptr<TargetServer>> target = TargetServer::Create(t);
      ASSERT_TRUE(target.ok()) << target.status();
      (*target)->Start();
      targets_.push_back(*std::move(target));
    }
  }
  EngineParams Params() const {
    EngineParams p;
    p.targets = {targets_[0]->addresses()[0]};
    p.target_names = {"first.example"};
    p.rate = 300;
    p.max_in_flight = 300;
    p.duration = absl::Seconds(5);
    return p;
  }
  // Moves `engine` to the second target after a second; the first's accepts after the move
  // settled (the change applies at each worker's next loop pass), and the second's.
  void MoveAndCheck(ShardEngine& engine) {
    engine.Start();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ASSERT_TRUE(engine.UpdateDestinations(
        DestinationUpdate{1, {targets_[1]->addresses()[0]}, {"first.example"}, {1}}));
    EXPECT_FALSE(engine.UpdateDestinations(  // out of step now: refused
        DestinationUpdate{1, {targets_[1]->addresses()[0]}, {"first.example"}, {1}}));
    // Each worker (and engine process) takes the change at its loop's next pass, which a busy
    // machine can hold off: settled once the first's accepts stood still for 300 ms while the
    // second's grew, read every 100 ms for the rest of the run.
    uint64_t first_after_move = targets_[0]->Counters().accepted;
    uint64_t second_then = targets_[1]->Counters().accepted;
    bool settled = false;
    for (int still = 0, i = 0; i < 30 && !settled; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const uint64_t first = targets_[0]->Counters().accepted;
      still = first == first_after_move ? still + 1 : 0;
      first_after_move = first;
      settled = still >= 3 && targets_[1]->Counters().accepted > second_then;
      if (still == 0) second_then = targets_[1]->Counters().accepted;
    }
    EXPECT_TRUE(settled) << "the first target still accepted new connections 3 s after the move";
    EngineSnapshot s = engine.Wait();
    // No connection failed: any that did, by phase and code.
    s.Total().ForEachFailure([](Phase phase, int code, uint64_t count) {
      ADD_FAILURE() << count << " failed in phase " << static_cast<int>(phase) << ", code " << code;
    });
    EXPECT_EQ(targets_[0]->Counters().accepted, first_after_move);
    EXPECT_GT(first_after_move, 0u);
    EXPECT_GT(targets_[1]->Counters().accepted, 0u);
    EXPECT_EQ(targets_[0]->Counters().accepted + targets_[1]->Counters().accepted,
              s.Total().succeeded);
  }
  std::vector<std::unique_ptr<TargetServer>> targets_;
};

TEST_F(MoveTest, AnEngineMovesItsNewConnections) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(Params());
  ASSERT_TRUE(engine.ok()) << engine.status();
  MoveAndCheck(**engine);
}

TEST_F(MoveTest, EngineProcessesMoveTheirNewConnections) {
  absl::StatusOr<std::unique_ptr<EngineProcesses>> group =
      EngineProcesses::Create(Params(), 2, testing::BinaryPath("churnlab-churn"));
  ASSERT_TRUE(group.ok()) << group.status();
  MoveAndCheck(**group);
}

}  // namespace
}  // namespace churnlab
