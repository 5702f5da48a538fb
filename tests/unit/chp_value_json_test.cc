// chp::MsgpackToJson (the tools' rendering of CHP values): shapes, and bounded output for
// hostile values.
#include "chp/value_json.h"

#include <gtest/gtest.h>

#include <functional>

#include <msgpack.hpp>

namespace {

using chorus::chp::MsgpackToJson;

std::string Pack(const std::function<void(msgpack::packer<msgpack::sbuffer>&)>& fill) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  fill(pk);
  return {buf.data(), buf.size()};
}

TEST(ValueJson, RendersScalarsArraysAndMaps) {
  EXPECT_EQ(MsgpackToJson(Pack([](auto& pk) {
              pk.pack_map(2);
              pk.pack(std::string("a"));
              pk.pack(1);
              pk.pack(std::string("b"));
              pk.pack_array(2);
              pk.pack(true);
              pk.pack_nil();
            })),
            R"({"a":1,"b":[true,null]})");
}

TEST(ValueJson, NonStringKeysAreRenderedAsStrings) {
  EXPECT_EQ(MsgpackToJson(Pack([](auto& pk) {
              pk.pack_map(1);
              pk.pack(7);
              pk.pack(std::string("x"));
            })),
            R"({"7":"x"})");
}

// Found by chp_frame_fuzz: maps used as keys of maps, nested, were escaped once per level, so
// the output doubled with each level (a 250-byte value took more than 15 s and 1 GiB).
TEST(ValueJson, NestedMapKeysStayBounded) {
  const std::string value = Pack([](auto& pk) {
    for (int i = 0; i < 30; ++i) pk.pack_map(1);  // each map's only key is the next map
    pk.pack(std::string("\"quoted\""));
    for (int i = 0; i < 30; ++i) pk.pack_nil();  // the values
  });
  const std::string json = MsgpackToJson(value);
  EXPECT_LT(json.size(), 64 * value.size()) << json.size();
  EXPECT_NE(json.find("$key"), std::string::npos);
}

}  // namespace
