# Unit tests: the WebSocket JSON codec of the broker node (client_json.h,
# docs/protocol/websocket.md). No sockets.
chorus_test(broker_node_json_test LABEL unit SOURCES broker_node_json_test.cc
            LIBS chorus::broker_protocol)
