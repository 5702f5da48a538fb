# libFuzzer target for the WebSocket JSON codec (broker/protocol/client_json.h): DecodeFrame on
# arbitrary bytes, with round-trip and encoder invariants. Seeds: corpus/client_json_fuzz.
chorus_fuzzer(client_json_fuzz)
target_link_libraries(client_json_fuzz PRIVATE chorus::broker_protocol)
# scripts/fuzz-smoke.sh runs every target on build/fuzz/corpus/<target> as its working corpus.
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/corpus/client_json_fuzz)

# libFuzzer target for the server API / native JSON entry (broker/protocol/json_depth.h): the
# depth scan against nlohmann's SAX depth, and parse + dump of what passes. Seeds with deep
# nesting: corpus/json_depth_fuzz.
chorus_fuzzer(json_depth_fuzz)
find_package(nlohmann_json REQUIRED)
target_link_libraries(json_depth_fuzz PRIVATE chorus::broker_protocol nlohmann_json::nlohmann_json)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/corpus/json_depth_fuzz)
