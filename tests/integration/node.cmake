# Integration tests of the broker node: a real chorusd child process on loopback.
find_package(OpenSSL REQUIRED)
add_library(chorus_node_test_support STATIC ${CMAKE_CURRENT_SOURCE_DIR}/node_support.cc)
target_include_directories(chorus_node_test_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(chorus_node_test_support PUBLIC chorus::chp chorus_test_support OpenSSL::Crypto)
target_compile_definitions(chorus_node_test_support PUBLIC CHORUSD_BIN="$<TARGET_FILE:chorusd>")
add_dependencies(chorus_node_test_support chorusd)
chorus_target_defaults(chorus_node_test_support)

# One file per area, each registering its own test binaries (so they can be added separately).
file(GLOB CHORUS_NODE_TEST_CMAKES ${CMAKE_CURRENT_SOURCE_DIR}/node_*.cmake)
foreach(f ${CHORUS_NODE_TEST_CMAKES})
  include(${f})
endforeach()
