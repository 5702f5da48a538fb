// Reading an HTTP/1.1 response head, shared by the benchmark clients: ws_load.cc (the
// WebSocket handshake's 101) and http_publisher.cc (the publisher's responses).
#pragma once

#include <strings.h>

#include <string_view>

namespace chorus::bench {

// The value of header `name` (case-insensitive) in a response head (the status line and the
// header lines, each ending in "\r\n"), without the spaces and tabs around it; "" when absent.
inline std::string_view HeaderValue(std::string_view head, std::string_view name) {
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const size_t start = pos + 2;
    const size_t end = head.find("\r\n", start);
    const std::string_view line = head.substr(start, end - start);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        strncasecmp(line.data(), name.data(), name.size()) == 0) {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return v;
    }
    pos = end;
  }
  return {};
}

}  // namespace chorus::bench
