# chorusd with several gateway io threads (http.threads, http.max_connections); WebSocket clients
# are Beast's (gateway_ws_client.h).
find_package(Boost 1.74 REQUIRED CONFIG)
chorus_test(node_gateway_threads_test LABEL integration SOURCES node_gateway_threads_test.cc
            LIBS chorus_node_test_support Boost::headers)
target_compile_definitions(node_gateway_threads_test PRIVATE BOOST_ASIO_NO_DEPRECATED
                           BOOST_BEAST_USE_STD_STRING_VIEW)
