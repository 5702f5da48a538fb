# Unit tests: pure parts of the broker node (chorus::broker_channels, chorus::broker_protocol): the channel table with a
# recording StateSink, the native codec and CHP subtree names. No sockets.
chorus_test(broker_node_channel_table_test LABEL unit SOURCES broker_node_channel_table_test.cc
            LIBS chorus::broker_channels)
chorus_test(broker_node_codec_test LABEL unit SOURCES broker_node_codec_test.cc
            LIBS chorus::broker_channels chorus::broker_protocol)
# The engine's SessionTable (chorus::broker_node) with fake transports. No sockets.
chorus_test(broker_node_session_table_test LABEL unit SOURCES broker_node_session_table_test.cc
            LIBS chorus::broker_node)
# The hardening bounds (issue 10): JSON depth scan, token bucket, channel cap, descriptor plan.
chorus_test(broker_hardening_test LABEL unit SOURCES broker_hardening_test.cc
            LIBS chorus::broker_node)
