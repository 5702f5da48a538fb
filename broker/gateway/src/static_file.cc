#include "static_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <memory>

#include "broker/gateway/log.h"

namespace chorus::broker::gateway::detail {
namespace {

// realpath(3) as a string; "" when it fails.
std::string RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr), &std::free);
  return real ? std::string(real.get()) : std::string();
}

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

char LowerAscii(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

chp::Result<std::string> ResolveStaticRoot(const std::string& dir) {
  const std::string real = RealPath(dir);
  struct stat st {};
  if (real.empty() || ::stat(real.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  return real;
}

StaticFile ReadStaticFile(const std::string& root, const std::string& relative, size_t max_bytes,
                          bool with_body) {
  StaticFile out;
  const std::string real = RealPath(root + "/" + relative);
  // Strictly below the root ("/" as the root: anything but "/" itself).
  const std::string prefix = root.ends_with('/') ? root : root + "/";
  if (real.size() <= prefix.size() || !real.starts_with(prefix)) return out;
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below anyway).
  const Fd fd(::open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0) return out;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return out;
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    Log().warn("static file {} has {} bytes, over the limit of {}: answered 404", real, size,
               max_bytes);
    return out;
  }
  if (with_body) {
    out.body.resize(size);
    size_t got = 0;
    while (got < size) {
      const ssize_t n = ::read(fd.get(), out.body.data() + got, size - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return StaticFile{};
      if (n == 0) break;  // the file shrank since fstat: serve what is there
      got += static_cast<size_t>(n);
    }
    out.body.resize(got);
  }
  out.status = 200;
  out.size = with_body ? out.body.size() : size;
  out.content_type = ContentTypeFor(relative);
  return out;
}

std::string_view ContentTypeFor(std::string_view name) {
  struct Type {
    std::string_view extension;
    std::string_view content_type;
  };
  static constexpr Type kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"png", "image/png"},
      {"svg", "image/svg+xml"},
      {"ico", "image/x-icon"},
      {"map", "application/json"},
      {"txt", "text/plain; charset=utf-8"},
  };
  constexpr std::string_view kDefault = "application/octet-stream";
  const size_t slash = name.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  const size_t dot = base.rfind('.');
  if (dot == std::string_view::npos) return kDefault;
  std::string extension(base.substr(dot + 1));
  for (char& c : extension) c = LowerAscii(c);
  for (const Type& t : kTypes) {
    if (t.extension == extension) return t.content_type;
  }
  return kDefault;
}

}  // namespace chorus::broker::gateway::detail
