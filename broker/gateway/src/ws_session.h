// One WebSocket client connection (README "WebSocket"): completes the opening handshake on the
// upgrade request the HTTP session parsed, then moves text messages between the client and the
// engine through the WsHub (`frame` in; `send`/`fanout` out), with one bounded write queue,
// one write in flight and coalescing of queued messages into one frame joined by '\n'.
// Beast stays inside ws_session.cc.
//
// Threads: a session lives on the io thread of its shard (the one of the HTTP session it
// upgrades); it registers itself in that shard's ServerContext::connections for its lifetime
// (so Stop() closes it), holds the connection's slot (so max_connections counts it) and is in
// the shard's WsHub while it is open.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "server_context.h"

namespace chorus::broker::gateway::detail {

// Takes over `socket` and its connection slot from an HTTP session that parsed `request`, a
// WebSocket upgrade (RouteKind::kWebSocket). `UpgradeRequest` is Beast's
// http::request<http::string_body>; the template is only declared here and explicitly
// instantiated in ws_session.cc, so this header names no Beast type. Nothing must be left
// unread in the HTTP session's buffer.
template <class UpgradeRequest>
void StartWsSession(boost::asio::ip::tcp::socket socket, UpgradeRequest request,
                    ConnectionSlot slot, ServerContext& ctx);

}  // namespace chorus::broker::gateway::detail
