// A channel subtree's snapshot as a follower decodes it (broker/node/src/channel_records.h,
// docs/cluster.md §16.11): the run up to `top`, and the publications written after that `top`
// (a snapshot taken between an `h/<slot>` and the `top` that confirms it), never an earlier
// line's leftovers in the slots.
#include <gtest/gtest.h>

#include <sstream>

#include <msgpack.hpp>

#include "channel_records.h"

namespace chorus::broker::node {
namespace {

std::string TopBytes(uint64_t offset) {
  std::stringstream out;
  msgpack::packer<std::stringstream> pk(out);
  pk.pack_map(3);
  pk.pack(std::string("n"));
  pk.pack(std::string("chat"));
  pk.pack(std::string("e"));
  pk.pack(std::string("EPOCH"));
  pk.pack(std::string("o"));
  pk.pack(offset);
  return out.str();
}

std::string PubBytes(uint64_t offset) {
  std::stringstream out;
  msgpack::packer<std::stringstream> pk(out);
  pk.pack_map(3);
  pk.pack(std::string("o"));
  pk.pack(offset);
  pk.pack(std::string("t"));
  pk.pack(int64_t{1000});
  pk.pack(std::string("d"));
  pk.pack("p" + std::to_string(offset));
  return out.str();
}

chp::Record Rec(std::string key, std::string value, uint64_t seq) {
  chp::Record r;
  r.key = "c.chat/" + key;
  r.value = std::move(value);
  r.seq = seq;
  return r;
}

std::vector<uint64_t> Offsets(const std::vector<Publication>& pubs) {
  std::vector<uint64_t> out;
  for (const Publication& p : pubs) out.push_back(p.offset);
  return out;
}

TEST(ChannelRecords, SnapshotBetweenAPublicationAndItsTopKeepsThePublication) {
  // h/1..h/3 confirmed by top 3 (seq 7); h/4 and h/5 written after it, their `top` not yet.
  const std::vector<chp::Record> records = {Rec("h/1", PubBytes(1), 2), Rec("h/2", PubBytes(2), 4),
                                            Rec("h/3", PubBytes(3), 6), Rec("top", TopBytes(3), 7),
                                            Rec("h/4", PubBytes(4), 8), Rec("h/5", PubBytes(5), 9)};
  ChannelSnapshot snap = DecodeChannelSnapshot("c.chat", records);
  ASSERT_TRUE(snap.has_top);
  EXPECT_EQ(snap.top.top.offset, 3u);
  EXPECT_EQ(Offsets(snap.run), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(Offsets(snap.ahead), (std::vector<uint64_t>{4, 5}));
}

TEST(ChannelRecords, AnEarlierLinesLeftoverAboveTopIsNotAhead) {
  // The channel's line started again (top 2): slot h/3 still holds the earlier line's offset 3,
  // written before the current `top`.
  const std::vector<chp::Record> records = {Rec("h/3", PubBytes(3), 3), Rec("h/1", PubBytes(1), 5),
                                            Rec("h/2", PubBytes(2), 6), Rec("top", TopBytes(2), 7)};
  ChannelSnapshot snap = DecodeChannelSnapshot("c.chat", records);
  ASSERT_TRUE(snap.has_top);
  EXPECT_EQ(Offsets(snap.run), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(snap.ahead.empty());
}

TEST(ChannelRecords, AheadStopsAtTheFirstGap) {
  const std::vector<chp::Record> records = {Rec("h/1", PubBytes(1), 2), Rec("top", TopBytes(1), 3),
                                            Rec("h/3", PubBytes(3), 4)};
  ChannelSnapshot snap = DecodeChannelSnapshot("c.chat", records);
  EXPECT_EQ(Offsets(snap.run), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(snap.ahead.empty());
}

}  // namespace
}  // namespace chorus::broker::node
