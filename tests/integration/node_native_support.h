// Shared by the native raw-wire tests (node_native_*_test.cc): a fixture owning one chorusd and
// a zmq context, and small readers of reply frames. GoogleTest only; frames stay raw msgpack.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node_support.h"

namespace chorus::testing {

// The error code of a reply (0 for a result or no reply).
inline uint64_t ErrorCode(const std::optional<Frame>& f) {
  return f ? f->Uint("error.code") : 0;
}

// Connects an insecure session as `user` (with conn info `info` when given); returns its client
// id, or "" after recording a test failure.
inline std::string ConnectAs(RawSession& s, const std::string& user, const std::string& info = "") {
  auto r = info.empty() ? s.Call("connect", P({{"user", user}}))
                        : s.Call("connect", P({{"user", user}, {"info", info}}));
  if (!r || !r->Has("result")) {
    ADD_FAILURE() << "connect as '" << user << "' failed";
    return "";
  }
  return r->Str("result.client");
}

// The `offset` of each publication map in the array at `path`.
inline std::vector<uint64_t> OffsetsOf(const Frame& f, const std::string& path) {
  std::vector<uint64_t> out;
  const msgpack::object* a = f.Get(path);
  if (a == nullptr || a->type != msgpack::type::ARRAY) return out;
  for (uint32_t i = 0; i < a->via.array.size; ++i) {
    const msgpack::object& m = a->via.array.ptr[i];
    for (uint32_t k = 0; m.type == msgpack::type::MAP && k < m.via.map.size; ++k) {
      const auto& kv = m.via.map.ptr[k];
      if (kv.key.type == msgpack::type::STR &&
          std::string(kv.key.via.str.ptr, kv.key.via.str.size) == "offset") {
        out.push_back(kv.val.as<uint64_t>());
      }
    }
  }
  return out;
}

// One chorusd per test (StartNode), stopped at the end with a clean-exit check.
class NodeFixture : public ::testing::Test {
 protected:
  void StartNode(NodeOptions o = {}) {
    node_ = std::make_unique<NodeProcess>(std::move(o));
    ASSERT_TRUE(node_->ready()) << node_->banner();
  }
  void TearDown() override {
    if (node_) {
      EXPECT_TRUE(node_->Stop()) << "chorusd did not exit cleanly";
    }
  }
  RawSession Session(int rcvhwm = 1000) { return RawSession(ctx_, node_->native(), rcvhwm); }

  zmq::context_t ctx_;
  std::unique_ptr<NodeProcess> node_;
};

}  // namespace chorus::testing
