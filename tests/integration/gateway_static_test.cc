// Integration tests of the gateway's static files (broker/gateway/README.md, "Static files"):
// HttpOptions::static_dir served on GET and HEAD, content types, Cache-Control, and every way
// out of the directory refused (dot segments, percent-encoded dots and slashes, symlinks). The
// server runs in-process on 127.0.0.1 port 0 against the fake engine of gateway_test_support.h;
// the client speaks raw HTTP/1.1 bytes over POSIX sockets. Every test runs with 1 and 2 io
// threads (files are read on the shard that owns the connection).
//
// Layout of each test's temp dir: `www/` is served; `secret.txt` sits next to it (outside) and
// its text must never come back.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gateway_test_support.h"

namespace {

using namespace gateway_test;
namespace fs = std::filesystem;

constexpr char kIndex[] = "<!doctype html><title>demo</title>\n";
constexpr char kScript[] = "console.log('a');\n";
constexpr char kStyle[] = "body { color: red; }\n";
constexpr char kSecret[] = "TOP-SECRET-OUTSIDE";

class GatewayStatic : public ThreadsFixture {
 protected:
  void SetUp() override {
    static int n = 0;
    root_ = fs::temp_directory_path() /
            ("chorus_gateway_static_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(root_);
    www_ = root_ / "www";
    fs::create_directories(www_ / "sub");
    Write(www_ / "index.html", kIndex);
    Write(www_ / "a.js", kScript);
    Write(www_ / "sub" / "b.css", kStyle);
    Write(root_ / "secret.txt", kSecret);
  }
  void TearDown() override {
    ThreadsFixture::TearDown();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static void Write(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }

  gw::HttpOptions StaticOptions() const {
    gw::HttpOptions o = Options();
    o.static_dir = www_.string();
    return o;
  }

  void Start() {
    StartEngine();
    StartServer(StaticOptions());
  }

  std::optional<HttpResponse> Get(const std::string& target) {
    return RoundTrip(port(), Request("GET", target));
  }

  fs::path root_;
  fs::path www_;
};

// Reads one response head (up to the blank line) from `c`; `rest` gets whatever came after it.
std::string ReadHeadOnly(RawClient& c, std::string& rest) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::string bytes;
  size_t end;
  while ((end = bytes.find("\r\n\r\n")) == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    bytes += c.ReadSome(100ms);
  }
  if (end == std::string::npos) return "";
  rest = bytes.substr(end + 4);
  return bytes.substr(0, end + 4);
}

TEST_P(GatewayStatic, ServesFilesWithContentTypeAndNoCache) {
  Start();
  const struct {
    const char* target;
    const char* body;
    const char* type;
  } cases[] = {
      {"/index.html", kIndex, "text/html; charset=utf-8"},
      {"/a.js", kScript, "text/javascript; charset=utf-8"},
      {"/sub/b.css", kStyle, "text/css; charset=utf-8"},
      {"/a.js?v=3", kScript, "text/javascript; charset=utf-8"},  // the query is ignored
  };
  for (const auto& c : cases) {
    auto r = Get(c.target);
    ASSERT_TRUE(r) << c.target;
    EXPECT_EQ(r->status, 200) << c.target;
    EXPECT_EQ(r->body, c.body) << c.target;
    EXPECT_EQ(r->Header("content-type"), c.type) << c.target;
    EXPECT_EQ(r->Header("cache-control"), "no-cache") << c.target;
    EXPECT_EQ(r->Header("x-content-type-options"), "nosniff") << c.target;
  }
  // Read on the io thread: the engine never hears of static files.
  auto health = Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  ASSERT_EQ(engine_->count(), 1u);
  EXPECT_EQ(engine_->seen()[0].kind, "health");
}

TEST_P(GatewayStatic, ContentTypesByExtension) {
  const struct {
    const char* name;
    const char* type;
  } cases[] = {
      {"m.mjs", "text/javascript; charset=utf-8"},
      {"d.json", "application/json"},
      {"i.png", "image/png"},
      {"v.svg", "image/svg+xml"},
      {"favicon.ico", "image/x-icon"},
      {"a.js.map", "application/json"},
      {"r.txt", "text/plain; charset=utf-8"},
      {"UPPER.HTML", "text/html; charset=utf-8"},
      {"blob.bin", "application/octet-stream"},
      {"noext", "application/octet-stream"},
  };
  for (const auto& c : cases) Write(www_ / c.name, "x");
  Start();
  for (const auto& c : cases) {
    auto r = Get(std::string("/") + c.name);
    ASSERT_TRUE(r) << c.name;
    EXPECT_EQ(r->status, 200) << c.name;
    EXPECT_EQ(r->Header("content-type"), c.type) << c.name;
  }
}

TEST_P(GatewayStatic, RootIsIndexHtml) {
  Start();
  for (const char* target : {"/", "/?x=1"}) {
    auto r = Get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 200) << target;
    EXPECT_EQ(r->body, kIndex) << target;
    EXPECT_EQ(r->Header("content-type"), "text/html; charset=utf-8") << target;
  }
}

TEST_P(GatewayStatic, MissingFilesAndDirectoriesAre404) {
  Start();
  for (const char* target :
       {"/nope.js", "/sub/nope.css", "/sub", "/sub/", "/index.html/", "//a.js", "/sub//b.css"}) {
    auto r = Get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 404) << target;
  }
}

TEST_P(GatewayStatic, EscapesOutOfTheDirectoryAreRefused) {
  Start();
  // Each of these would reach secret.txt (or a file that does exist inside) if the path were
  // used naively; every one must be refused.
  for (const char* target : {
           "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
           "/.%2e/secret.txt", "/sub/..%2f..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
           "/sub%2fb.css",           // an encoded slash, to a file that exists
           "/%2e/a.js",              // an encoded dot segment, to a file that exists
           "/./a.js",                // a raw dot segment
           "/sub/../a.js",           // a dot-dot segment that stays inside
           "/a.js%00",               // NUL
           "/a.js%00.html",          // NUL
           "/sub%5cb.css",           // an encoded backslash
           "/..%5csecret.txt",       // an encoded backslash
           "/a%zz.js",               // a malformed escape
           "/a.js%2",                // a truncated escape
           "/%252e%252e/secret.txt"  // double encoding: "%2e%2e" is a (missing) file name
       }) {
    auto r = Get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_TRUE(r->status == 404 || r->status == 400) << target << ": " << r->status;
    EXPECT_EQ(r->body.find(kSecret), std::string::npos) << target;
  }
  // A raw backslash: Beast may refuse the request line (400) before the router sees it.
  RawClient c(port());
  ASSERT_TRUE(c.Send("GET /sub\\b.css HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->status == 404 || r->status == 400) << r->status;
  // A percent-encoded letter is fine.
  auto ok = Get("/%61.js");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, kScript);
}

TEST_P(GatewayStatic, SymlinksMayNotLeaveTheDirectory) {
  fs::create_symlink(root_ / "secret.txt", www_ / "leak.txt");  // absolute, outside
  fs::create_symlink("../secret.txt", www_ / "rel-leak.txt");   // relative, outside
  fs::create_symlink(root_, www_ / "up");                       // a directory outside
  fs::create_symlink("a.js", www_ / "alias.js");                // inside: served
  fs::create_symlink("sub", www_ / "subalias");                 // a directory inside
  Start();
  for (const char* target : {"/leak.txt", "/rel-leak.txt", "/up/secret.txt", "/up"}) {
    auto r = Get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 404) << target;
    EXPECT_EQ(r->body.find(kSecret), std::string::npos) << target;
  }
  for (const auto& [target, body] :
       {std::pair{"/alias.js", kScript}, std::pair{"/subalias/b.css", kStyle}}) {
    auto r = Get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 200) << target;
    EXPECT_EQ(r->body, body) << target;
  }
}

TEST_P(GatewayStatic, OnlyRegularFilesWithinTheSizeLimit) {
  ASSERT_EQ(::mkfifo((www_ / "fifo").c_str(), 0600), 0);
  Write(www_ / "eight.txt", "12345678");
  Write(www_ / "nine.txt", "123456789");
  StartEngine();
  gw::HttpOptions o = StaticOptions();
  o.max_static_file_bytes = 8;
  StartServer(o);
  auto fifo = Get("/fifo");
  ASSERT_TRUE(fifo);
  EXPECT_EQ(fifo->status, 404);
  auto eight = Get("/eight.txt");
  ASSERT_TRUE(eight);
  EXPECT_EQ(eight->status, 200);
  EXPECT_EQ(eight->body, "12345678");
  auto nine = Get("/nine.txt");
  ASSERT_TRUE(nine);
  EXPECT_EQ(nine->status, 404);
}

TEST_P(GatewayStatic, OtherMethodsAre405) {
  Start();
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    for (const char* target : {"/a.js", "/", "/nope.js"}) {
      RawClient c(port());
      ASSERT_TRUE(c.Send(Request(method, target)));
      auto r = c.Read();
      ASSERT_TRUE(r) << method << " " << target;
      EXPECT_EQ(r->status, 405) << method << " " << target;
      EXPECT_EQ(r->Header("allow"), "GET, HEAD") << method << " " << target;
    }
  }
  EXPECT_EQ(engine_->count(), 0u);
}

TEST_P(GatewayStatic, HeadHasTheHeadersOfGetAndNoBody) {
  Start();
  RawClient c(port());
  ASSERT_TRUE(c.Send(Request("HEAD", "/a.js")));
  std::string rest;
  const std::string head = Lower(ReadHeadOnly(c, rest));
  ASSERT_FALSE(head.empty());
  EXPECT_EQ(head.rfind("http/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("content-length: " + std::to_string(std::string(kScript).size()) + "\r\n"),
            std::string::npos)
      << head;
  EXPECT_NE(head.find("content-type: text/javascript; charset=utf-8\r\n"), std::string::npos)
      << head;
  EXPECT_NE(head.find("cache-control: no-cache\r\n"), std::string::npos) << head;
  EXPECT_EQ(rest, "");
  // The same connection goes on: the next answer starts right after the head (a body sent for
  // the HEAD would come first and break it).
  ASSERT_TRUE(c.Send(Request("GET", "/sub/b.css")));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, kStyle);
  // A HEAD of a missing file: 404 without a body either.
  ASSERT_TRUE(c.Send(Request("HEAD", "/nope.js")));
  const std::string missing = ReadHeadOnly(c, rest);
  EXPECT_EQ(missing.rfind("HTTP/1.1 404", 0), 0u) << missing;
  EXPECT_EQ(rest, "");
  ASSERT_TRUE(c.Send(Request("GET", "/")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, kIndex);
}

TEST_P(GatewayStatic, ApiRoutesStillWork) {
  // Files whose names collide with the reserved routes are never served.
  fs::create_directories(www_ / "api");
  fs::create_directories(www_ / "health");
  fs::create_directories(www_ / "connection" / "websocket");
  Write(www_ / "api" / "x", "FILE");
  Write(www_ / "metrics", "FILE");
  Write(www_ / "health" / "x", "FILE");
  Write(www_ / "connection" / "websocket" / "x", "FILE");
  Start();
  auto api = RoundTrip(port(), Api("publish", "{}"));
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 200);
  EXPECT_EQ(api->body, "api|publish|{}");
  auto health = Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");
  auto metrics = Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body, "up 1\n");
  auto ws = Get("/connection/websocket");  // a plain GET, no upgrade
  ASSERT_TRUE(ws);
  EXPECT_EQ(ws->status, 400);
  auto api_get = Get("/api/x");
  ASSERT_TRUE(api_get);
  EXPECT_EQ(api_get->status, 405);
  EXPECT_EQ(api_get->Header("allow"), "POST");
  for (const char* target :
       {"/api", "/health/x", "/connection/websocket/x", "/%61pi/x", "/%68ealth/x", "/metric%73"}) {
    auto r = Get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 404) << target;
    EXPECT_NE(r->body, "FILE") << target;
  }
  EXPECT_EQ(engine_->count(), 3u);  // publish, health, metrics
}

TEST_P(GatewayStatic, NothingIsServedWithoutStaticDir) {
  StartEngine();
  StartServer();  // Options(): static_dir ""
  for (const char* target : {"/", "/index.html", "/a.js"}) {
    auto r = Get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 404) << target;
  }
}

TEST_P(GatewayStatic, StartRefusesAStaticDirThatIsNotADirectory) {
  StartEngine();
  for (const fs::path& dir : {root_ / "missing", root_ / "secret.txt"}) {
    gw::HttpOptions o = Options();
    o.static_dir = dir.string();
    auto r = gw::HttpServer::Start(ctx_, o);
    ASSERT_FALSE(r.ok()) << dir;
    EXPECT_EQ(r.error(), std::make_error_code(std::errc::invalid_argument)) << dir;
  }
  gw::HttpOptions o = StaticOptions();
  o.max_static_file_bytes = 0;
  EXPECT_EQ(gw::HttpServer::Start(ctx_, o).error(),
            std::make_error_code(std::errc::invalid_argument));
}

INSTANTIATE_TEST_SUITE_P(IoThreads, GatewayStatic, ::testing::Values(size_t{1}, size_t{2}),
                         IoThreadsName);

}  // namespace
