// The map codec (map_codec.h): every command and a snapshot round-trip; malformed input is an
// error value, never an exception.
#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <random>

#include "cluster/map_codec.h"

namespace chorus::cluster {
namespace {

std::vector<Command> AllCommands() {
  return {
      Bootstrap{256, 3},      AddMember{7, 123456789, {"tcp://a:1", "tcp://a:2", "127.0.0.1:9001"}},
      MarkDead{7, 123456789}, SetLeaving{7},
      RemoveMember{7},        AssignPartition{255, 9, {7, 8}},
      PromoteBackup{1, 2, 8}, SetInSync{1, 3, {8, 7}},
      AddReplica{1, 4, 9},    RemoveReplica{1, 5, 9},
      BeginHandoff{1, 6, 7},  CompleteHandoff{1, 7, 7},
      CancelHandoff{1, 8}};
}

TEST(ClusterMapCodec, EveryCommandRoundTrips) {
  for (const Command& c : AllCommands()) {
    auto d = DecodeCommand(EncodeCommand(c));
    ASSERT_TRUE(d.ok()) << c;
    EXPECT_EQ(*d, c);
  }
}

TEST(ClusterMapCodec, SnapshotRoundTrips) {
  ClusterMap map;
  ASSERT_TRUE(map.Apply(Bootstrap{8, 2}).ok());
  for (MemberId id : {1, 2, 3}) ASSERT_TRUE(map.Apply(AddMember{id, 5, {"c", "a", "r"}}).ok());
  ASSERT_TRUE(map.Apply(AssignPartition{3, 0, {2, 3}}).ok());
  ASSERT_TRUE(map.Apply(SetInSync{3, 1, {2, 3}}).ok());
  ASSERT_TRUE(map.Apply(BeginHandoff{3, 2, 3}).ok());
  ASSERT_TRUE(map.Apply(MarkDead{1, 5}).ok());
  auto d = DecodeMap(EncodeMap(map));
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(*d, map);
  EXPECT_EQ(EncodeMap(*d), EncodeMap(map));
  auto empty = DecodeMap(EncodeMap(ClusterMap{}));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, ClusterMap{});
}

TEST(ClusterMapCodec, UnknownCodeIsNotMalformed) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(2);
  pk.pack_uint8(200);
  pk.pack_uint8(1);
  auto d = DecodeCommand(std::string_view(buf.data(), buf.size()));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error(), make_error_code(Errc::kUnknownCommand));
}

TEST(ClusterMapCodec, MalformedInputIsAnError) {
  auto malformed = [](std::string_view bytes) {
    auto d = DecodeCommand(bytes);
    return !d.ok() && d.error() == make_error_code(Errc::kMalformed);
  };
  EXPECT_TRUE(malformed(""));
  EXPECT_TRUE(malformed("\x91"));           // array of 1 with nothing following
  EXPECT_TRUE(malformed("\x92\x03\xa1x"));  // MarkDead with a string id
  EXPECT_TRUE(malformed("\x93\x03\x01"));   // too few elements
  std::string ok = EncodeCommand(MarkDead{1, 2});
  EXPECT_TRUE(malformed(ok + "x")) << "trailing bytes";
  // Random mutations never crash and never throw.
  std::mt19937 rng(7);
  for (const Command& c : AllCommands()) {
    std::string bytes = EncodeCommand(c);
    for (int i = 0; i < 500; ++i) {
      std::string m = bytes;
      m[rng() % m.size()] = static_cast<char>(rng());
      (void)DecodeCommand(m);
      (void)DecodeMap(m);
    }
  }
  EXPECT_FALSE(DecodeMap("\x90").ok());
}

TEST(ClusterMapCodec, SnapshotWithBrokenInvariantsIsRejected) {
  ClusterMap map;
  ASSERT_TRUE(map.Apply(Bootstrap{2, 2}).ok());
  ASSERT_TRUE(map.Apply(AddMember{1, 5, {}}).ok());
  ASSERT_TRUE(map.Apply(AssignPartition{0, 0, {1}}).ok());
  // Forge a partition whose primary is not in sync.
  auto parts = map.partitions();
  parts[0].in_sync.clear();
  auto forged = ClusterMap::FromParts(2, 2, 3, map.members(), parts);
  EXPECT_FALSE(DecodeMap(EncodeMap(forged)).ok());
}

}  // namespace
}  // namespace chorus::cluster
