// The channel -> partition hash (docs/cluster.md §4.1, C-5): test vectors shared with the doc.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "cluster/partition.h"

namespace chorus::cluster {
namespace {

struct Vector {
  const char* channel;
  uint64_t hash;
  uint32_t mod256;
  uint32_t mod64;
};

// The same table as docs/cluster.md §4.1. Changing the hash breaks every deployed cluster.
const Vector kVectors[] = {
    {"", 0xcbf29ce484222325ULL, 37, 37},
    {"a", 0xaf63dc4c8601ec8cULL, 140, 12},
    {"chat", 0xf2a38d910b5b348bULL, 139, 11},
    {"news:sport", 0xd6d5e7f26359b206ULL, 6, 6},
    {"sync:alice", 0x39c554ad5d03cfc8ULL, 200, 8},
    {"chat:room#42", 0xd638b7710b2da393ULL, 147, 19},
    {"\xc3\xa9t\xc3\xa9", 0x009a8f0e88b51857ULL, 87, 23},
};

TEST(ClusterPartition, C5_TestVectorsMatchTheDocument) {
  for (const Vector& v : kVectors) {
    EXPECT_EQ(Fnv1a64(v.channel), v.hash) << v.channel;
    EXPECT_EQ(PartitionOf(v.channel, 256), v.mod256) << v.channel;
    EXPECT_EQ(PartitionOf(v.channel, 64), v.mod64) << v.channel;
  }
}

TEST(ClusterPartition, C5_UsableAtCompileTime) {
  static_assert(PartitionOf("chat", 256) == 139);
  static_assert(Fnv1a64("") == 0xcbf29ce484222325ULL);
}

TEST(ClusterPartition, C5_SpreadsTypicalChannelNamesEvenly) {
  // The figures quoted in docs/cluster.md §4.1: every partition within ±10 % of the mean.
  for (const char* prefix : {"chan:", "user#", "sync:user"}) {
    std::map<uint32_t, int> count;
    for (int i = 0; i < 100000; ++i) {
      ++count[PartitionOf(prefix + std::to_string(i), kDefaultPartitionCount)];
    }
    ASSERT_EQ(count.size(), kDefaultPartitionCount) << prefix;
    const double mean = 100000.0 / kDefaultPartitionCount;
    for (const auto& [p, n] : count) {
      EXPECT_GT(n, mean * 0.9) << prefix << " partition " << p;
      EXPECT_LT(n, mean * 1.1) << prefix << " partition " << p;
    }
  }
}

// The one subtree -> partition function (backups filter their primaries' subtrees with it):
// `c.<X>` is channel X with the sink's escaping undone, `s.<u>` is `sync:<u>`, anything else
// (and a hashed `c#` name, an unknown escape) has none.
TEST(ClusterPartition, PartitionOfSubtreeInvertsTheChannelSubtreeNames) {
  EXPECT_EQ(ChannelOfSubtree("c.chat"), "chat");
  EXPECT_EQ(ChannelOfSubtree("c.a%2Fb%25c"), "a/b%c");
  EXPECT_EQ(ChannelOfSubtree("s.alice"), "sync:alice");
  EXPECT_EQ(ChannelOfSubtree("c#0123456789abcdef"), std::nullopt);
  EXPECT_EQ(ChannelOfSubtree("c.bad%41"), std::nullopt);
  EXPECT_EQ(ChannelOfSubtree("x.chat"), std::nullopt);
  EXPECT_EQ(PartitionOfSubtree("c.chat", 256), PartitionOf("chat", 256));
  EXPECT_EQ(PartitionOfSubtree("c.chat", 256), 139u);   // the C-5 vector
  EXPECT_EQ(PartitionOfSubtree("s.alice", 256), 200u);  // as sync:alice
  EXPECT_EQ(PartitionOfSubtree("c.chat", 0), std::nullopt);
}

}  // namespace
}  // namespace chorus::cluster
