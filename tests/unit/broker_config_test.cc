// Unit tests for the node configuration (broker/config/config.h): defaults, every kind of error
// message, command line overrides, and deploy/chorus.example.toml.
#include "broker/config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace chorus::broker {
namespace {

const char* const kSource = "chorus.toml";

// The error of parsing `text` ("" when it parses).
std::string ErrorOf(const std::string& text) {
  return ParseConfig(text, kSource).error();
}

NodeConfig Parse(const std::string& text) {
  auto c = ParseConfig(text, kSource);
  EXPECT_TRUE(c.ok()) << c.error();
  return c.ok() ? *c : NodeConfig{};
}

std::string ExamplePath() {
  return std::string(CHORUS_SOURCE_DIR) + "/deploy/chorus.example.toml";
}

// ---- Defaults
// ------------------------------------------------------------------------------------

TEST(BrokerConfigDefaults, EmptyDocumentGivesTheDefaults) {
  const NodeConfig c = Parse("");
  EXPECT_EQ(c, NodeConfig{});
  EXPECT_EQ(c.node.id, "");
  EXPECT_EQ(c.node.log_level, LogLevel::kInfo);
  EXPECT_EQ(c.http.address, "127.0.0.1");
  EXPECT_EQ(c.http.port, 8000);
  EXPECT_EQ(c.http.static_dir, "");
  EXPECT_EQ(c.http.threads, 0u);  // auto
  EXPECT_EQ(c.http.max_connections, 10'000u);
  EXPECT_FALSE(c.api.Enabled());
  EXPECT_EQ(c.native.endpoint, "tcp://127.0.0.1:0");
  EXPECT_EQ(c.cluster.chp_command, "tcp://127.0.0.1:0");
  EXPECT_EQ(c.cluster.chp_publisher, "tcp://127.0.0.1:0");
  EXPECT_TRUE(c.cluster.seeds.empty());
  EXPECT_EQ(c.cluster.replication_factor, 2u);
  EXPECT_EQ(c.cluster.heartbeat_ms, 500);
  EXPECT_EQ(c.cluster.dead_after_ms, 2000);
  EXPECT_EQ(c.client.token_hmac_secret, "");
  EXPECT_EQ(c.client.token_rsa_public_key_file, "");
  EXPECT_FALSE(c.client.client_insecure);
  EXPECT_EQ(c.client.ping_interval_s, 25);
  EXPECT_EQ(c.client.pong_timeout_s, 8);
  EXPECT_EQ(c.client.max_queue_bytes, 1u << 20);
  EXPECT_EQ(c.channel, ChannelOptions{});
  EXPECT_TRUE(c.namespaces.empty());
  EXPECT_EQ(c.limits, Limits{});
}

TEST(BrokerConfigDefaults, DefaultsAreValidAndEmptySectionsChangeNothing) {
  EXPECT_EQ(ValidateConfig(NodeConfig{}), std::nullopt);
  EXPECT_EQ(Parse("[node]\n[http]\n[api]\n[native]\n[cluster]\n[client]\n[channel]\n[limits]\n"
                  "[namespaces]\n"),
            NodeConfig{});
}

TEST(BrokerConfigDefaults, ReadsEverySection) {
  const NodeConfig c = Parse(R"(
[node]
id = "node-1.eu"
log_level = "debug"
[http]
address = "0.0.0.0"
port = 0
threads = 4
max_connections = 500
[api]
key = "s3cret"
[native]
endpoint = "ipc:///tmp/chorus.sock"
[cluster]
chp_command = "tcp://*:5570"
chp_publisher = "tcp://*:5571"
seeds = ["tcp://10.0.0.2:5570", "tcp://10.0.0.3:5570"]
replication_factor = 3
heartbeat_ms = 250
dead_after_ms = 1000
[client]
token_hmac_secret = "hmac"
token_rsa_public_key_file = "/etc/chorus/jwt.pem"
client_insecure = true
ping_interval_s = 10
pong_timeout_s = 5
max_queue_bytes = 2_000_000
[channel]
presence = true
history_size = 10
history_ttl_ms = 60_000
allow_recovery = true
[limits]
max_channel_length = 100
max_channels_per_connection = 16
max_publication_bytes = 1000
)");
  EXPECT_EQ(c.node.id, "node-1.eu");
  EXPECT_EQ(c.node.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.http.address, "0.0.0.0");
  EXPECT_EQ(c.http.port, 0);
  EXPECT_EQ(c.http.threads, 4u);
  EXPECT_EQ(c.http.max_connections, 500u);
  EXPECT_TRUE(c.api.Enabled());
  EXPECT_EQ(c.api.key, "s3cret");
  EXPECT_EQ(c.native.endpoint, "ipc:///tmp/chorus.sock");
  EXPECT_EQ(c.cluster.chp_command, "tcp://*:5570");
  EXPECT_EQ(c.cluster.seeds,
            (std::vector<std::string>{"tcp://10.0.0.2:5570", "tcp://10.0.0.3:5570"}));
  EXPECT_EQ(c.cluster.replication_factor, 3u);
  EXPECT_EQ(c.cluster.heartbeat_ms, 250);
  EXPECT_EQ(c.cluster.dead_after_ms, 1000);
  EXPECT_EQ(c.client.token_hmac_secret, "hmac");
  EXPECT_EQ(c.client.token_rsa_public_key_file, "/etc/chorus/jwt.pem");
  EXPECT_TRUE(c.client.client_insecure);
  EXPECT_EQ(c.client.ping_interval_s, 10);
  EXPECT_EQ(c.client.pong_timeout_s, 5);
  EXPECT_EQ(c.client.max_queue_bytes, 2'000'000u);
  EXPECT_TRUE(c.channel.presence);
  EXPECT_EQ(c.channel.history_size, 10u);
  EXPECT_EQ(c.channel.history_ttl_ms, 60'000);
  EXPECT_TRUE(c.channel.allow_recovery);
  EXPECT_EQ(c.limits.max_channel_length, 100u);
  EXPECT_EQ(c.limits.max_channels_per_connection, 16u);
  EXPECT_EQ(c.limits.max_publication_bytes, 1000u);
}

TEST(BrokerConfigDefaults, LogLevelsAllParse) {
  for (LogLevel level :
       {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    const std::string name(ToString(level));
    EXPECT_EQ(Parse("node.log_level = \"" + name + "\"").node.log_level, level) << name;
  }
}

TEST(BrokerConfigDefaults, NamespacesDoNotInheritFromChannel) {
  const NodeConfig c = Parse(R"(
[channel]
presence = true
allow_publish_for_client = true
[namespaces.chat]
history_size = 5
history_ttl_ms = 1000
[namespaces.feed]
)");
  ASSERT_EQ(c.namespaces.size(), 2u);
  const ChannelOptions& chat = c.namespaces.at("chat");
  EXPECT_EQ(chat.history_size, 5u);
  EXPECT_FALSE(chat.presence);  // [channel] says true; a namespace takes the built-in default
  EXPECT_FALSE(chat.allow_publish_for_client);
  EXPECT_EQ(c.namespaces.at("feed"), ChannelOptions{});

  const NamespaceRegistry registry = c.MakeRegistry();
  auto resolved = registry.Resolve("chat:room");
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->options->history_size, 5u);
  EXPECT_EQ(registry.Resolve("other:room").error(), Errc::kUnknownChannel);
  EXPECT_TRUE(registry.Resolve("room")->options->presence);
}

// ---- Errors
// --------------------------------------------------------------------------------------

TEST(BrokerConfigErrors, TypeMismatchNamesKeyAndTypes) {
  EXPECT_EQ(ErrorOf("[namespaces.chat]\nhistory_size = \"ten\""),
            "chorus.toml: namespaces.chat.history_size: expected an integer (got string)");
  EXPECT_EQ(ErrorOf("[http]\nport = \"80\""),
            "chorus.toml: http.port: expected an integer (got string)");
  EXPECT_EQ(ErrorOf("[http]\nport = 80.0"),
            "chorus.toml: http.port: expected an integer (got float)");
  EXPECT_EQ(ErrorOf("[http]\nthreads = \"auto\""),
            "chorus.toml: http.threads: expected an integer (got string)");
  EXPECT_EQ(ErrorOf("[http]\nmax_connections = 1e4"),
            "chorus.toml: http.max_connections: expected an integer (got float)");
  EXPECT_EQ(ErrorOf("[channel]\npresence = 1"),
            "chorus.toml: channel.presence: expected a boolean (got integer)");
  EXPECT_EQ(ErrorOf("[node]\nid = 5"), "chorus.toml: node.id: expected a string (got integer)");
  EXPECT_EQ(ErrorOf("[node]\nlog_level = [\"info\"]"),
            "chorus.toml: node.log_level: expected a string (got array)");
  EXPECT_EQ(ErrorOf("[cluster]\nseeds = \"tcp://10.0.0.2:5570\""),
            "chorus.toml: cluster.seeds: expected an array of strings (got string)");
  EXPECT_EQ(ErrorOf("[cluster]\nseeds = [\"tcp://10.0.0.2:5570\", 5571]"),
            "chorus.toml: cluster.seeds[1]: expected a string (got integer)");
  EXPECT_EQ(ErrorOf("[client]\nping_interval_s = 1970-01-01"),
            "chorus.toml: client.ping_interval_s: expected an integer (got date)");
  EXPECT_EQ(ErrorOf("[limits]\nmax_publication_bytes = { a = 1 }"),
            "chorus.toml: limits.max_publication_bytes: expected an integer (got table)");
}

TEST(BrokerConfigErrors, SectionThatIsNotATable) {
  EXPECT_EQ(ErrorOf("http = 8000"), "chorus.toml: http: expected a table (got integer)");
  EXPECT_EQ(ErrorOf("namespaces = []"), "chorus.toml: namespaces: expected a table (got array)");
  EXPECT_EQ(ErrorOf("[namespaces]\nchat = true"),
            "chorus.toml: namespaces.chat: expected a table (got boolean)");
}

TEST(BrokerConfigErrors, RangeNamesBoundsAndValue) {
  EXPECT_EQ(ErrorOf("[http]\nport = 70000"),
            "chorus.toml: http.port: must be 0..65535 (got 70000)");
  EXPECT_EQ(ErrorOf("[http]\nport = -1"), "chorus.toml: http.port: must be 0..65535 (got -1)");
  EXPECT_EQ(ErrorOf("[http]\nthreads = -1"), "chorus.toml: http.threads: must be 0..64 (got -1)");
  EXPECT_EQ(ErrorOf("[http]\nthreads = 65"), "chorus.toml: http.threads: must be 0..64 (got 65)");
  EXPECT_EQ(ErrorOf("[http]\nmax_connections = 0"),
            "chorus.toml: http.max_connections: must be >= 1 (got 0)");
  EXPECT_EQ(ErrorOf("[http]\nmax_connections = -5"),
            "chorus.toml: http.max_connections: must be >= 1 (got -5)");
  EXPECT_EQ(ErrorOf("[cluster]\nreplication_factor = 0"),
            "chorus.toml: cluster.replication_factor: must be 1..5 (got 0)");
  EXPECT_EQ(ErrorOf("[cluster]\nreplication_factor = 6"),
            "chorus.toml: cluster.replication_factor: must be 1..5 (got 6)");
  EXPECT_EQ(ErrorOf("[cluster]\nheartbeat_ms = 5"),
            "chorus.toml: cluster.heartbeat_ms: must be 10..60000 (got 5)");
  EXPECT_EQ(ErrorOf("[client]\nmax_queue_bytes = 0"),
            "chorus.toml: client.max_queue_bytes: must be >= 1 (got 0)");
  EXPECT_EQ(ErrorOf("[client]\nping_interval_s = 0"),
            "chorus.toml: client.ping_interval_s: must be 1..3600 (got 0)");
  EXPECT_EQ(ErrorOf("[channel]\nhistory_size = -1"),
            "chorus.toml: channel.history_size: must be 0..4294967295 (got -1)");
  EXPECT_EQ(ErrorOf("[limits]\nmax_channel_length = -3"),
            "chorus.toml: limits.max_channel_length: must be >= 0 (got -3)");
  EXPECT_EQ(ErrorOf("[node]\nlog_level = \"verbose\""),
            "chorus.toml: node.log_level: must be one of trace, debug, info, warn, error "
            "(got \"verbose\")");
}

TEST(BrokerConfigErrors, UnknownKeyAtEveryLevel) {
  EXPECT_EQ(ErrorOf("[channel]\nhistroy_size = 10"),
            "chorus.toml: channel.histroy_size: unknown key");
  EXPECT_EQ(ErrorOf("[htp]\nport = 1"), "chorus.toml: htp: unknown key");
  EXPECT_EQ(ErrorOf("port = 1"), "chorus.toml: port: unknown key");
  EXPECT_EQ(ErrorOf("[http]\nprot = 1"), "chorus.toml: http.prot: unknown key");
  EXPECT_EQ(ErrorOf("[http.tls]\ncert = \"x\""), "chorus.toml: http.tls: unknown key");
  EXPECT_EQ(ErrorOf("[node]\nname = \"a\""), "chorus.toml: node.name: unknown key");
  EXPECT_EQ(ErrorOf("[api]\napi_key = \"a\""), "chorus.toml: api.api_key: unknown key");
  EXPECT_EQ(ErrorOf("[native]\nport = 1"), "chorus.toml: native.port: unknown key");
  EXPECT_EQ(ErrorOf("[cluster]\nseed = []"), "chorus.toml: cluster.seed: unknown key");
  EXPECT_EQ(ErrorOf("[client]\ninsecure = true"), "chorus.toml: client.insecure: unknown key");
  EXPECT_EQ(ErrorOf("[limits]\nmax_channel = 1"), "chorus.toml: limits.max_channel: unknown key");
  EXPECT_EQ(ErrorOf("[namespaces.chat]\nhistroy_size = 10"),
            "chorus.toml: namespaces.chat.histroy_size: unknown key");
  // Dotted keys are the same tree as tables.
  EXPECT_EQ(ErrorOf("channel.histroy_size = 10"), "chorus.toml: channel.histroy_size: unknown key");
}

TEST(BrokerConfigErrors, SyntaxErrorHasLineAndColumn) {
  const std::string bad = ErrorOf("[http]\nport = 8000\naddress = = \"x\"\n");
  EXPECT_EQ(bad.rfind("chorus.toml:3:", 0), 0u) << bad;
  EXPECT_NE(bad.find(": syntax error: "), std::string::npos) << bad;

  const std::string duplicate = ErrorOf("[http]\nport = 1\nport = 2\n");
  EXPECT_EQ(duplicate.rfind("chorus.toml:3:", 0), 0u) << duplicate;

  const std::string unclosed = ErrorOf("\n\n[http\n");
  EXPECT_EQ(unclosed.rfind("chorus.toml:3:", 0), 0u) << unclosed;

  const std::string huge = ErrorOf("[http]\nport = 99999999999999999999\n");
  EXPECT_EQ(huge.rfind("chorus.toml:2:", 0), 0u) << huge;
}

TEST(BrokerConfigErrors, MessagesAreOneLine) {
  for (const std::string text :
       {"[http\n", "[http]\nport = 70000", "[channel]\nx = 1", "[node]\nid = \"a\\nb\""}) {
    const std::string e = ErrorOf(text);
    EXPECT_FALSE(e.empty()) << text;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_EQ(ErrorOf("[node]\nid = \"a\\nb\""),
            "chorus.toml: node.id: must match ^[-a-zA-Z0-9_.]{1,64}$ (got \"a\\x0ab\")");
}

TEST(BrokerConfigErrors, InvalidNamespaceName) {
  EXPECT_EQ(ErrorOf("[namespaces.\"a b\"]\npresence = true"),
            "chorus.toml: namespaces.a b: namespace name must match ^[-a-zA-Z0-9_]{2,}$");
  EXPECT_EQ(ErrorOf("[namespaces.x]"),
            "chorus.toml: namespaces.x: namespace name must match ^[-a-zA-Z0-9_]{2,}$");
  EXPECT_EQ(ErrorOf("[namespaces.\"a:b\"]"),
            "chorus.toml: namespaces.a:b: namespace name must match ^[-a-zA-Z0-9_]{2,}$");
  EXPECT_TRUE(ParseConfig("[namespaces.my-ns_2]", kSource).ok());
}

TEST(BrokerConfigErrors, ChannelOptionRulesFromValidate) {
  EXPECT_EQ(ErrorOf("[channel]\nhistory_size = 10"),
            "chorus.toml: channel.history_ttl_ms: history_size > 0 requires history_ttl_ms > 0");
  EXPECT_EQ(ErrorOf("[namespaces.chat]\nhistory_ttl_ms = 1000"),
            "chorus.toml: namespaces.chat.history_size: history_ttl_ms > 0 requires "
            "history_size > 0");
  EXPECT_EQ(ErrorOf("[namespaces.chat]\nhistory_ttl_ms = -5"),
            "chorus.toml: namespaces.chat.history_ttl_ms: must be >= 0");
  EXPECT_EQ(ErrorOf("[namespaces.chat]\nuser_presence = true"),
            "chorus.toml: namespaces.chat.user_presence: user_presence requires presence");
  EXPECT_EQ(ErrorOf("[channel]\nforce_recovery = true"),
            "chorus.toml: channel.force_recovery: recovery requires history (history_size and "
            "history_ttl_ms > 0)");
  EXPECT_EQ(ErrorOf("[channel]\npresence_page_size = 0"),
            "chorus.toml: channel.presence_page_size: must be between 1 and 10000");
  EXPECT_EQ(ErrorOf("[limits]\nmax_channel_length = 0"),
            "chorus.toml: limits.max_channel_length: must be > 0");
}

TEST(BrokerConfigErrors, CrossFieldRules) {
  EXPECT_EQ(ErrorOf("[cluster]\nheartbeat_ms = 500\ndead_after_ms = 500"),
            "chorus.toml: cluster.dead_after_ms: must be > cluster.heartbeat_ms = 500 (got 500)");
  EXPECT_EQ(ErrorOf("[cluster]\nchp_max_pending_bytes = 1048576"),
            "chorus.toml: cluster.chp_max_pending_bytes: must be >= "
            "cluster.chp_max_peer_pending_bytes = 33554432 (got 1048576)");
  EXPECT_EQ(ErrorOf("[cluster]\nchp_reply_pipe_hwm = 0"),
            "chorus.toml: cluster.chp_reply_pipe_hwm: must be 1..100000 (got 0)");
  EXPECT_EQ(ErrorOf("[cluster]\nheartbeat_ms = 3000"),
            "chorus.toml: cluster.dead_after_ms: must be > cluster.heartbeat_ms = 3000 "
            "(got 2000)");
  EXPECT_EQ(ErrorOf("[client]\npong_timeout_s = 25"),
            "chorus.toml: client.pong_timeout_s: must be < client.ping_interval_s = 25 (got 25)");
  EXPECT_EQ(ErrorOf("[client]\nmax_queue_bytes = 1000"),
            "chorus.toml: client.max_queue_bytes: must be >= limits.max_publication_bytes = "
            "65536 (got 1000)");
  EXPECT_EQ(ErrorOf("[cluster]\nseeds = [\"tcp://a:1\", \"tcp://b:1\", \"tcp://a:1\"]"),
            "chorus.toml: cluster.seeds[2]: duplicate of cluster.seeds[0]");
}

TEST(BrokerConfigErrors, ListenersThatWouldBindTheSamePort) {
  EXPECT_EQ(ErrorOf("[native]\nendpoint = \"tcp://127.0.0.1:8000\""),
            "chorus.toml: native.endpoint: tcp port 8000 is already used by http.port");
  EXPECT_EQ(ErrorOf("[cluster]\nchp_command = \"tcp://*:5570\"\n"
                    "chp_publisher = \"tcp://10.0.0.1:5570\""),
            "chorus.toml: cluster.chp_publisher: tcp port 5570 is already used by "
            "cluster.chp_command");
  EXPECT_EQ(ErrorOf("[native]\nendpoint = \"ipc:///tmp/c\"\n"
                    "[cluster]\nchp_command = \"ipc:///tmp/c\""),
            "chorus.toml: cluster.chp_command: \"ipc:///tmp/c\" is already used by "
            "native.endpoint");
  // Same port on different hosts, and port 0 / * (each picks a free port), are fine.
  EXPECT_TRUE(ParseConfig("[cluster]\nchp_command = \"tcp://10.0.0.1:5570\"\n"
                          "chp_publisher = \"tcp://10.0.0.2:5570\"",
                          kSource)
                  .ok());
  EXPECT_TRUE(
      ParseConfig("[http]\nport = 0\n[native]\nendpoint = \"tcp://127.0.0.1:*\"", kSource).ok());
}

TEST(BrokerConfigErrors, EndpointsAndAddresses) {
  EXPECT_EQ(ErrorOf("[native]\nendpoint = \"127.0.0.1:5555\""),
            "chorus.toml: native.endpoint: expected tcp://host:port, ipc://path or inproc://name "
            "(got \"127.0.0.1:5555\")");
  EXPECT_EQ(ErrorOf("[native]\nendpoint = \"udp://127.0.0.1:5555\""),
            "chorus.toml: native.endpoint: expected tcp://host:port, ipc://path or inproc://name "
            "(got \"udp://127.0.0.1:5555\")");
  EXPECT_EQ(ErrorOf("[cluster]\nchp_command = \"tcp://127.0.0.1\""),
            "chorus.toml: cluster.chp_command: expected tcp://host:port (got \"tcp://127.0.0.1\")");
  EXPECT_EQ(ErrorOf("[cluster]\nchp_publisher = \"tcp://127.0.0.1:99999\""),
            "chorus.toml: cluster.chp_publisher: port must be 0..65535 or * "
            "(got \"tcp://127.0.0.1:99999\")");
  EXPECT_EQ(ErrorOf("[cluster]\nseeds = [\"tcp://10.0.0.2:5570\", \"tcp://10.0.0.3:0\"]"),
            "chorus.toml: cluster.seeds[1]: expected a host and a port 1..65535 to connect to "
            "(got \"tcp://10.0.0.3:0\")");
  EXPECT_EQ(ErrorOf("[cluster]\nseeds = [\"tcp://*:5570\"]"),
            "chorus.toml: cluster.seeds[0]: expected a host and a port 1..65535 to connect to "
            "(got \"tcp://*:5570\")");
  EXPECT_EQ(ErrorOf("[http]\naddress = \"\""),
            "chorus.toml: http.address: must be a host name or IP address (got \"\")");
  EXPECT_EQ(ErrorOf("[http]\naddress = \"http://x\""),
            "chorus.toml: http.address: must be a host name or IP address (got \"http://x\")");
  EXPECT_EQ(ErrorOf("[node]\nid = \"has space\""),
            "chorus.toml: node.id: must match ^[-a-zA-Z0-9_.]{1,64}$ (got \"has space\")");
  EXPECT_FALSE(ErrorOf("[node]\nid = \"" + std::string(65, 'a') + "\"").empty());
  EXPECT_TRUE(ParseConfig("[node]\nid = \"" + std::string(64, 'a') + "\"", kSource).ok());
}

TEST(BrokerConfigErrors, ValidateConfigChecksConfigsBuiltInCode) {
  NodeConfig c;
  c.cluster.replication_factor = 9;
  EXPECT_EQ(ValidateConfig(c), "cluster.replication_factor: must be 1..5 (got 9)");
  c = NodeConfig{};
  c.cluster.heartbeat_ms = -1;
  EXPECT_EQ(ValidateConfig(c), "cluster.heartbeat_ms: must be 10..60000 (got -1)");
  c = NodeConfig{};
  c.http.threads = 65;
  EXPECT_EQ(ValidateConfig(c), "http.threads: must be 0..64 (got 65)");
  c = NodeConfig{};
  c.http.max_connections = 0;
  EXPECT_EQ(ValidateConfig(c), "http.max_connections: must be >= 1 (got 0)");
  c = NodeConfig{};
  c.namespaces["chat"].history_size = 3;
  EXPECT_EQ(ValidateConfig(c),
            "namespaces.chat.history_ttl_ms: history_size > 0 requires history_ttl_ms > 0");
}

TEST(BrokerConfigChpMaxValueBytes, ZeroIsDerivedFromLimitsElseUsedAsSet) {
  NodeConfig c;
  ASSERT_EQ(c.cluster.chp_max_value_bytes, 0u);
  // Defaults (64 KiB publications): the 1 MiB API body + 64 KiB.
  EXPECT_EQ(EffectiveChpMaxValueBytes(c), 1'114'112u);
  c.limits.max_publication_bytes = 1 << 20;  // 1 MiB + 2 x 2 MiB of info + 64 KiB
  EXPECT_EQ(EffectiveChpMaxValueBytes(c), 5'308'416u);
  c.limits.max_publication_bytes = 64 << 20;  // capped at chp's limit
  EXPECT_EQ(EffectiveChpMaxValueBytes(c), size_t{8} << 20);
  c.cluster.chp_max_value_bytes = 131'072;
  EXPECT_EQ(EffectiveChpMaxValueBytes(c), 131'072u);
  NodeConfig d;
  d.cluster.chp_max_value_bytes = 1000;
  EXPECT_EQ(ValidateConfig(d),
            "cluster.chp_max_value_bytes: must be 0 (derived) or 65536..8388608 (got 1000)");
  d.cluster.chp_max_value_bytes = 65536;
  EXPECT_EQ(ValidateConfig(d), std::nullopt);
}

TEST(BrokerConfigHttpThreads, ZeroIsHalfTheHardwareThreadsBetweenOneAndEight) {
  HttpSection http;
  ASSERT_EQ(http.threads, 0u);                   // auto
  EXPECT_EQ(EffectiveHttpThreads(http, 0), 1u);  // unknown hardware
  EXPECT_EQ(EffectiveHttpThreads(http, 1), 1u);
  EXPECT_EQ(EffectiveHttpThreads(http, 2), 1u);
  EXPECT_EQ(EffectiveHttpThreads(http, 3), 1u);
  EXPECT_EQ(EffectiveHttpThreads(http, 4), 2u);
  EXPECT_EQ(EffectiveHttpThreads(http, 12), 6u);
  EXPECT_EQ(EffectiveHttpThreads(http, 16), 8u);
  EXPECT_EQ(EffectiveHttpThreads(http, 128), 8u);
  http.threads = 3;  // set: used as it is, whatever the machine
  EXPECT_EQ(EffectiveHttpThreads(http, 1), 3u);
  EXPECT_EQ(EffectiveHttpThreads(http, 128), 3u);
  http.threads = 64;
  EXPECT_EQ(EffectiveHttpThreads(http, 2), 64u);
}

// ---- Files
// ---------------------------------------------------------------------------------------

class BrokerConfigLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() /
        ("chorus_config_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(BrokerConfigLoad, ReadsAFileAndNamesItInErrors) {
  const std::string good = Write("good.toml", "[http]\nport = 0\n");
  auto c = LoadConfig(good);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->http.port, 0);

  const std::string bad = Write("bad.toml", "[http]\nport = 70000\n");
  EXPECT_EQ(LoadConfig(bad).error(), bad + ": http.port: must be 0..65535 (got 70000)");

  const std::string syntax = Write("syntax.toml", "[http]\nport = \n");
  EXPECT_EQ(LoadConfig(syntax).error().rfind(syntax + ":2:", 0), 0u) << LoadConfig(syntax).error();
}

TEST_F(BrokerConfigLoad, MissingFileOrDirectory) {
  const std::string missing = (dir_ / "missing.toml").string();
  EXPECT_EQ(LoadConfig(missing).error(), missing + ": cannot open: No such file or directory");
  EXPECT_EQ(LoadConfig(dir_.string()).error(), dir_.string() + ": cannot read: is a directory");
}

TEST_F(BrokerConfigLoad, StaticDir) {
  const std::string dir = dir_.string();
  auto c = ParseConfig("[http]\nstatic_dir = \"" + dir + "\"\n", kSource);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->http.static_dir, dir);

  const std::string missing = (dir_ / "missing").string();
  EXPECT_EQ(
      ErrorOf("[http]\nstatic_dir = \"" + missing + "\"\n"),
      "chorus.toml: http.static_dir: must be an existing directory (got \"" + missing + "\")");
  const std::string file = Write("index.html", "<p>hi</p>");
  EXPECT_EQ(ErrorOf("[http]\nstatic_dir = \"" + file + "\"\n"),
            "chorus.toml: http.static_dir: must be an existing directory (got \"" + file + "\")");
  NodeConfig config;
  EXPECT_EQ(ApplyOverride(config, "http.static_dir", missing).error(),
            "--set: http.static_dir: must be an existing directory (got \"" + missing + "\")");
  EXPECT_EQ(config.http.static_dir, "");  // unchanged on error
  ASSERT_TRUE(ApplyOverride(config, "http.static_dir", dir).ok());
  EXPECT_EQ(config.http.static_dir, dir);
  config.http.static_dir = file;  // built in code: ValidateConfig checks it too
  EXPECT_EQ(ValidateConfig(config),
            "http.static_dir: must be an existing directory (got \"" + file + "\")");
}

// ---- Overrides
// -----------------------------------------------------------------------------------

TEST(BrokerConfigOverride, SetsValuesOfEveryKind) {
  NodeConfig c;
  ASSERT_TRUE(ApplyOverride(c, "http.port", "0").ok());
  EXPECT_EQ(c.http.port, 0);
  ASSERT_TRUE(ApplyOverride(c, "node.log_level", "debug").ok());
  EXPECT_EQ(c.node.log_level, LogLevel::kDebug);
  ASSERT_TRUE(ApplyOverride(c, "node.id", "1234").ok());  // string keys take the text as is
  EXPECT_EQ(c.node.id, "1234");
  ASSERT_TRUE(ApplyOverride(c, "api.key", "\"quoted key\"").ok());  // or a TOML string
  EXPECT_EQ(c.api.key, "quoted key");
  ASSERT_TRUE(ApplyOverride(c, "http.address", "0.0.0.0").ok());
  EXPECT_EQ(c.http.address, "0.0.0.0");
  ASSERT_TRUE(ApplyOverride(c, "http.threads", "2").ok());
  EXPECT_EQ(c.http.threads, 2u);
  ASSERT_TRUE(ApplyOverride(c, "http.max_connections", "20_000").ok());
  EXPECT_EQ(c.http.max_connections, 20'000u);
  ASSERT_TRUE(ApplyOverride(c, "client.client_insecure", "true").ok());
  EXPECT_TRUE(c.client.client_insecure);
  ASSERT_TRUE(ApplyOverride(c, "cluster.seeds", "tcp://a:1, tcp://b:2").ok());
  EXPECT_EQ(c.cluster.seeds, (std::vector<std::string>{"tcp://a:1", "tcp://b:2"}));
  ASSERT_TRUE(ApplyOverride(c, "cluster.seeds", "[\"tcp://c:3\"]").ok());
  EXPECT_EQ(c.cluster.seeds, (std::vector<std::string>{"tcp://c:3"}));
  ASSERT_TRUE(ApplyOverride(c, "cluster.seeds", "").ok());
  EXPECT_TRUE(c.cluster.seeds.empty());
  ASSERT_TRUE(ApplyOverride(c, "client.max_queue_bytes", "2_000_000").ok());
  EXPECT_EQ(c.client.max_queue_bytes, 2'000'000u);
  ASSERT_TRUE(ApplyOverride(c, "channel.presence", "true").ok());
  EXPECT_TRUE(c.channel.presence);
  ASSERT_TRUE(ApplyOverride(c, "limits.max_channel_length", "64").ok());
  EXPECT_EQ(c.limits.max_channel_length, 64u);
}

TEST(BrokerConfigOverride, NamespaceKeyCreatesNamespaceWithBuiltInDefaults) {
  NodeConfig c;
  c.channel.presence = true;
  ASSERT_TRUE(ApplyOverride(c, "namespaces.chat.join_leave", "true").ok());
  ASSERT_EQ(c.namespaces.count("chat"), 1u);
  EXPECT_TRUE(c.namespaces.at("chat").join_leave);
  EXPECT_FALSE(c.namespaces.at("chat").presence);  // no inheritance from [channel]
}

TEST(BrokerConfigOverride, SameMessagesAsTheFileAndConfigUnchangedOnError) {
  NodeConfig c;
  const NodeConfig before = c;
  EXPECT_EQ(ApplyOverride(c, "http.port", "70000").error(),
            "--set: http.port: must be 0..65535 (got 70000)");
  EXPECT_EQ(ApplyOverride(c, "http.port", "abc").error(),
            "--set: http.port: expected an integer (got string)");
  EXPECT_EQ(ApplyOverride(c, "http.threads", "auto").error(),
            "--set: http.threads: expected an integer (got string)");
  EXPECT_EQ(ApplyOverride(c, "http.threads", "100").error(),
            "--set: http.threads: must be 0..64 (got 100)");
  EXPECT_EQ(ApplyOverride(c, "http.max_connections", "0").error(),
            "--set: http.max_connections: must be >= 1 (got 0)");
  EXPECT_EQ(ApplyOverride(c, "http.port", "1\nhttp.address = \"x\"").error(),
            "--set: http.port: expected an integer (got string)");
  EXPECT_EQ(ApplyOverride(c, "channel.presence", "yes").error(),
            "--set: channel.presence: expected a boolean (got string)");
  EXPECT_EQ(ApplyOverride(c, "channel.histroy_size", "10").error(),
            "--set: channel.histroy_size: unknown key");
  EXPECT_EQ(ApplyOverride(c, "htp.port", "1").error(), "--set: htp.port: unknown key");
  EXPECT_EQ(ApplyOverride(c, "http.port.x", "1").error(), "--set: http.port.x: unknown key");
  EXPECT_EQ(ApplyOverride(c, "http", "1").error(),
            "--set: http: is a table; set one of its keys (http.<key>=<value>)");
  EXPECT_EQ(ApplyOverride(c, "namespaces.chat", "1").error(),
            "--set: namespaces.chat: is a table; set one of its keys "
            "(namespaces.<name>.<key>=<value>)");
  EXPECT_EQ(ApplyOverride(c, "namespaces.chat.histroy_size", "1").error(),
            "--set: namespaces.chat.histroy_size: unknown key");
  EXPECT_EQ(ApplyOverride(c, "namespaces.x.presence", "true").error(),
            "--set: namespaces.x: namespace name must match ^[-a-zA-Z0-9_]{2,}$");
  EXPECT_EQ(ApplyOverride(c, "channel.history_size", "10").error(),
            "--set: channel.history_ttl_ms: history_size > 0 requires history_ttl_ms > 0");
  EXPECT_EQ(ApplyOverride(c, "cluster.heartbeat_ms", "3000").error(),
            "--set: cluster.dead_after_ms: must be > cluster.heartbeat_ms = 3000 (got 2000)");
  EXPECT_EQ(ApplyOverride(c, "cluster.seeds", "tcp://a:1,5").error(),
            "--set: cluster.seeds[1]: expected tcp://host:port, ipc://path or inproc://name "
            "(got \"5\")");
  EXPECT_EQ(c, before);
}

TEST(BrokerConfigOverride, SeveralOverridesAreValidatedTogether) {
  NodeConfig c;
  // One at a time, the first would fail (dead_after_ms 2000 <= heartbeat_ms 3000).
  ASSERT_TRUE(ApplyOverrides(c, {"cluster.heartbeat_ms=3000", "cluster.dead_after_ms=10000"}).ok());
  EXPECT_EQ(c.cluster.heartbeat_ms, 3000);
  EXPECT_EQ(c.cluster.dead_after_ms, 10000);
  ASSERT_TRUE(ApplyOverrides(c, {"channel.history_size=10", "channel.history_ttl_ms=1000",
                                 "http.address = 0.0.0.0"})
                  .ok());
  EXPECT_EQ(c.channel.history_size, 10u);
  ASSERT_TRUE(ApplyOverrides(c, {"api.key=\" padded \""}).ok());
  EXPECT_EQ(c.api.key, " padded ");
  EXPECT_EQ(c.http.address, "0.0.0.0");  // spaces around '=' are dropped

  const NodeConfig before = c;
  EXPECT_EQ(ApplyOverrides(c, {"http.port=0", "http.port"}).error(),
            "--set: \"http.port\": expected <key>=<value>");
  EXPECT_EQ(ApplyOverrides(c, {"=5"}).error(), "--set: \"=5\": expected <key>=<value>");
  EXPECT_EQ(ApplyOverrides(c, {"http.port=0", "cluster.dead_after_ms=100"}).error(),
            "--set: cluster.dead_after_ms: must be > cluster.heartbeat_ms = 3000 (got 100)");
  EXPECT_EQ(c, before);
}

// ---- Describe, keys, example
// ---------------------------------------------------------------------

TEST(BrokerConfigDescribe, SummarisesWithoutSecrets) {
  NodeConfig c;
  EXPECT_EQ(DescribeConfig(c),
            "node=(random) log_level=info http=127.0.0.1:8000 api=off native=tcp://127.0.0.1:0 "
            "chp_command=tcp://127.0.0.1:0 chp_publisher=tcp://127.0.0.1:0 seeds=[] "
            "replication_factor=2 heartbeat_ms=500 dead_after_ms=2000 member_id=1 "
            "cluster_endpoint=tcp://127.0.0.1:0 raft=127.0.0.1:0 voters=[] partitions=256 "
            "client_auth=none scheduler=off "
            "channel_history=off namespaces=[]");
  c.node.id = "n1";
  c.api.key = "api-secret";
  c.client.token_hmac_secret = "hmac-secret";
  c.client.token_rsa_public_key_file = "key.pem";
  c.cluster.seeds = {"tcp://a:1", "tcp://b:2"};
  c.namespaces["chat"] = {};
  c.namespaces["feed"] = {};
  const std::string d = DescribeConfig(c);
  EXPECT_NE(d.find("node=n1 "), std::string::npos) << d;
  EXPECT_NE(d.find("api=on "), std::string::npos) << d;
  EXPECT_NE(d.find("seeds=[tcp://a:1,tcp://b:2]"), std::string::npos) << d;
  EXPECT_NE(d.find("client_auth=hmac+rsa "), std::string::npos) << d;
  EXPECT_NE(d.find("namespaces=[chat,feed]"), std::string::npos) << d;
  EXPECT_EQ(d.find("secret"), std::string::npos) << d;
  c.client.client_insecure = true;
  EXPECT_NE(DescribeConfig(c).find("client_auth=insecure "), std::string::npos);
}

TEST(BrokerConfigKeys, ListsEveryKeyOnceAndEachCanBeOverridden) {
  const std::vector<std::string> keys = ConfigKeys();
  const std::set<std::string> unique(keys.begin(), keys.end());
  EXPECT_EQ(unique.size(), keys.size());
  for (const char* k :
       {"node.id", "http.port", "http.threads", "http.max_connections", "api.key",
        "native.endpoint", "cluster.seeds", "client.max_queue_bytes", "channel.history_size",
        "limits.max_publication_bytes", "namespaces.<name>.presence"}) {
    EXPECT_EQ(unique.count(k), 1u) << k;
  }
  EXPECT_EQ(keys.size(), 2u + 10 + 1 + 4 + 23 + 8 + 13 + 16 + 8 + 16 + 1 + 1 + 1);
  // Every key is reachable by --set (an unknown key would say so).
  for (std::string key : keys) {
    const size_t name = key.find("<name>");
    if (name != std::string::npos) key.replace(name, 6, "chat");
    NodeConfig c;
    const std::string error = ApplyOverride(c, key, "0").error();
    EXPECT_EQ(error.find("unknown key"), std::string::npos) << key << ": " << error;
  }
}

// Reads `path` and returns "<section>.<key>" for every `key = value` line outside
// [namespaces.*] tables (comments and blank lines skipped).
std::set<std::string> KeysInFile(const std::string& path) {
  std::ifstream in(path);
  std::set<std::string> keys;
  std::string line;
  std::string section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    const size_t eq = line.find(" = ");
    if (eq == std::string::npos || section.rfind("namespaces.", 0) == 0) continue;
    keys.insert(section + "." + line.substr(0, eq));
  }
  return keys;
}

TEST(BrokerConfigExample, ParsesAndShowsTheBuiltInDefaults) {
  auto c = LoadConfig(ExamplePath());
  ASSERT_TRUE(c.ok()) << c.error();
  // The example namespace is the only thing that is not a default.
  ASSERT_EQ(c->namespaces.count("chat"), 1u);
  ASSERT_EQ(c->namespaces.count("sync"), 1u);
  EXPECT_TRUE(c->namespaces.at("sync").HistoryEnabled());
  EXPECT_TRUE(c->namespaces.at("chat").presence);
  EXPECT_TRUE(c->MakeRegistry().Resolve("chat:room").ok());
  NodeConfig without_namespaces = *c;
  without_namespaces.namespaces.clear();
  EXPECT_EQ(without_namespaces, NodeConfig{})
      << "deploy/chorus.example.toml must show the built-in defaults";
}

TEST(BrokerConfigExample, DocumentsEveryKey) {
  const std::set<std::string> in_file = KeysInFile(ExamplePath());
  std::set<std::string> expected;
  for (const std::string& key : ConfigKeys()) {
    if (key.rfind("namespaces.", 0) != 0) expected.insert(key);
  }
  EXPECT_EQ(in_file, expected);
}

// ---- [scheduler]
// ---------------------------------------------------------------------

TEST(BrokerConfigScheduler, ParsesTiersAndRejectsMalformedOnes) {
  auto c = ParseConfig("[scheduler]\nslots = 8\ntiers = [\"free:1\", \"gold:5\"]\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->scheduler.slots, 8u);
  auto gold = ParseSchedulerTier(c->scheduler.tiers[1]);
  ASSERT_TRUE(gold.has_value());
  EXPECT_EQ(gold->name, "gold");
  EXPECT_EQ(gold->quantum, 5u);
  for (const char* bad : {"gold", "gold:0", "Gold:1", ":3", "gold:1001", "gold:x"}) {
    auto r = ParseConfig(std::string("[scheduler]\ntiers = [\"") + bad + "\"]\n", "t.toml");
    EXPECT_NE(r.error().find("scheduler.tiers[0]: expected"), std::string::npos) << r.error();
  }
  auto dup = ParseConfig("[scheduler]\ntiers = [\"a:1\", \"a:2\"]\n", "t.toml");
  EXPECT_NE(dup.error().find("scheduler.tiers[1]: duplicate tier"), std::string::npos)
      << dup.error();
  auto none = ParseConfig("[scheduler]\ntiers = []\n", "t.toml");
  EXPECT_NE(none.error().find("scheduler.tiers: must name at least one tier"), std::string::npos);
  auto backoff = ParseConfig("[scheduler]\nbackoff_base_ms = 10\nbackoff_max_ms = 5\n", "t.toml");
  EXPECT_NE(backoff.error().find("scheduler.backoff_max_ms: must be >="), std::string::npos);
}

TEST(BrokerConfigScheduler, EnabledNeedsRootsCatalogDirAndASyncNamespaceWithHistory) {
  const std::string dir = ::testing::TempDir();
  NodeConfig c;
  EXPECT_NE(ApplyOverride(c, "scheduler.enabled", "true").error().find("scheduler.source_roots"),
            std::string::npos);
  EXPECT_NE(ApplyOverrides(c, {"scheduler.enabled=true", "scheduler.source_roots=relative/path"})
                .error()
                .find("must be an absolute path"),
            std::string::npos);
  EXPECT_NE(ApplyOverrides(c, {"scheduler.enabled=true", "scheduler.source_roots=/nonexistent/x"})
                .error()
                .find("must be an existing directory"),
            std::string::npos);
  const std::vector<std::string> base = {"scheduler.enabled=true", "scheduler.source_roots=" + dir};
  auto no_catalog = ApplyOverrides(c, base);
  EXPECT_NE(no_catalog.error().find("scheduler.catalog_dir"), std::string::npos)
      << no_catalog.error();
  std::vector<std::string> with_catalog = base;
  with_catalog.push_back("scheduler.catalog_dir=" + dir);
  auto no_ns = ApplyOverrides(c, with_catalog);
  EXPECT_NE(no_ns.error().find("[namespaces.sync]"), std::string::npos) << no_ns.error();
  with_catalog.push_back("namespaces.sync.history_size=10");
  with_catalog.push_back("namespaces.sync.history_ttl_ms=60000");
  auto ok = ApplyOverrides(c, with_catalog);
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_TRUE(c.scheduler.enabled);
  EXPECT_NE(DescribeConfig(c).find("scheduler=on"), std::string::npos);
}

// The meta group's keys (docs/cluster.md §3.3): voters "<id>@host:port", 1, 3 or 5 of them,
// raft_address left default or equal to this member's entry; a member not among them is a
// standby joiner.
TEST(BrokerConfigCluster, VotersAreParsedAndValidated) {
  NodeConfig c;
  EXPECT_EQ(c.cluster.member_id, 1u);
  EXPECT_TRUE(ClusterVoters(c.cluster).empty());
  ASSERT_TRUE(ApplyOverrides(c, {"cluster.member_id=2",
                                 "cluster.voters=1@127.0.0.1:7001,2@127.0.0.1:7002,3@h3:7003",
                                 "cluster.partitions=64", "cluster.data_dir=/tmp/x"})
                  .ok());
  EXPECT_EQ(
      ClusterVoters(c.cluster),
      (std::vector<ClusterVoter>{{1, "127.0.0.1:7001"}, {2, "127.0.0.1:7002"}, {3, "h3:7003"}}));
  EXPECT_EQ(c.cluster.partitions, 64u);
  EXPECT_TRUE(ApplyOverride(c, "cluster.raft_address", "127.0.0.1:7002").ok());
  EXPECT_EQ(ApplyOverride(c, "cluster.raft_address", "127.0.0.1:7009").error(),
            "--set: cluster.raft_address: must equal this member's entry in cluster.voters "
            "(127.0.0.1:7002) or be left unset (got \"127.0.0.1:7009\")");
  // Not a voter: a standby that joins the running group (C-2, C-18).
  EXPECT_TRUE(ApplyOverride(c, "cluster.member_id", "4").ok());
  EXPECT_TRUE(ApplyOverride(c, "cluster.member_id", "2").ok());
  EXPECT_EQ(ApplyOverride(c, "cluster.voters", "1@a:1,2@a:2").error(),
            "--set: cluster.voters: must hold 1, 3 or 5 voters (got 2)");
  EXPECT_EQ(ApplyOverride(c, "cluster.voters", "1@a:1,2@a:2,2@a:3").error(),
            "--set: cluster.voters[2]: duplicate of cluster.voters[1]");
  EXPECT_EQ(ApplyOverride(c, "cluster.voters", "1@a:1,2@a:0,3@a:3").error(),
            "--set: cluster.voters[1]: expected <member_id>@<host>:<port> with member_id >= 1 "
            "and port 1..65535 (got \"2@a:0\")");
  EXPECT_EQ(ApplyOverride(c, "cluster.voters", "0@a:1").error(),
            "--set: cluster.voters[0]: expected <member_id>@<host>:<port> with member_id >= 1 "
            "and port 1..65535 (got \"0@a:1\")");
  EXPECT_FALSE(ApplyOverride(c, "cluster.partitions", "0").ok());
  EXPECT_FALSE(ApplyOverride(c, "cluster.partitions", "65537").ok());
  EXPECT_FALSE(ApplyOverride(c, "cluster.member_id", "0").ok());
  NodeConfig alone;
  EXPECT_TRUE(ApplyOverride(alone, "cluster.raft_address", "127.0.0.1:0").ok());
  EXPECT_EQ(ApplyOverride(alone, "cluster.raft_address", "*:7000").error(),
            "--set: cluster.raft_address: expected host:port with a host that is not a wildcard "
            "(got \"*:7000\")");
  EXPECT_EQ(ApplyOverride(alone, "cluster.endpoint", "tcp://127.0.0.1:7100").ok(), true);
  EXPECT_EQ(ApplyOverride(alone, "native.endpoint", "tcp://127.0.0.1:7100").error(),
            "--set: cluster.endpoint: tcp port 7100 is already used by native.endpoint");
}

}  // namespace
}  // namespace chorus::broker
