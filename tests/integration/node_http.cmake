# Integration tests of the node's HTTP server API against a real chorusd (node_support.h).
find_package(nlohmann_json REQUIRED)
chorus_test(node_http_api_test LABEL integration SOURCES node_http_api_test.cc
            LIBS chorus_node_test_support nlohmann_json::nlohmann_json)
chorus_test(node_http_errors_test LABEL integration SOURCES node_http_errors_test.cc
            LIBS chorus_node_test_support nlohmann_json::nlohmann_json)
# Every API method's fields sent with wrong types: 400 / 107, never a 500 (issue 10).
chorus_test(node_http_types_test LABEL integration SOURCES node_http_types_test.cc
            LIBS chorus_node_test_support nlohmann_json::nlohmann_json)
# The server API's batch and refresh methods (Centrifugo's).
chorus_test(node_http_batch_test LABEL integration SOURCES node_http_batch_test.cc
            LIBS chorus_node_test_support nlohmann_json::nlohmann_json)
