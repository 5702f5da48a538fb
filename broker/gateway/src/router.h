// The gateway's router: pure logic, no sockets and no Boost. A session parses a request head
// and asks Route() what to do with it; the answer is a value the session dispatches on. New
// endpoints are a new RouteKind plus a case in the session's dispatch (README "Extending").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::broker::gateway::detail {

// What the router needs from a request head. Views into the parser's buffers; header values
// are nullopt when the field is absent.
struct RequestHead {
  std::string_view method;  // the request method token, e.g. "POST"
  std::string_view target;  // origin-form, e.g. "/api/publish?x=1"
  std::optional<std::string_view> x_api_key;
  std::optional<std::string_view> authorization;
  std::optional<std::string_view> origin;  // Origin (WebSocket upgrades)
  std::optional<std::string_view> host;    // Host
  // A WebSocket opening handshake (RFC 6455 §4.2.1: HTTP/1.1 GET, "Connection: upgrade",
  // "Upgrade: websocket"), as the session's HTTP parser sees it.
  bool websocket_upgrade = false;
};

enum class RouteKind {
  kEngine,     // forward to the engine: kind + method (README "Engine bridge")
  kReject,     // answer at once with `status` (and `allow` for 405); the engine is not contacted
  kWebSocket,  // hand the connection to a WebSocket session (README "WebSocket")
  kStatic,     // answer from HttpOptions::static_dir, file `static_path` (README "Static files")
};

struct Route {
  RouteKind kind = RouteKind::kReject;
  std::string engine_kind;    // "api" | "health" | "metrics" (kEngine)
  std::string engine_method;  // the <method> path segment for "api", else ""
  bool takes_body = false;    // the request body travels to the engine (api only)
  int status = 404;           // kReject
  std::string_view allow;     // kReject with 405: the Allow header value
  std::string static_path;    // kStatic: decoded, relative to the directory ("sub/b.css")
};

struct RouterConfig {
  std::string api_key;        // "" disables /api/*
  bool static_files = false;  // HttpOptions::static_dir is set
  std::string metrics_key;    // "" = /metrics open; else "Authorization: Bearer <key>" (401)
  std::vector<std::string> allowed_origins;  // HttpOptions::allowed_origins (403)
};

// Routes (README "Routes"): /api/<method> (POST, authorised, 404 when the API is disabled),
// GET /health, GET /metrics, GET /connection/websocket (an upgrade; a plain GET is 400); with
// static files, GET or HEAD of any other path whose StaticPath() is safe (another method: 405;
// an unsafe path: 404); anything else 404. The <method> segment is [A-Za-z0-9_.-]{1,64}.
Route RouteRequest(const RequestHead& head, const RouterConfig& config);

// The file a static request names, relative to the static directory: "/" is "index.html";
// otherwise the path without its leading '/', percent-decoded. nullopt (not served) when the
// path does not start with '/', has a malformed escape, an escape that decodes to a dot, a
// slash, a backslash or a control character, a raw backslash or control character, an empty,
// "." or ".." segment (so a trailing '/' too), or names a reserved route once decoded (/api,
// /health, /metrics, /connection/websocket and everything below them). Symlinks are the
// reader's business (static_file.h).
std::optional<std::string> StaticPath(std::string_view path);

// True when the request carries `key` as "X-API-Key: <key>" or "Authorization: apikey <key>"
// (scheme case-insensitive). X-API-Key is looked at first when both are present. The
// comparison takes time that depends on the length of `key` only.
bool Authorised(const RequestHead& head, std::string_view key);

// The Origin check of a WebSocket upgrade (HttpOptions::allowed_origins): no Origin: true; an
// empty list: the Origin's authority (after "scheme://") equals Host, ASCII case-insensitive;
// else the Origin matches one pattern, ASCII case-insensitive, where '*' is any run of bytes
// ("https://*.example.com", "*").
bool OriginAllowed(const RequestHead& head, const std::vector<std::string>& allowed);

// True when the request carries "Authorization: Bearer <key>" (scheme case-insensitive;
// constant time in the length of `key`), as Prometheus sends its `authorization` credentials.
bool BearerAuthorised(const RequestHead& head, std::string_view key);

// Constant-time equality (for a given length of `expected`).
bool ConstantTimeEquals(std::string_view given, std::string_view expected);

// The gateway's own error bodies, in the server API's JSON error shape.
std::string ErrorJson(int code, std::string_view message);

}  // namespace chorus::broker::gateway::detail
