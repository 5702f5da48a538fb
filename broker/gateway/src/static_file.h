// Static files (README "Static files"): reading one file of HttpOptions::static_dir for the
// HTTP session. No Boost and no sockets: plain POSIX calls, blocking (the files are small and
// bounded; they are read on the io thread of the connection that asks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "chp/errc.h"

namespace chorus::broker::gateway::detail {

// The canonical absolute path (realpath) of `dir`; std::errc::invalid_argument when it is not
// an existing directory.
chp::Result<std::string> ResolveStaticRoot(const std::string& dir);

struct StaticFile {
  int status = 404;               // 200, or 404 (missing, unsafe, not a regular file, too big)
  std::string_view content_type;  // 200: from the extension (ContentTypeFor)
  uint64_t size = 0;              // 200: the file's size (the Content-Length, HEAD included)
  std::string body;               // 200 with `with_body`: the file's bytes
};

// Reads `relative` (a StaticPath() result: no "." or ".." segments) under `root` (a
// ResolveStaticRoot() result). Served only when the file's realpath lies under `root` (a
// symlink may point elsewhere inside the directory, never outside it), it is a regular file
// and it has at most `max_bytes` bytes. `with_body` false (HEAD) stops after the checks.
// A file replaced between the realpath check and the open is not guarded against (the last
// component is opened with O_NOFOLLOW): whoever can write the directory decides what it
// serves anyway.
StaticFile ReadStaticFile(const std::string& root, const std::string& relative, size_t max_bytes,
                          bool with_body);

// The Content-Type for a file name, by its extension (case-insensitive): html, js, mjs, css,
// json, png, svg, ico, map, txt; anything else application/octet-stream.
std::string_view ContentTypeFor(std::string_view name);

}  // namespace chorus::broker::gateway::detail
