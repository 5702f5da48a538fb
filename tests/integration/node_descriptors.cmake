# Descriptor limits of a real chorusd started under prlimit (issue 10 item 6).
chorus_test(node_descriptors_test LABEL integration SOURCES node_descriptors_test.cc
            LIBS chorus_node_test_support)
