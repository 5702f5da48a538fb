# broker/gateway: the HTTP listener against a fake engine on the engine bridge (in-process).
chorus_test(gateway_http_test LABEL integration SOURCES gateway_http_test.cc
            LIBS chorus::broker_gateway)
# The WebSocket transport (/connection/websocket) against the same fake engine; the test's
# WebSocket client is Beast's.
find_package(Boost 1.74 REQUIRED CONFIG)
chorus_test(gateway_ws_test LABEL integration SOURCES gateway_ws_test.cc
            LIBS chorus::broker_gateway Boost::headers)
target_compile_definitions(gateway_ws_test PRIVATE BOOST_ASIO_NO_DEPRECATED
                           BOOST_BEAST_USE_STD_STRING_VIEW)
# Static files (HttpOptions::static_dir): content types, HEAD, and every way out of the
# directory refused; raw HTTP bytes as in gateway_http_test.
chorus_test(gateway_static_test LABEL integration SOURCES gateway_static_test.cc
            LIBS chorus::broker_gateway)
# Several io threads (HttpOptions::io_threads 2 and 3): connections spread over the shards,
# fanout, slow close, the server-wide bounds, Stop(), thread names; Beast's client as above.
chorus_test(gateway_threads_test LABEL integration SOURCES gateway_threads_test.cc
            LIBS chorus::broker_gateway Boost::headers)
target_compile_definitions(gateway_threads_test PRIVATE BOOST_ASIO_NO_DEPRECATED
                           BOOST_BEAST_USE_STD_STRING_VIEW)
# The engine's side of the bridge (docs/protocol/bridge.md, rules B-n): an in-process Engine and
# DEALERs speaking raw bridge frames.
chorus_test(node_bridge_test LABEL integration SOURCES node_bridge_test.cc
            LIBS chorus::broker_node)
# Hardening bounds (issue 10): Origin check, /metrics key, per-address bound, head deadline.
chorus_test(gateway_hardening_test LABEL integration SOURCES gateway_hardening_test.cc
            LIBS chorus::broker_gateway)
