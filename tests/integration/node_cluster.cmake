# Integration tests of chorusd's cluster map wiring: three real nodes form one meta group.
chorus_test(node_cluster_test LABEL integration SOURCES node_cluster_test.cc
            LIBS chorus_node_test_support nlohmann_json::nlohmann_json)
