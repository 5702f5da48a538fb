# broker/gateway: the HTTP listener against a fake engine on the engine bridge (in-process).
chorus_test(gateway_http_test LABEL integration SOURCES gateway_http_test.cc
            LIBS chorus::broker_gateway)
