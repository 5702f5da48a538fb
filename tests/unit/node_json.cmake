# Unit tests: the WebSocket JSON codec of the broker node (client_json.h,
# docs/protocol/websocket.md). No sockets.
chorus_test(broker_node_json_test LABEL unit SOURCES broker_node_json_test.cc
            LIBS chorus::broker_protocol)
# Token claim checks (broker/protocol/auth.h; issue 10): nbf, aud, iss, token kinds, float exp.
find_package(OpenSSL REQUIRED)
chorus_test(broker_auth_test LABEL unit SOURCES broker_auth_test.cc
            LIBS chorus::broker_protocol OpenSSL::Crypto)
