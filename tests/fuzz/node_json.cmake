# libFuzzer target for the WebSocket JSON codec (broker/protocol/client_json.h): DecodeFrame on
# arbitrary bytes, with round-trip and encoder invariants. Seeds: corpus/client_json_fuzz.
chorus_fuzzer(client_json_fuzz)
target_link_libraries(client_json_fuzz PRIVATE chorus::broker_protocol)
# scripts/fuzz-smoke.sh runs every target on build/fuzz/corpus/<target> as its working corpus.
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/corpus/client_json_fuzz)
