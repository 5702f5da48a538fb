# Attacks on a real chorusd (issue 10; docs/operations.md "Security").
find_package(nlohmann_json REQUIRED)
chorus_test(node_hardening_test LABEL integration SOURCES node_hardening_test.cc
            LIBS chorus_node_test_support nlohmann_json::nlohmann_json)
