# ws_fanout: the WebSocket transport of one real chorusd under load (idle-connection memory,
# fan-out to WebSocket subscribers), driven by the ws_load generator (one Asio thread, the
# client side of RFC 6455 written in ws_load.cc), each phase followed by the same phase against
# the peer nginx + Nchan (nchan_peer.cc; Debian nginx + libnginx-mod-nchan, from
# scripts/install-deps.sh). Smoke size in ctest, peer included: the smoke test fails when
# nginx or the Nchan module is missing.
find_package(Boost 1.74 REQUIRED CONFIG)
find_package(OpenSSL REQUIRED)

add_library(chorus_ws_load STATIC ${CMAKE_CURRENT_SOURCE_DIR}/ws_load.cc)
target_include_directories(chorus_ws_load PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(chorus_ws_load PUBLIC chorus_bench_fanout
                                     PRIVATE Boost::headers OpenSSL::Crypto)
target_compile_definitions(chorus_ws_load PRIVATE BOOST_ASIO_NO_DEPRECATED
                           BOOST_ASIO_DISABLE_BOOST_COROUTINE)
chorus_target_defaults(chorus_ws_load)

add_executable(ws_fanout ws_fanout.cc nchan_fanout.cc nchan_peer.cc http_publisher.cc
                         peer_process.cc)
target_link_libraries(ws_fanout PRIVATE chorus_ws_load chorus_node_test_support CLI11::CLI11)
chorus_target_defaults(ws_fanout)
add_test(NAME ws_fanout_smoke COMMAND ws_fanout --smoke)
set_tests_properties(ws_fanout_smoke PROPERTIES LABELS bench-smoke TIMEOUT 120)
