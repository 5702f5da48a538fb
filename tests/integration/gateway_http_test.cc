// Integration tests of the gateway's HTTP listener (broker/gateway/README.md, "Routes" and
// "Engine bridge"). The server runs in-process on 127.0.0.1 port 0; the engine is a fake
// (gateway_test_support.h): a thread with a ROUTER on an inproc endpoint of the same zmq context,
// answering from a scripted function (or holding requests until the test releases them) and
// recording what it received. The HTTP client is plain POSIX sockets speaking raw HTTP/1.1 bytes,
// so the server is checked against the wire and not against Beast. Every wait is a condition with a
// deadline; "the engine saw nothing" is checked behind an ordering barrier (a later request
// that the engine did see), never by sleeping. Every test runs with 1 and 2 io threads.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gateway_test_support.h"

namespace {

using namespace gateway_test;

class GatewayHttp : public ThreadsFixture {};

TEST_P(GatewayHttp, ApiWithXApiKeyIsForwarded) {
  StartEngine();
  StartServer();
  auto r = RoundTrip(port(), Api("publish", R"({"channel":"a","data":{}})"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(r->body, R"(api|publish|{"channel":"a","data":{}})");
  const auto seen = engine_->seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, "api");
  EXPECT_EQ(seen[0].method, "publish");
  EXPECT_EQ(seen[0].body, R"({"channel":"a","data":{}})");
}

TEST_P(GatewayHttp, ApiWithAuthorizationApikeyIsForwarded) {
  StartEngine();
  StartServer();
  auto r = RoundTrip(port(), Api("info", "{}", std::string("Authorization: apikey ") + kKey));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "api|info|{}");
  // The scheme is case-insensitive.
  r = RoundTrip(port(), Api("info", "{}", std::string("Authorization: ApiKey ") + kKey));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(engine_->count(), 2u);
}

TEST_P(GatewayHttp, MissingOrWrongKeyIs401AndEngineNotContacted) {
  StartEngine();
  StartServer();
  RawClient c(port());
  const std::vector<std::string> bad_auth{
      "",                                            // missing
      "X-API-Key: wrong",                            // wrong key
      std::string("X-API-Key: ") + kKey + "x",       // key with a suffix
      "Authorization: apikey wrong",                 // wrong key, other form
      std::string("Authorization: Bearer ") + kKey,  // wrong scheme
      std::string("Authorization: ") + kKey,         // no scheme
  };
  for (const auto& auth : bad_auth) {
    ASSERT_TRUE(c.Send(Api("publish", "{}", auth)));
    auto r = c.Read();
    ASSERT_TRUE(r) << auth;
    EXPECT_EQ(r->status, 401) << auth;
    EXPECT_EQ(r->body, kUnauthorized) << auth;
    EXPECT_EQ(r->Header("content-type"), "application/json");
  }
  // Barrier: a good request on the same connection reaches the engine after anything earlier.
  ASSERT_TRUE(c.Send(Api("barrier", "{}")));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const auto seen = engine_->seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "barrier");
  EXPECT_EQ(server_->stats().forwarded, 1u);
}

TEST_P(GatewayHttp, ApiDisabledIs404) {
  StartEngine();
  auto o = Options();
  o.api_key.clear();
  StartServer(o);
  auto r = RoundTrip(port(), Api("publish", "{}"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = RoundTrip(port(), Api("publish", "{}", "X-API-Key: "));  // an empty key is no key
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = RoundTrip(port(), Request("GET", "/health"));  // barrier; the rest still works
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const auto seen = engine_->seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, "health");
}

TEST_P(GatewayHttp, WrongHttpMethodIs405) {
  StartEngine();
  StartServer();
  RawClient c(port());
  for (const char* m : {"GET", "PUT", "DELETE"}) {
    ASSERT_TRUE(c.Send(Request(m, "/api/publish", {std::string("X-API-Key: ") + kKey})));
    auto r = c.Read();
    ASSERT_TRUE(r) << m;
    EXPECT_EQ(r->status, 405) << m;
    EXPECT_EQ(r->Header("allow"), "POST");
  }
  for (const char* path : {"/health", "/metrics"}) {
    ASSERT_TRUE(c.Send(Request("POST", path)));
    auto r = c.Read();
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 405) << path;
    EXPECT_EQ(r->Header("allow"), "GET");
  }
  ASSERT_TRUE(c.Send(Api("barrier", "")));
  ASSERT_TRUE(c.Read());
  EXPECT_EQ(engine_->count(), 1u);
}

TEST_P(GatewayHttp, BodyOverLimitIs413) {
  StartEngine();
  auto o = Options();
  o.max_body_bytes = 16;
  StartServer(o);
  // Exactly at the limit: forwarded.
  auto r = RoundTrip(port(), Api("publish", std::string(16, 'a')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "api|publish|" + std::string(16, 'a'));
  // One byte over (Content-Length): 413 and the connection ends.
  {
    RawClient c(port());
    ASSERT_TRUE(c.Send(Api("publish", std::string(17, 'b'))));
    r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(c.ClosedByPeer());
  }
  // Chunked, over the limit only in the second chunk.
  {
    RawClient c(port());
    ASSERT_TRUE(c.Send(std::string("POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ") + kKey +
                       "\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"));
    r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(c.ClosedByPeer());
  }
  // An unauthorised oversized request gets 401, not 413: the key is checked first.
  r = RoundTrip(port(), Api("publish", std::string(100, 'c'), ""));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(engine_->count(), 1u);
  EXPECT_EQ(server_->stats().forwarded, 1u);
}

TEST_P(GatewayHttp, ExpectContinueGetsInterimAnswer) {
  StartEngine();
  StartServer();
  RawClient c(port());
  const std::string body = R"({"channel":"big"})";
  ASSERT_TRUE(c.Send(std::string("POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ") + kKey +
                     "\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n"));
  auto interim = c.Read();  // sent before the body is
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.Send(body));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "api|publish|" + body);
  // Rejected: the final answer comes at once, without waiting for the body.
  RawClient d(port());
  ASSERT_TRUE(
      d.Send("POST /api/publish HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
             "Content-Length: 10\r\n\r\n"));
  r = d.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_TRUE(d.ClosedByPeer());
}

TEST_P(GatewayHttp, UnknownPathIs404) {
  StartEngine();
  StartServer();
  RawClient c(port());
  const std::vector<std::string> requests{
      Request("GET", "/"),
      Request("GET", "/nope"),
      Request("GET", "/healthz"),
      Request("POST", "/api", {std::string("X-API-Key: ") + kKey}),
      Request("POST", "/api/", {std::string("X-API-Key: ") + kKey}),
      Request("POST", "/api/a/b", {std::string("X-API-Key: ") + kKey}),
      Request("POST", "/api/bad%20name", {std::string("X-API-Key: ") + kKey}),
  };
  for (const auto& req : requests) {
    ASSERT_TRUE(c.Send(req));
    auto r = c.Read();
    ASSERT_TRUE(r) << req;
    EXPECT_EQ(r->status, 404) << req;
  }
  ASSERT_TRUE(c.Send(Api("barrier", "")));
  ASSERT_TRUE(c.Read());
  EXPECT_EQ(engine_->count(), 1u);
}

TEST_P(GatewayHttp, HealthAndMetricsPassThrough) {
  bool healthy = true;
  std::mutex mu;
  StartEngine([&](const EngineRequest& r) -> std::optional<EngineAnswer> {
    std::lock_guard lock(mu);
    if (r.kind == "health") {
      return healthy ? EngineAnswer{"200", "text/plain", "ok"}
                     : EngineAnswer{"503", "text/plain", "engine degraded"};
    }
    return Echo(r);
  });
  StartServer();
  // No key needed.
  auto r = RoundTrip(port(), Request("GET", "/health"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "text/plain");
  EXPECT_EQ(r->body, "ok");
  r = RoundTrip(port(), Request("GET", "/metrics?format=prometheus"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "text/plain; version=0.0.4");
  EXPECT_EQ(r->body, "up 1\n");
  {
    std::lock_guard lock(mu);
    healthy = false;
  }
  r = RoundTrip(port(), Request("GET", "/health"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "engine degraded");
  const auto seen = engine_->seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].kind, "health");
  EXPECT_EQ(seen[1].kind, "metrics");
  for (const auto& s : seen) {
    EXPECT_EQ(s.method, "");
    EXPECT_EQ(s.body, "");
  }
}

// B-4 (docs/protocol/bridge.md): a malformed reply with a known id is a 502.
TEST_P(GatewayHttp, EngineStatusTypeAndBodyPassedExactly) {
  const std::string binary("\x00\x01\xff{\"x\":\"\xc3\xa9\"}\r\n\r\n", 18);
  StartEngine([&](const EngineRequest& r) -> std::optional<EngineAnswer> {
    if (r.method == "teapot") return EngineAnswer{"418", "application/x-custom; a=b", binary};
    if (r.method == "bad") {
      return EngineAnswer{"400", "application/json", R"({"error":{"code":107,"message":"bad"}})"};
    }
    if (r.method == "empty") return EngineAnswer{"204", "", ""};
    return EngineAnswer{"abc", "text/plain", "not a status"};  // malformed reply
  });
  StartServer();
  RawClient c(port());
  ASSERT_TRUE(c.Send(Api("teapot", "{}")));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 418);
  EXPECT_EQ(r->Header("content-type"), "application/x-custom; a=b");
  EXPECT_EQ(r->body, binary);
  ASSERT_TRUE(c.Send(Api("bad", "{}")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, R"({"error":{"code":107,"message":"bad"}})");
  ASSERT_TRUE(c.Send(Api("empty", "{}")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->body, "");
  // A reply that breaks the bridge format is a 502, and the connection goes on.
  ASSERT_TRUE(c.Send(Api("malformed", "{}")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(r->body, kInternal);
  EXPECT_EQ(server_->stats().malformed_replies, 1u);
}

// B-5 (docs/protocol/bridge.md): replies in any order, matched by correlation id.
TEST_P(GatewayHttp, OutOfOrderRepliesAreMatchedById) {
  StartEngine(HoldSome);
  StartServer();
  RawClient a(port());
  RawClient b(port());
  ASSERT_TRUE(a.Send(Api("hold_a", "body-a")));
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->held() == 1; }));
  ASSERT_TRUE(b.Send(Api("hold_b", "body-b")));
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->held() == 2; }));
  // Reverse order: b's reply first.
  engine_->ReleaseHeld(/*reverse=*/true, [](const EngineRequest& r) {
    return EngineAnswer{r.method == "hold_a" ? "201" : "202", "application/json",
                        "reply-to-" + r.body};
  });
  auto rb = b.Read();
  auto ra = a.Read();
  ASSERT_TRUE(ra);
  ASSERT_TRUE(rb);
  EXPECT_EQ(ra->status, 201);
  EXPECT_EQ(ra->body, "reply-to-body-a");
  EXPECT_EQ(rb->status, 202);
  EXPECT_EQ(rb->body, "reply-to-body-b");
}

// B-5 (docs/protocol/bridge.md): a reply with an unknown id is dropped and counted.
TEST_P(GatewayHttp, EngineTimeoutIs503AndLateReplyIsIgnored) {
  StartEngine(HoldSome);
  auto o = Options();
  o.engine_timeout = 200ms;
  StartServer(o);
  RawClient c(port());
  ASSERT_TRUE(c.Send(Api("hold_slow", "{}")));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, kInternal);
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(server_->stats().engine_timeouts, 1u);
  // The late reply arrives and is dropped as unknown.
  ASSERT_EQ(engine_->held(), 1u);
  engine_->ReleaseHeld(false, [](const EngineRequest&) {
    return EngineAnswer{"200", "x", "late"};
  });
  ASSERT_TRUE(EventuallyTrue([&] { return server_->stats().unmatched_replies == 1; }));
  // The same connection is still served, with the right reply.
  ASSERT_TRUE(c.Send(Api("fast", "{}")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "api|fast|{}");
}

// B-12 (docs/protocol/bridge.md): the gateway never blocks on the bridge.
TEST_P(GatewayHttp, NoEngineIs503) {
  // Nobody binds the endpoint.
  auto o = Options();
  o.engine_timeout = 200ms;
  StartServer(o);
  auto r = RoundTrip(port(), Request("GET", "/health"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, kInternal);
}

TEST_P(GatewayHttp, KeepAliveServesThreeRequestsOnOneConnection) {
  StartEngine();
  StartServer();
  RawClient c(port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send(Api("m" + std::to_string(i), std::to_string(i))));
    auto r = c.Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "api|m" + std::to_string(i) + "|" + std::to_string(i));
    EXPECT_NE(Lower(r->Header("connection")), "close");
  }
  // Pipelined: three requests in one write, three answers in order.
  ASSERT_TRUE(c.Send(Api("p0", "a") + Request("GET", "/health") + Api("p2", "c")));
  auto r0 = c.Read();
  auto r1 = c.Read();
  auto r2 = c.Read();
  ASSERT_TRUE(r0 && r1 && r2);
  EXPECT_EQ(r0->body, "api|p0|a");
  EXPECT_EQ(r1->body, "ok");
  EXPECT_EQ(r2->body, "api|p2|c");
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
  // "Connection: close" is honoured.
  ASSERT_TRUE(c.Send(Request("GET", "/health", {"Connection: close"})));
  auto last = c.Read();
  ASSERT_TRUE(last);
  EXPECT_EQ(Lower(last->Header("connection")), "close");
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST_P(GatewayHttp, GarbageIs400AndServerKeepsServing) {
  StartEngine();
  StartServer();
  {
    RawClient c(port());
    ASSERT_TRUE(c.Send(std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 16)));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_TRUE(c.ClosedByPeer());
  }
  {
    RawClient c(port());  // a broken request line
    ASSERT_TRUE(c.Send("GET /health HTTP/9\r\n\r\n"));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
  }
  {
    RawClient c(port());  // a head over max_header_bytes
    ASSERT_TRUE(c.Send(Request("GET", "/health", {"X-Filler: " + std::string(9000, 'f')})));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
  }
  EXPECT_EQ(server_->stats().bad_requests, 3u);
  EXPECT_EQ(engine_->count(), 0u);
  auto r = RoundTrip(port(), Api("after", "{}"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "api|after|{}");
}

TEST_P(GatewayHttp, TwoHundredConcurrentRequestsAllAnswered) {
  constexpr int kClients = 200;
  StartEngine(HoldSome);
  StartServer();
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(clients.back()->connected());
    ASSERT_TRUE(clients.back()->Send(Api("hold" + std::to_string(i), "n=" + std::to_string(i))));
  }
  // All 200 wait at the engine at once, then are answered in reverse order.
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->held() == kClients; }, 10s));
  engine_->ReleaseHeld(true, [](const EngineRequest& r) {
    return EngineAnswer{"200", "application/json", r.method + ":" + r.body};
  });
  for (int i = 0; i < kClients; ++i) {
    auto r = clients[i]->Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hold" + std::to_string(i) + ":n=" + std::to_string(i));
  }
  EXPECT_EQ(server_->stats().engine_replies, static_cast<uint64_t>(kClients));
}

// Many keep-alive clients in parallel, each sending its next request as soon as the previous
// one is answered: engine replies keep arriving while the io thread sends, which is where an
// edge of ZMQ_FD can be consumed by a send (README "Driving the DEALER from Asio"). A reply
// left undrained would surface as a 503 after the engine timeout.
TEST_P(GatewayHttp, ParallelKeepAliveClientsAllAnswered) {
  constexpr int kClients = 16;
  constexpr int kRequests = 60;
  StartEngine();
  auto o = Options();
  o.engine_timeout = 3s;
  StartServer(o);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      RawClient c(port());
      for (int i = 0; i < kRequests; ++i) {
        const std::string method = "c" + std::to_string(t) + "_" + std::to_string(i);
        if (!c.Send(Api(method, "x"))) return;
        auto r = c.Read();
        if (!r || r->status != 200 || r->body != "api|" + method + "|x") return;
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
  EXPECT_EQ(server_->stats().engine_timeouts, 0u);
}

TEST_P(GatewayHttp, MaxInFlightIs503) {
  StartEngine(HoldSome);
  auto o = Options();
  o.max_in_flight = 1;
  StartServer(o);
  RawClient first(port());
  ASSERT_TRUE(first.Send(Api("hold_1", "{}")));
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->held() == 1; }));
  auto r = RoundTrip(port(), Api("second", "{}"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, kInternal);
  EXPECT_EQ(server_->stats().engine_busy, 1u);
  engine_->ReleaseHeld(false, [](const EngineRequest&) { return EngineAnswer{"200", "a", "b"}; });
  r = first.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = RoundTrip(port(), Api("third", "{}"));  // the slot is free again
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_P(GatewayHttp, MaxConnectionsClosesExtraConnections) {
  StartEngine();
  auto o = Options();
  o.max_connections = 2;
  StartServer(o);
  auto a = std::make_unique<RawClient>(port());
  RawClient b(port());
  for (RawClient* c : {a.get(), &b}) {  // both sessions are up
    ASSERT_TRUE(c->Send(Request("GET", "/health")));
    ASSERT_TRUE(c->Read());
  }
  RawClient extra(port());
  EXPECT_TRUE(extra.ClosedByPeer());
  EXPECT_EQ(server_->stats().connections_rejected, 1u);
  // Once one leaves, a new connection is served.
  a.reset();
  EXPECT_TRUE(EventuallyTrue([&] {
    auto r = RoundTrip(port(), Request("GET", "/health"));
    return r && r->status == 200;
  }));
}

TEST_P(GatewayHttp, IdleConnectionIsClosed) {
  StartEngine();
  auto o = Options();
  o.idle_timeout = 1s;
  StartServer(o);
  RawClient silent(port());
  RawClient used(port());
  ASSERT_TRUE(used.Send(Request("GET", "/health")));
  ASSERT_TRUE(used.Read());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.ClosedByPeer(5s));
  EXPECT_TRUE(used.ClosedByPeer(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 500ms);
}

TEST_P(GatewayHttp, StopWithRequestsInFlightReturnsCleanly) {
  StartEngine(HoldSome);
  StartServer();
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(clients.back()->Send(Api("hold" + std::to_string(i), "{}")));
  }
  RawClient idle(port());
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->held() == 5; }));
  StopWithin5s(*server_);
  for (auto& c : clients) EXPECT_TRUE(c->ClosedByPeer());
  EXPECT_TRUE(idle.ClosedByPeer());
  // Replies after the stop go nowhere; the server is gone and Stop is idempotent.
  engine_->ReleaseHeld(false, [](const EngineRequest&) { return EngineAnswer{"200", "a", "b"}; });
  server_->Stop();
  EXPECT_FALSE(RawClient(port()).connected());
}

TEST_P(GatewayHttp, StartReportsErrorsAsValues) {
  auto o = Options();
  o.engine_endpoint.clear();
  auto r = gw::HttpServer::Start(ctx_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), std::errc::invalid_argument);

  o = Options();
  o.address = "not-an-address";
  r = gw::HttpServer::Start(ctx_, o);
  ASSERT_FALSE(r.ok());

  o = Options();
  o.engine_endpoint = "bogus://x";
  r = gw::HttpServer::Start(ctx_, o);
  ASSERT_FALSE(r.ok());

  for (size_t threads : {size_t{0}, gw::HttpOptions::kMaxIoThreads + 1}) {
    o = Options();
    o.io_threads = threads;
    r = gw::HttpServer::Start(ctx_, o);
    ASSERT_FALSE(r.ok()) << threads;
    EXPECT_EQ(r.error(), std::errc::invalid_argument) << threads;
  }

  StartServer();
  o = Options();
  o.port = port();  // taken
  r = gw::HttpServer::Start(ctx_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), std::errc::address_in_use);
}

INSTANTIATE_TEST_SUITE_P(IoThreads, GatewayHttp, ::testing::Values(size_t{1}, size_t{2}),
                         IoThreadsName);

}  // namespace
