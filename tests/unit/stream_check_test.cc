// The stream checker of the cluster tests (tests/support/stream_check.h): it accepts a good
// stream across reconnects and reports each kind of violation it exists to catch.
#include <gtest/gtest.h>

#include "stream_check.h"

namespace chorus::testing {
namespace {

using E = StreamEvent;

TEST(StreamCheckTest, AGoodStreamAcrossAResumeAndAResetPasses) {
  PayloadTruth truth;
  std::vector<E> s = {E::Subscribed("e1", 10, false), E::Publication(11, "a"),
                      E::Publication(12, "b"),        E::Subscribed("e1", 12, true),
                      E::Publication(13, "c"),        E::Subscribed("e2", 0, false),
                      E::Publication(1, "x")};
  EXPECT_TRUE(CheckStream(s, truth, "s").empty());
  EXPECT_EQ(truth.size(), 4u);
}

TEST(StreamCheckTest, GapsDuplicatesAndReordersAreReported) {
  PayloadTruth truth;
  EXPECT_EQ(
      CheckStream({E::Subscribed("e", 0, false), E::Publication(1, "a"), E::Publication(3, "c")},
                  truth, "gap")
          .size(),
      1u);
  EXPECT_EQ(
      CheckStream({E::Subscribed("e", 0, false), E::Publication(1, "a"), E::Publication(1, "a")},
                  truth, "dup")
          .size(),
      1u);
  EXPECT_EQ(CheckStream({E::Publication(1, "a")}, truth, "nosub").size(), 1u);
}

TEST(StreamCheckTest, ARecoveredResumeMustKeepTheEpochAndPosition) {
  PayloadTruth truth;
  EXPECT_EQ(CheckStream(
                {E::Subscribed("e", 0, false), E::Publication(1, "a"), E::Subscribed("f", 1, true)},
                truth, "epoch")
                .size(),
            1u);
  EXPECT_EQ(CheckStream(
                {E::Subscribed("e", 0, false), E::Publication(1, "a"), E::Subscribed("e", 5, true)},
                truth, "position")
                .size(),
            1u);
}

TEST(StreamCheckTest, OnePayloadPerEpochAndOffsetAcrossStreams) {
  PayloadTruth truth;
  EXPECT_EQ(truth.See("e", 1, "a", "ack"), "");
  EXPECT_TRUE(
      CheckStream({E::Subscribed("e", 0, false), E::Publication(1, "a")}, truth, "one").empty());
  EXPECT_EQ(
      CheckStream({E::Subscribed("e", 0, false), E::Publication(1, "b")}, truth, "two").size(), 1u);
  EXPECT_EQ(truth.See("other", 1, "b", "ack"), "") << "another epoch is another line";
}

}  // namespace
}  // namespace chorus::testing
