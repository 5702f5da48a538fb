# chorus::client integration tests: the client against a fake node speaking the raw wire format.
chorus_test(client_fake_server_test LABEL integration SOURCES client_fake_server_test.cc
            LIBS chorus::client)
include(${CMAKE_CURRENT_SOURCE_DIR}/client_node.cmake)
