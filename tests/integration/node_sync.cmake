# The sync scheduler inside a real chorusd: server API, progress events, metrics, bad input.
find_package(nlohmann_json REQUIRED)
chorus_test(node_sync_test LABEL integration SOURCES node_sync_test.cc
            LIBS chorus_node_test_support chorus::broker_scheduler nlohmann_json::nlohmann_json)
target_include_directories(node_sync_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
