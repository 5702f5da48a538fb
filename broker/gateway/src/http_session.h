// One HTTP/1.1 client connection (README "Routes"): reads a request head, asks the router,
// reads the body when the route takes it, forwards to the engine or answers at once, writes
// the response, and loops while the connection is keep-alive. Requests on one connection are
// answered in order, one at a time. Beast stays inside http_session.cc.
//
// Threads: a session lives on the io thread of the shard its socket was handed to (the
// socket's io_context is that shard's); it registers itself in that shard's
// ServerContext::connections for its lifetime.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "server_context.h"

namespace chorus::broker::gateway::detail {

// Takes over an accepted socket (of `ctx`'s io_context) and its connection slot, and serves it
// until the peer leaves, the idle timeout fires, an error closes it or the server stops. On
// the shard's thread.
void StartHttpSession(boost::asio::ip::tcp::socket socket, ConnectionSlot slot, ServerContext& ctx);

}  // namespace chorus::broker::gateway::detail
