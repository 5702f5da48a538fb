// Unit tests for the server's hashmap (chp/store.h): sequences, epochs, TTLs, limits, resume.
#include "chp/store.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace chorus::chp {
namespace {

// A store whose epochs are "e1", "e2", ... in creation order.
struct Fixture {
  explicit Fixture(StoreOptions o = {}) : store(WithCounter(std::move(o), &epochs)) {}
  static StoreOptions WithCounter(StoreOptions o, int* n) {
    o.new_epoch = [n] { return "e" + std::to_string(++*n); };
    return o;
  }
  Store::Applied Set(std::string_view st, std::string_view k, std::string_view v, uint64_t ttl = 0,
                     int64_t now = 0) {
    auto r = store.Apply(st, k, Op::kSet, v, ttl, now);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : Store::Applied{};
  }
  Store::Applied Del(std::string_view st, std::string_view k, int64_t now = 0) {
    auto r = store.Apply(st, k, Op::kDelete, "", 0, now);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : Store::Applied{};
  }
  struct Expired {
    std::string subtree, epoch;
    Record record;
    bool operator==(const Expired&) const = default;
  };
  std::vector<Expired> Expire(int64_t now) {
    std::vector<Expired> out;
    const size_t n = store.Expire(now, [&](const Change& c) {
      out.push_back({std::string(c.subtree), std::string(c.epoch), *c.record});
    });
    EXPECT_EQ(n, out.size());
    return out;
  }
  bool Has(std::string_view st, const std::string& k) const {
    const Subtree* s = store.Find(st);
    return s != nullptr && s->entries.count(k) == 1;
  }

  int epochs = 0;
  Store store;
};

std::vector<uint64_t> Seqs(const std::vector<Record>& rs) {
  std::vector<uint64_t> out;
  for (const Record& r : rs) out.push_back(r.seq);
  return out;
}

TEST(Store, SequencesPerSubtree) {
  Fixture f;
  auto a1 = f.Set("a", "k1", "v1");
  EXPECT_TRUE(a1.changed);
  EXPECT_EQ(a1.position, (Position{"e1", 1}));
  EXPECT_EQ(a1.record, (Record{"k1", Op::kSet, "v1", 0, 1}));
  EXPECT_EQ(f.Set("a", "k2", "v2").position, (Position{"e1", 2}));
  EXPECT_EQ(f.Set("b", "k1", "x").position, (Position{"e2", 1}));
  EXPECT_EQ(f.Set("a", "k1", "v3").position, (Position{"e1", 3}));
  EXPECT_EQ(f.Set("b", "k9", "y").position, (Position{"e2", 2}));
  EXPECT_EQ(f.store.PositionOf("a"), (Position{"e1", 3}));
  EXPECT_EQ(f.store.PositionOf("b"), (Position{"e2", 2}));
  EXPECT_EQ(f.store.PositionOf("c"), Position{});
  EXPECT_EQ(f.store.Find("c"), nullptr);
  EXPECT_EQ(f.epochs, 2);  // one epoch per subtree, at creation only
  const Subtree* a = f.store.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->entries.at("k1").value, "v3");
  EXPECT_EQ(a->entries.at("k1").seq, 3u);
  EXPECT_EQ(a->entries.at("k2").seq, 2u);
  EXPECT_EQ(f.store.subtrees().size(), 2u);
}

TEST(Store, DefaultEpochIsRandomHex) {
  Store s;
  auto r = s.Apply("a", "k", Op::kSet, "v", 0, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->position.epoch.size(), 16u);
  EXPECT_EQ(r->position.epoch.find_first_not_of("0123456789abcdef"), std::string::npos);
  auto r2 = s.Apply("b", "k", Op::kSet, "v", 0, 0);
  ASSERT_TRUE(r2.ok());
  EXPECT_NE(r2->position.epoch, r->position.epoch);
}

TEST(Store, DeleteMissingKeyChangesNothing) {
  Fixture f;
  auto none = f.Del("a", "k");
  EXPECT_FALSE(none.changed);
  EXPECT_EQ(none.position, Position{});
  EXPECT_EQ(f.store.Find("a"), nullptr);  // a delete does not create the subtree
  EXPECT_EQ(f.epochs, 0);

  f.Set("a", "k", "v");
  auto miss = f.Del("a", "other");
  EXPECT_FALSE(miss.changed);
  EXPECT_EQ(miss.position, (Position{"e1", 1}));
  EXPECT_EQ(f.store.Find("a")->backlog.size(), 1u);

  auto del = f.Del("a", "k");
  EXPECT_TRUE(del.changed);
  EXPECT_EQ(del.position, (Position{"e1", 2}));
  EXPECT_EQ(del.record, (Record{"k", Op::kDelete, "", 0, 2}));
  EXPECT_FALSE(f.Has("a", "k"));
  EXPECT_FALSE(f.Del("a", "k").changed);
  EXPECT_EQ(f.Set("a", "k", "again").position, (Position{"e1", 3}));
  // The subtree stays (empty) after its last key is deleted: its epoch and sequence go on.
  f.Del("a", "k");
  EXPECT_EQ(f.store.PositionOf("a"), (Position{"e1", 4}));
  EXPECT_EQ(f.Set("a", "z", "1").position, (Position{"e1", 5}));
  EXPECT_EQ(f.epochs, 1);
}

TEST(Store, RejectedOps) {
  Fixture f;
  auto bad_ttl = f.store.Apply("a", "k", Op::kSet, "v", kMaxTtlMs + 1, 0);
  ASSERT_FALSE(bad_ttl.ok());
  EXPECT_EQ(bad_ttl.error(), Errc::kBadTtl);
  EXPECT_EQ(f.store.Find("a"), nullptr);
  auto max_ttl = f.store.Apply("a", "k", Op::kSet, "v", kMaxTtlMs, 0);
  ASSERT_TRUE(max_ttl.ok());
  EXPECT_EQ(f.store.NextExpiry(), static_cast<int64_t>(kMaxTtlMs));
  auto expire_op = f.store.Apply("a", "k", Op::kExpire, "", 0, 0);
  ASSERT_FALSE(expire_op.ok());
  EXPECT_EQ(expire_op.error(), Errc::kMalformed);
  EXPECT_TRUE(f.Has("a", "k"));
  EXPECT_EQ(f.store.PositionOf("a"), (Position{"e1", 1}));
}

TEST(Store, TtlExpiresAtExactBoundary) {
  Fixture f;
  f.Set("a", "k", "v", 100, 1000);
  f.Set("a", "keep", "v");
  EXPECT_EQ(f.store.NextExpiry(), 1100);
  const StoredEntry& e = f.store.Find("a")->entries.at("k");
  EXPECT_EQ(Store::RemainingTtl(e, 1000), 100u);
  EXPECT_EQ(Store::RemainingTtl(e, 1099), 1u);
  EXPECT_EQ(Store::RemainingTtl(e, 1100), 1u);  // due but not yet expired: never 0 ("no TTL")
  EXPECT_EQ(Store::RemainingTtl(f.store.Find("a")->entries.at("keep"), 1000), 0u);

  EXPECT_TRUE(f.Expire(1099).empty());
  EXPECT_TRUE(f.Has("a", "k"));
  EXPECT_EQ(f.store.key_count(), 2u);
  auto ex = f.Expire(1100);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0], (Fixture::Expired{"a", "e1", {"k", Op::kExpire, "", 0, 3}}));
  EXPECT_FALSE(f.Has("a", "k"));
  EXPECT_TRUE(f.Has("a", "keep"));
  EXPECT_EQ(f.store.key_count(), 1u);
  EXPECT_EQ(f.store.PositionOf("a"), (Position{"e1", 3}));
  EXPECT_EQ(f.store.Find("a")->backlog.back(), (Record{"k", Op::kExpire, "", 0, 3}));
  EXPECT_EQ(f.store.NextExpiry(), -1);
  EXPECT_TRUE(f.Expire(5000).empty());
}

TEST(Store, ExpiryCallbackOrder) {
  Fixture f;
  f.Set("a", "k300", "v", 300, 0);  // a:1
  f.Set("b", "k100", "v", 100, 0);  // b:1
  f.Set("a", "k200", "v", 200, 0);  // a:2
  f.Set("a", "k150", "v", 150, 0);  // a:3
  f.Set("a", "k999", "v", 999, 0);  // a:4
  std::vector<Fixture::Expired> want = {
      {"b", "e2", {"k100", Op::kExpire, "", 0, 2}},
      {"a", "e1", {"k150", Op::kExpire, "", 0, 5}},
      {"a", "e1", {"k200", Op::kExpire, "", 0, 6}},
      {"a", "e1", {"k300", Op::kExpire, "", 0, 7}},
  };
  EXPECT_EQ(f.Expire(300), want);
  EXPECT_EQ(f.store.NextExpiry(), 999);
  EXPECT_EQ(f.store.key_count(), 1u);
  // Expire without a callback still removes.
  EXPECT_EQ(f.store.Expire(999, nullptr), 1u);
  EXPECT_EQ(f.store.key_count(), 0u);
  EXPECT_EQ(f.store.PositionOf("a"), (Position{"e1", 8}));
}

TEST(Store, RewriteWithoutTtlCancelsExpiry) {
  Fixture f;
  f.Set("a", "k", "v1", 100, 0);
  f.Set("a", "k", "v2", 0, 50);
  EXPECT_EQ(f.store.Find("a")->entries.at("k").expires_at_ms, 0);
  EXPECT_TRUE(f.Expire(100).empty());
  EXPECT_TRUE(f.Expire(1'000'000).empty());
  EXPECT_EQ(f.store.Find("a")->entries.at("k").value, "v2");
  EXPECT_EQ(f.store.NextExpiry(), -1);
}

TEST(Store, RewriteWithLongerTtlMovesExpiry) {
  Fixture f;
  f.Set("a", "k", "v1", 100, 0);
  f.Set("a", "k", "v2", 500, 50);  // now due at 550
  EXPECT_TRUE(f.Expire(100).empty());
  EXPECT_TRUE(f.Expire(549).empty());
  EXPECT_EQ(f.store.Find("a")->entries.at("k").value, "v2");
  auto ex = f.Expire(550);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].record.seq, 3u);
}

TEST(Store, RewriteWithShorterTtlExpiresOnce) {
  Fixture f;
  f.Set("a", "k", "v1", 500, 0);
  f.Set("a", "k", "v2", 100, 0);
  EXPECT_EQ(f.Expire(100).size(), 1u);
  EXPECT_TRUE(f.Expire(500).empty());
  EXPECT_EQ(f.store.PositionOf("a"), (Position{"e1", 3}));
}

TEST(Store, DeletedOrRecreatedKeyIgnoresOldExpiry) {
  Fixture f;
  f.Set("a", "k", "v", 100, 0);
  f.Del("a", "k");
  EXPECT_TRUE(f.Expire(100).empty());
  f.Set("a", "j", "v", 100, 0);
  f.Del("a", "j");
  f.Set("a", "j", "new", 0, 10);  // recreated without TTL
  EXPECT_TRUE(f.Expire(200).empty());
  EXPECT_TRUE(f.Has("a", "j"));
  EXPECT_EQ(f.store.key_count(), 1u);
}

TEST(Store, MaxKeys) {
  StoreOptions o;
  o.max_keys = 2;
  Fixture f(o);
  f.Set("a", "k1", "v");
  f.Set("b", "k2", "v");
  auto full = f.store.Apply("a", "k3", Op::kSet, "v", 0, 0);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error(), Errc::kFull);
  auto full_new_subtree = f.store.Apply("c", "k", Op::kSet, "v", 0, 0);
  ASSERT_FALSE(full_new_subtree.ok());
  EXPECT_EQ(full_new_subtree.error(), Errc::kFull);
  EXPECT_EQ(f.store.Find("c"), nullptr);  // a refused set creates no subtree
  EXPECT_EQ(f.epochs, 2);
  // Overwriting an existing key at the limit works.
  EXPECT_EQ(f.Set("a", "k1", "v2").position, (Position{"e1", 2}));
  EXPECT_EQ(f.store.PositionOf("a"), (Position{"e1", 2}));  // the refused set used no seq
  EXPECT_EQ(f.store.key_count(), 2u);
  // Freeing a key (delete or expiry) makes room again.
  f.Del("a", "k1");
  f.Set("a", "k3", "v", 10, 0);
  EXPECT_FALSE(f.store.Apply("a", "k4", Op::kSet, "v", 0, 0).ok());
  EXPECT_EQ(f.Expire(10).size(), 1u);
  f.Set("a", "k4", "v");
  EXPECT_EQ(f.store.key_count(), 2u);
}

TEST(Store, KeyCountAndValueBytes) {
  Fixture f;
  f.Set("a", "k1", "abc");
  f.Set("a", "k2", "de", 10, 0);
  f.Set("b", "k1", "xyz");
  EXPECT_EQ(f.store.key_count(), 3u);
  EXPECT_EQ(f.store.Find("a")->value_bytes, 5u);
  f.Set("a", "k1", "abcdef");  // overwrite: same count
  EXPECT_EQ(f.store.key_count(), 3u);
  EXPECT_EQ(f.store.Find("a")->value_bytes, 8u);
  f.Del("b", "k1");
  EXPECT_EQ(f.store.key_count(), 2u);
  EXPECT_EQ(f.store.Find("b")->value_bytes, 0u);
  f.Del("b", "missing");
  EXPECT_EQ(f.store.key_count(), 2u);
  f.Expire(10);
  EXPECT_EQ(f.store.key_count(), 1u);
  EXPECT_EQ(f.store.Find("a")->value_bytes, 6u);
}

TEST(Store, ResumeFromBacklog) {
  Fixture f;
  for (int i = 1; i <= 5; ++i) f.Set("a", "k" + std::to_string(i), "v" + std::to_string(i));
  std::vector<Record> out;
  ASSERT_TRUE(f.store.ResumeFrom("a", {"e1", 2}, out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], (Record{"k3", Op::kSet, "v3", 0, 3}));
  EXPECT_EQ(out[1], (Record{"k4", Op::kSet, "v4", 0, 4}));
  EXPECT_EQ(out[2], (Record{"k5", Op::kSet, "v5", 0, 5}));

  out.clear();
  EXPECT_TRUE(f.store.ResumeFrom("a", {"e1", 5}, out));  // up to date
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(f.store.ResumeFrom("a", {"e1", 4}, out));
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{5}));
  out.clear();
  EXPECT_TRUE(f.store.ResumeFrom("a", {"e1", 0}, out));  // the whole history is in the backlog
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  out.clear();
  EXPECT_FALSE(f.store.ResumeFrom("a", {"e1", 6}, out));  // ahead of the server
  EXPECT_FALSE(f.store.ResumeFrom("a", {"e9", 2}, out));  // other epoch
  EXPECT_FALSE(f.store.ResumeFrom("a", {"", 2}, out));
  EXPECT_FALSE(f.store.ResumeFrom("a", {"", 0}, out));
  EXPECT_FALSE(f.store.ResumeFrom("zz", {"e1", 2}, out));
  EXPECT_TRUE(out.empty());

  // Deletes and expiries are part of the stream.
  f.Del("a", "k1");
  f.Set("a", "t", "v", 5, 0);
  f.Expire(5);
  ASSERT_TRUE(f.store.ResumeFrom("a", {"e1", 5}, out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], (Record{"k1", Op::kDelete, "", 0, 6}));
  EXPECT_EQ(out[1], (Record{"t", Op::kSet, "v", 5, 7}));
  EXPECT_EQ(out[2], (Record{"t", Op::kExpire, "", 0, 8}));
}

TEST(Store, ResumeBacklogRecordCap) {
  StoreOptions o;
  o.backlog_records = 3;
  Fixture f(o);
  for (int i = 1; i <= 5; ++i) f.Set("a", "k", std::to_string(i));
  EXPECT_EQ(f.store.Find("a")->backlog.size(), 3u);
  std::vector<Record> out;
  ASSERT_TRUE(f.store.ResumeFrom("a", {"e1", 2}, out));
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{3, 4, 5}));
  out.clear();
  EXPECT_FALSE(f.store.ResumeFrom("a", {"e1", 1}, out));
  EXPECT_FALSE(f.store.ResumeFrom("a", {"e1", 0}, out));
  EXPECT_TRUE(out.empty());
  // Caps are per subtree.
  f.Set("b", "k", "v");
  out.clear();
  EXPECT_TRUE(f.store.ResumeFrom("b", {"e2", 0}, out));
  EXPECT_EQ(out.size(), 1u);
}

TEST(Store, ResumeBacklogByteCap) {
  StoreOptions o;
  o.backlog_bytes = 10;
  Fixture f(o);
  for (int i = 1; i <= 3; ++i) f.Set("a", "k", "vvvv");  // 5 bytes each
  const Subtree* a = f.store.Find("a");
  EXPECT_EQ(a->backlog.size(), 2u);
  EXPECT_EQ(a->backlog_bytes, 10u);
  std::vector<Record> out;
  ASSERT_TRUE(f.store.ResumeFrom("a", {"e1", 1}, out));
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{2, 3}));
  out.clear();
  EXPECT_FALSE(f.store.ResumeFrom("a", {"e1", 0}, out));
  f.Del("a", "k");  // 1 byte: fits with the last record
  EXPECT_EQ(a->backlog.size(), 2u);
  EXPECT_EQ(a->backlog_bytes, 6u);
  // A record bigger than the cap empties the backlog: resume is impossible except at the end.
  f.Set("a", "k", std::string(20, 'x'));
  EXPECT_TRUE(a->backlog.empty());
  EXPECT_EQ(a->backlog_bytes, 0u);
  EXPECT_FALSE(f.store.ResumeFrom("a", {"e1", 4}, out));
  EXPECT_TRUE(f.store.ResumeFrom("a", {"e1", 5}, out));
  EXPECT_TRUE(out.empty());
  f.Set("a", "j", "1");
  ASSERT_TRUE(f.store.ResumeFrom("a", {"e1", 5}, out));
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{6}));
}

// The backlog is a ring reused in place: after many wrap-arounds, mixed with byte-cap pops that
// leave free slots, it still holds exactly the last changes in order, with their own values.
TEST(Store, ResumeBacklogRingKeepsTheLastChangesInOrder) {
  StoreOptions o;
  o.backlog_records = 4;
  o.backlog_bytes = 40;
  Fixture f(o);
  for (int i = 1; i <= 50; ++i) {
    // Every seventh value is large (30 bytes): it pushes older records out by bytes.
    f.Set("a", "k" + std::to_string(i % 3), std::string(i % 7 == 0 ? 29 : 3, 'a' + i % 26));
    const Subtree* a = f.store.Find("a");
    std::vector<Record> out;
    const uint64_t first = a->backlog.front().seq;
    ASSERT_TRUE(f.store.ResumeFrom("a", {"e1", first - 1}, out)) << "after change " << i;
    ASSERT_EQ(out.size(), a->backlog.size());
    size_t bytes = 0;
    for (size_t j = 0; j < out.size(); ++j) {
      const int n = static_cast<int>(first + j);
      EXPECT_EQ(out[j].seq, first + j);
      EXPECT_EQ(out[j].key, "k" + std::to_string(n % 3));
      EXPECT_EQ(out[j].value, std::string(n % 7 == 0 ? 29 : 3, 'a' + n % 26));
      bytes += out[j].key.size() + out[j].value.size();
    }
    EXPECT_EQ(out.back().seq, static_cast<uint64_t>(i));
    EXPECT_LE(out.size(), 4u);
    EXPECT_EQ(bytes, a->backlog_bytes);
    EXPECT_LE(bytes, 40u);
  }
}

// The changed subtrees of a tick (CS-26): each listed once, in the order they first changed,
// at most `max` at a time (the rest on the next take); a dropped one is not listed.
TEST(Store, TakeChangedListsEachChangedSubtreeOnceInOrder) {
  Fixture f;
  f.Set("b", "k", "1");
  f.Set("a", "k", "1");
  f.Set("b", "k", "2");
  f.Set("c", "k", "1");
  f.Set("d", "k", "1");
  ASSERT_TRUE(f.store.Drop("d"));
  std::vector<std::string> out;
  f.store.TakeChanged(2, out);
  EXPECT_EQ(out, (std::vector<std::string>{"b", "a"}));
  f.Set("a", "k", "2");  // changed again after it was taken
  out.clear();
  f.store.TakeChanged(10, out);
  EXPECT_EQ(out, (std::vector<std::string>{"c", "a"}));
  out.clear();
  f.store.TakeChanged(10, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(f.store.changed_count(), 0u);
  f.Del("a", "missing");  // not a change
  f.store.TakeChanged(10, out);
  EXPECT_TRUE(out.empty());
}

// Rewrites TTL keys enough times to trigger CompactExpiries (heap >= 1024 and >= 4x live), with
// old heap entries due *before* the live ones, then checks exactly the right keys expire.
TEST(Store, ManyTtlRewritesCompactAndExpireCorrectly) {
  Fixture f;
  constexpr int kKeys = 150;
  constexpr int kRounds = 30;
  auto due = [](int round, int i) { return round + 10'000 + 1'000 * round + i; };
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kKeys; ++i) {
      const std::string st = i % 2 == 0 ? "even" : "odd";
      const std::string key = "k" + std::to_string(i);
      const bool last = round == kRounds - 1;
      if (last && i % 10 == 0) {
        f.Set(st, key, "forever", 0, round);  // TTL cancelled
      } else if (last && i % 10 == 1) {
        f.Del(st, key, round);
      } else {
        f.Set(st, key, "r" + std::to_string(round), due(round, i) - round, round);
      }
    }
  }
  EXPECT_EQ(f.store.key_count(), static_cast<size_t>(kKeys - kKeys / 10));
  // Nothing is due before the last round's deadlines.
  EXPECT_TRUE(f.Expire(due(kRounds - 1, 0) - 1).empty());
  EXPECT_EQ(f.store.key_count(), static_cast<size_t>(kKeys - kKeys / 10));
  std::map<std::string, uint64_t> last_seq = {{"even", f.store.PositionOf("even").seq},
                                              {"odd", f.store.PositionOf("odd").seq}};
  for (int i = 0; i < kKeys; ++i) {
    auto ex = f.Expire(due(kRounds - 1, i));
    if (i % 10 == 0 || i % 10 == 1) {
      EXPECT_TRUE(ex.empty()) << i;
      continue;
    }
    ASSERT_EQ(ex.size(), 1u) << i;
    const std::string st = i % 2 == 0 ? "even" : "odd";
    EXPECT_EQ(ex[0].subtree, st);
    EXPECT_EQ(ex[0].record.key, "k" + std::to_string(i));
    EXPECT_EQ(ex[0].record.op, Op::kExpire);
    EXPECT_EQ(ex[0].record.seq, ++last_seq[st]);
  }
  EXPECT_EQ(f.store.key_count(), static_cast<size_t>(kKeys / 10));
  for (int i = 0; i < kKeys; i += 10) {
    const Subtree* st = f.store.Find(i % 2 == 0 ? "even" : "odd");
    ASSERT_EQ(st->entries.count("k" + std::to_string(i)), 1u);
    EXPECT_EQ(st->entries.at("k" + std::to_string(i)).value, "forever");
  }
  EXPECT_EQ(f.store.NextExpiry(), -1);
  EXPECT_TRUE(f.Expire(1'000'000'000).empty());
}

// Compaction with many live TTL entries must keep every one of them.
TEST(Store, CompactionKeepsLiveEntries) {
  Fixture f;
  // 300 keys that stay, then one key rewritten 2000 times (each rewrite leaves a stale entry).
  for (int i = 0; i < 300; ++i) f.Set("a", "live" + std::to_string(i), "v", 1'000 + i, 0);
  for (int i = 0; i < 2000; ++i) f.Set("a", "hot", "v", 500 + i, 0);
  // The stale "hot" entries due at 500.. were compacted away; what is left is never later than
  // the earliest live expiry.
  EXPECT_EQ(f.store.NextExpiry(), 1'000);
  EXPECT_TRUE(f.Expire(999).empty());
  auto ex = f.Expire(1'299);
  ASSERT_EQ(ex.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(ex[i].record.key, "live" + std::to_string(i));
  EXPECT_TRUE(f.Has("a", "hot"));
  auto hot = f.Expire(2'499);
  ASSERT_EQ(hot.size(), 1u);
  EXPECT_EQ(hot[0].record.key, "hot");
  EXPECT_EQ(f.store.key_count(), 0u);
}

}  // namespace
}  // namespace chorus::chp
