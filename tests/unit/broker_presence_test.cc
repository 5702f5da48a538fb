// Unit tests for channel presence (broker/core/presence.h): exact join/leave and user-level
// events, O(1) stats, stable cursor paging.
#include "broker/core/presence.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace chorus::broker {
namespace {

using Events = std::vector<PresenceEvent>;
using T = PresenceEventType;

PresenceEntry E(std::string client, std::string user, std::string conn_info = "",
                std::string chan_info = "") {
  return PresenceEntry{std::move(client), std::move(user), std::move(conn_info),
                       std::move(chan_info)};
}

std::vector<std::string> Clients(const PresencePage& page) {
  std::vector<std::string> out;
  for (const auto& e : page.entries) out.push_back(e.client);
  return out;
}

using Names = std::vector<std::string>;

TEST(BrokerChannelPresence, FirstConnectionOfAUserJoinsTheUser) {
  ChannelPresence p;
  const PresenceEntry c1 = E("c1", "u1", "{\"n\":1}", "{\"ch\":1}");
  EXPECT_EQ(p.Add(c1), (Events{{T::kJoin, c1}, {T::kUserJoin, c1}}));
  const PresenceEntry c2 = E("c2", "u1");
  EXPECT_EQ(p.Add(c2), (Events{{T::kJoin, c2}}));
  const PresenceEntry c3 = E("c3", "u2");
  EXPECT_EQ(p.Add(c3), (Events{{T::kJoin, c3}, {T::kUserJoin, c3}}));
  EXPECT_EQ(p.Stats(), (PresenceStats{3, 2}));
  EXPECT_EQ(p.ConnectionsOf("u1"), 2u);
  EXPECT_EQ(p.ConnectionsOf("nobody"), 0u);
}

TEST(BrokerChannelPresence, LastConnectionOfAUserLeavesTheUser) {
  ChannelPresence p;
  const PresenceEntry c1 = E("c1", "u1", "ci1");
  const PresenceEntry c2 = E("c2", "u1", "ci2");
  (void)p.Add(c1);
  (void)p.Add(c2);
  EXPECT_EQ(p.Remove("c1"), (Events{{T::kLeave, c1}}));
  EXPECT_EQ(p.Stats(), (PresenceStats{1, 1}));
  EXPECT_EQ(p.Remove("c2"), (Events{{T::kLeave, c2}, {T::kUserLeave, c2}}));
  EXPECT_EQ(p.Stats(), (PresenceStats{0, 0}));
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.Remove("c2"), Events{});  // already gone
  EXPECT_EQ(p.Remove("never"), Events{});
  // The user can come back.
  EXPECT_EQ(p.Add(c1), (Events{{T::kJoin, c1}, {T::kUserJoin, c1}}));
}

TEST(BrokerChannelPresence, DuplicateAddUpdatesInfoWithoutEvents) {
  ChannelPresence p;
  (void)p.Add(E("c1", "u1", "old", "old"));
  EXPECT_EQ(p.Add(E("c1", "u1", "new-conn", "new-chan")), Events{});
  ASSERT_NE(p.Find("c1"), nullptr);
  EXPECT_EQ(*p.Find("c1"), E("c1", "u1", "new-conn", "new-chan"));
  EXPECT_EQ(p.Stats(), (PresenceStats{1, 1}));
  EXPECT_EQ(p.Find("c2"), nullptr);
}

TEST(BrokerChannelPresence, AddWithAnotherUserMovesTheConnection) {
  ChannelPresence p;
  const PresenceEntry old_entry = E("c1", "u1");
  const PresenceEntry other = E("c2", "u2");
  (void)p.Add(old_entry);
  (void)p.Add(other);
  const PresenceEntry moved = E("c1", "u2");
  EXPECT_EQ(p.Add(moved), (Events{{T::kLeave, old_entry},
                                  {T::kUserLeave, old_entry},
                                  {T::kJoin, moved}}));  // u2 was already here
  EXPECT_EQ(p.Stats(), (PresenceStats{2, 1}));
  EXPECT_EQ(p.Users(), (Names{"u2"}));
}

TEST(BrokerChannelPresence, AnonymousConnectionsCountAsOneUser) {
  ChannelPresence p;
  const PresenceEntry a1 = E("a1", "");
  const PresenceEntry a2 = E("a2", "");
  EXPECT_EQ(p.Add(a1), (Events{{T::kJoin, a1}, {T::kUserJoin, a1}}));
  EXPECT_EQ(p.Add(a2), (Events{{T::kJoin, a2}}));
  (void)p.Add(E("c1", "u1"));
  EXPECT_EQ(p.Stats(), (PresenceStats{3, 2}));
  EXPECT_EQ(p.Users(), (Names{"", "u1"}));
}

TEST(BrokerChannelPresence, EmptyClientIdIsIgnored) {
  ChannelPresence p;
  EXPECT_EQ(p.Add(E("", "u1")), Events{});
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.Stats(), (PresenceStats{0, 0}));
}

TEST(BrokerChannelPresence, UsersAreSortedAndDistinct) {
  ChannelPresence p;
  (void)p.Add(E("c1", "zed"));
  (void)p.Add(E("c2", "amy"));
  (void)p.Add(E("c3", "zed"));
  (void)p.Add(E("c4", "bob"));
  EXPECT_EQ(p.Users(), (Names{"amy", "bob", "zed"}));
  (void)p.Remove("c2");
  EXPECT_EQ(p.Users(), (Names{"bob", "zed"}));
}

TEST(BrokerChannelPresence, PagesInClientIdOrder) {
  ChannelPresence p;
  for (const char* c : {"c5", "c3", "c1", "c4", "c2"}) (void)p.Add(E(c, "u"));
  PresencePage page = p.Page("", 2);
  EXPECT_EQ(Clients(page), (Names{"c1", "c2"}));
  EXPECT_EQ(page.next_cursor, "c2");
  page = p.Page(page.next_cursor, 2);
  EXPECT_EQ(Clients(page), (Names{"c3", "c4"}));
  EXPECT_EQ(page.next_cursor, "c4");
  page = p.Page(page.next_cursor, 2);
  EXPECT_EQ(Clients(page), (Names{"c5"}));
  EXPECT_EQ(page.next_cursor, "");
  EXPECT_EQ(page.entries[0], E("c5", "u"));
}

TEST(BrokerChannelPresence, LastFullPageHasNoCursor) {
  ChannelPresence p;
  for (const char* c : {"a", "b", "c", "d"}) (void)p.Add(E(c, "u"));
  PresencePage page = p.Page("b", 2);
  EXPECT_EQ(Clients(page), (Names{"c", "d"}));
  EXPECT_EQ(page.next_cursor, "");  // no empty trailing page
  page = p.Page("", 4);
  EXPECT_EQ(page.entries.size(), 4u);
  EXPECT_EQ(page.next_cursor, "");
  EXPECT_TRUE(ChannelPresence().Page("", 10).entries.empty());
  EXPECT_EQ(ChannelPresence().Page("", 10).next_cursor, "");
}

TEST(BrokerChannelPresence, ZeroLimitReturnsOneEntry) {
  ChannelPresence p;
  (void)p.Add(E("a", "u"));
  (void)p.Add(E("b", "u"));
  PresencePage page = p.Page("", 0);
  EXPECT_EQ(Clients(page), (Names{"a"}));
  EXPECT_EQ(page.next_cursor, "a");
}

TEST(BrokerChannelPresence, PagingIsStableAcrossInsertsAndRemovals) {
  ChannelPresence p;
  for (const char* c : {"b", "d", "f", "h", "j"}) (void)p.Add(E(c, "u"));
  PresencePage page = p.Page("", 2);
  EXPECT_EQ(Clients(page), (Names{"b", "d"}));
  // Between pages: one added before the cursor, one after it, the cursor itself removed,
  // one not yet returned removed.
  (void)p.Add(E("a", "u"));
  (void)p.Add(E("e", "u"));
  (void)p.Remove("d");
  (void)p.Remove("h");
  page = p.Page(page.next_cursor, 2);
  EXPECT_EQ(Clients(page), (Names{"e", "f"}));
  EXPECT_EQ(page.next_cursor, "f");
  (void)p.Add(E("g", "u"));
  page = p.Page(page.next_cursor, 2);
  EXPECT_EQ(Clients(page), (Names{"g", "j"}));
  EXPECT_EQ(page.next_cursor, "");
}

TEST(BrokerChannelPresence, FullIterationReturnsEveryStableEntryOnce) {
  ChannelPresence p;
  std::set<std::string> stable;
  for (int i = 0; i < 100; ++i) {
    const std::string c = "c" + std::to_string(1000 + i * 2);
    (void)p.Add(E(c, "u" + std::to_string(i % 7)));
    stable.insert(c);
  }
  EXPECT_EQ(p.Stats(), (PresenceStats{100, 7}));
  std::vector<std::string> seen;
  std::string cursor;
  int round = 0;
  do {
    PresencePage page = p.Page(cursor, 7);
    for (const auto& e : page.entries) seen.push_back(e.client);
    cursor = page.next_cursor;
    // Churn between pages: odd ids come and go, never the stable ones.
    const std::string churn = "c" + std::to_string(1001 + round * 6);
    (void)p.Add(E(churn, "x"));
    if (round > 0) (void)p.Remove("c" + std::to_string(1001 + (round - 1) * 6));
    ++round;
  } while (!cursor.empty());
  std::set<std::string> stable_seen;
  for (const auto& c : seen) {
    if (stable.count(c)) {
      EXPECT_TRUE(stable_seen.insert(c).second) << "duplicate " << c;
    }
  }
  EXPECT_EQ(stable_seen, stable);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]);
}

}  // namespace
}  // namespace chorus::broker
