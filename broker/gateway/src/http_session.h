// One HTTP/1.1 client connection (README "Routes"): reads a request head, asks the router,
// reads the body when the route takes it, forwards to the engine or answers at once, writes
// the response, and loops while the connection is keep-alive. Requests on one connection are
// answered in order, one at a time. Beast stays inside http_session.cc.
//
// Threads: a session lives on the server's io thread; it registers itself in
// ServerContext::connections for its lifetime.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "server_context.h"

namespace chorus::broker::gateway::detail {

// Takes over an accepted socket and serves it until the peer leaves, the idle timeout fires,
// an error closes it or the server stops.
void StartHttpSession(boost::asio::ip::tcp::socket socket, ServerContext& ctx);

}  // namespace chorus::broker::gateway::detail
