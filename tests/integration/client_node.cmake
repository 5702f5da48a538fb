# chorus::client against a real chorusd (the node's test support starts it). Included from
# client.cmake, before node.cmake defines chorus_node_test_support: link items are resolved when
# the build is generated, so the name may be defined later.
chorus_test(client_node_test LABEL integration SOURCES client_node_test.cc
            LIBS chorus::client chorus_node_test_support)
target_compile_definitions(client_node_test PRIVATE
  CHORUS_CHAT_EXAMPLE_BIN="$<TARGET_FILE:chorus-chat-example>")
add_dependencies(client_node_test chorus-chat-example)
