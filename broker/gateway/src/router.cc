#include "router.h"

#include <cctype>

#include "broker/gateway/bridge_codec.h"

namespace chorus::broker::gateway::detail {
namespace {

constexpr std::string_view kApiPrefix = "/api/";
constexpr std::string_view kWebSocketPath = "/connection/websocket";
constexpr size_t kMaxMethodName = 64;
// Paths (and everything below them) that are never static files.
constexpr std::string_view kReserved[] = {"/api", "/health", "/metrics", kWebSocketPath};

bool Reserved(std::string_view path) {
  for (std::string_view r : kReserved) {
    if (path.starts_with(r) && (path.size() == r.size() || path[r.size()] == '/')) return true;
  }
  return false;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsControl(unsigned char c) {
  return c < 0x20 || c == 0x7F;
}

bool ValidMethodName(std::string_view m) {
  if (m.empty() || m.size() > kMaxMethodName) return false;
  for (char c : m) {
    const bool ok =
        std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool IEqualsAscii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// `s` matches `pattern` ('*' = any run of bytes), ASCII case-insensitive. The same matcher as
// broker::GlobMatch (broker/core/glob.h) with {question_mark = false, ignore_ascii_case =
// true}; kept here because the gateway may not use core (README, "Dependency rule").
bool GlobIEquals(std::string_view pattern, std::string_view s) {
  auto eq = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  };
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pattern.size() && pattern[p] != '*' && eq(pattern[p], s[i])) {
      ++p;
      ++i;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Route Reject(int status, std::string_view allow = {}) {
  Route r;
  r.kind = RouteKind::kReject;
  r.status = status;
  r.allow = allow;
  return r;
}

Route Engine(std::string kind, std::string method, bool takes_body) {
  Route r;
  r.kind = RouteKind::kEngine;
  r.engine_kind = std::move(kind);
  r.engine_method = std::move(method);
  r.takes_body = takes_body;
  r.status = 0;
  return r;
}

}  // namespace

bool ConstantTimeEquals(std::string_view given, std::string_view expected) {
  // Every byte of `expected` is looked at whatever `given` holds.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0;
}

bool Authorised(const RequestHead& head, std::string_view key) {
  if (key.empty()) return false;
  if (head.x_api_key) return ConstantTimeEquals(Trim(*head.x_api_key), key);
  if (head.authorization) {
    std::string_view v = Trim(*head.authorization);
    const size_t space = v.find_first_of(" \t");
    if (space == std::string_view::npos) return false;
    if (!IEqualsAscii(v.substr(0, space), "apikey")) return false;
    return ConstantTimeEquals(Trim(v.substr(space)), key);
  }
  return false;
}

bool BearerAuthorised(const RequestHead& head, std::string_view key) {
  if (key.empty() || !head.authorization) return false;
  std::string_view v = Trim(*head.authorization);
  const size_t space = v.find_first_of(" \t");
  if (space == std::string_view::npos || !IEqualsAscii(v.substr(0, space), "bearer")) return false;
  return ConstantTimeEquals(Trim(v.substr(space)), key);
}

bool OriginAllowed(const RequestHead& head, const std::vector<std::string>& allowed) {
  if (!head.origin) return true;  // not a browser: browsers always send Origin on an upgrade
  const std::string_view origin = Trim(*head.origin);
  if (allowed.empty()) {
    const size_t sep = origin.find("://");
    if (sep == std::string_view::npos || !head.host) return false;
    return IEqualsAscii(origin.substr(sep + 3), Trim(*head.host));
  }
  for (const std::string& pattern : allowed) {
    if (GlobIEquals(pattern, origin)) return true;
  }
  return false;
}

Route RouteRequest(const RequestHead& head, const RouterConfig& config) {
  std::string_view path = head.target;
  if (const size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);

  if (path.starts_with(kApiPrefix)) {
    if (config.api_key.empty()) return Reject(404);
    const std::string_view method = path.substr(kApiPrefix.size());
    if (!ValidMethodName(method)) return Reject(404);
    if (head.method != "POST") return Reject(405, "POST");
    if (!Authorised(head, config.api_key)) return Reject(401);
    return Engine(std::string(bridge::kKindApi), std::string(method), /*takes_body=*/true);
  }
  if (path == "/health" || path == "/metrics") {
    if (head.method != "GET") return Reject(405, "GET");
    const std::string_view kind = path == "/health" ? bridge::kKindHealth : bridge::kKindMetrics;
    if (path == "/metrics" && !config.metrics_key.empty() &&
        !BearerAuthorised(head, config.metrics_key)) {
      return Reject(401);
    }
    return Engine(std::string(kind), "", /*takes_body=*/false);
  }
  if (path == kWebSocketPath) {
    if (head.method != "GET") return Reject(405, "GET");
    if (!head.websocket_upgrade) return Reject(400);
    if (!OriginAllowed(head, config.allowed_origins)) return Reject(403);
    Route r;
    r.kind = RouteKind::kWebSocket;
    r.status = 0;
    return r;
  }
  if (config.static_files && !Reserved(path)) {
    std::optional<std::string> file = StaticPath(path);
    if (!file) return Reject(404);
    if (head.method != "GET" && head.method != "HEAD") return Reject(405, "GET, HEAD");
    Route r;
    r.kind = RouteKind::kStatic;
    r.status = 0;
    r.static_path = std::move(*file);
    return r;
  }
  return Reject(404);
}

std::optional<std::string> StaticPath(std::string_view path) {
  if (path.empty() || path.front() != '/') return std::nullopt;
  if (path == "/") return "index.html";
  std::string decoded;
  decoded.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const auto c = static_cast<unsigned char>(path[i]);
    if (c == '\\' || IsControl(c)) return std::nullopt;
    if (c != '%') {
      decoded += static_cast<char>(c);
      continue;
    }
    if (i + 2 >= path.size()) return std::nullopt;
    const int hi = HexValue(path[i + 1]);
    const int lo = HexValue(path[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    const auto d = static_cast<unsigned char>(hi * 16 + lo);
    // An escaped separator or dot only ever serves to slip past the segment checks below.
    if (d == '.' || d == '/' || d == '\\' || IsControl(d)) return std::nullopt;
    decoded += static_cast<char>(d);
    i += 2;
  }
  if (Reserved(decoded)) return std::nullopt;
  std::string_view rest = std::string_view(decoded).substr(1);
  for (;;) {
    const size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || segment == "." || segment == "..") return std::nullopt;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return decoded.substr(1);
}

std::string ErrorJson(int code, std::string_view message) {
  std::string out = R"({"error":{"code":)";
  out += std::to_string(code);
  out += R"(,"message":")";
  out += message;  // our own fixed messages: no escaping needed
  out += R"("}})";
  return out;
}

}  // namespace chorus::broker::gateway::detail
