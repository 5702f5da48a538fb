# chorusd with several gateway io threads (http.threads, http.max_connections); WebSocket clients
# are Beast's (gateway_ws_client.h).
find_package(Boost 1.74 REQUIRED CONFIG)
chorus_test(node_gateway_threads_test LABEL integration SOURCES node_gateway_threads_test.cc
            LIBS chorus_node_test_support Boost::headers)
target_compile_definitions(node_gateway_threads_test PRIVATE BOOST_ASIO_NO_DEPRECATED
                           BOOST_BEAST_USE_STD_STRING_VIEW)
# Raw-wire tests of the WebSocket protocol's engine rules (docs/protocol/websocket.md) against a
# real chorusd: JSON written by hand over Beast's client, replies read with nlohmann::json.
find_package(nlohmann_json REQUIRED)
chorus_test(node_ws_wire_test LABEL integration SOURCES node_ws_wire_test.cc
            LIBS chorus_node_test_support Boost::headers nlohmann_json::nlohmann_json)
target_compile_definitions(node_ws_wire_test PRIVATE BOOST_ASIO_NO_DEPRECATED
                           BOOST_BEAST_USE_STD_STRING_VIEW)
