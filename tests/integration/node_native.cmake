# Raw-wire tests of the native protocol (docs/protocol/native.md) against a real chorusd.
chorus_test(node_native_wire_test LABEL integration
            SOURCES node_native_wire_test.cc node_native_commands_test.cc
            LIBS chorus_node_test_support)
chorus_test(node_native_recovery_test LABEL integration SOURCES node_native_recovery_test.cc
            LIBS chorus_node_test_support)
chorus_test(node_native_slow_test LABEL fault TIMEOUT 300 SOURCES node_native_slow_test.cc
            LIBS chorus_node_test_support)
