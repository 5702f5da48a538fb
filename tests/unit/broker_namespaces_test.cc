// Unit tests for channel namespaces, name rules, config validation and permissions
// (broker/core/namespaces.h).
#include "broker/core/namespaces.h"

#include <gtest/gtest.h>

#include <string>

namespace chorus::broker {
namespace {

using namespace std::string_literals;

ChannelOptions WithHistory(uint32_t size, int64_t ttl_ms) {
  ChannelOptions o;
  o.history_size = size;
  o.history_ttl_ms = ttl_ms;
  return o;
}

NamespaceRegistry MakeRegistry() {
  ChannelOptions chat = WithHistory(10, 60'000);
  chat.presence = true;
  ChannelOptions feed;
  feed.join_leave = true;
  return NamespaceRegistry(ChannelOptions{}, {{"chat", chat}, {"feed", feed}});
}

TEST(BrokerNamespaceOf, SplitsAtFirstColonAfterPrivatePrefix) {
  EXPECT_EQ(NamespaceOf("news"), "");
  EXPECT_EQ(NamespaceOf("chat:room"), "chat");
  EXPECT_EQ(NamespaceOf("chat:a:b"), "chat");
  EXPECT_EQ(NamespaceOf("$chat:room"), "chat");
  EXPECT_EQ(NamespaceOf("$news"), "");
  EXPECT_EQ(NamespaceOf(":room"), "");
  EXPECT_EQ(NamespaceOf("chat:"), "chat");
}

TEST(BrokerNamespaceRegistry, ResolvesDefaultAndNamedNamespaces) {
  const NamespaceRegistry reg = MakeRegistry();
  auto news = reg.Resolve("news");
  ASSERT_TRUE(news.ok());
  EXPECT_EQ(news->ns, "");
  EXPECT_EQ(news->options, &reg.defaults());

  auto chat = reg.Resolve("chat:room:42");
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(chat->ns, "chat");
  EXPECT_EQ(chat->options, &reg.namespaces().at("chat"));
  EXPECT_EQ(chat->options->history_size, 10u);
  EXPECT_TRUE(chat->options->presence);

  auto priv = reg.Resolve("$feed:x");
  ASSERT_TRUE(priv.ok());
  EXPECT_EQ(priv->ns, "feed");
  EXPECT_TRUE(priv->options->join_leave);

  // An empty namespace part means the default namespace, as in Centrifugo.
  auto bare = reg.Resolve(":x");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->options, &reg.defaults());
}

TEST(BrokerNamespaceRegistry, UnknownNamespaceIsUnknownChannel) {
  const NamespaceRegistry reg = MakeRegistry();
  EXPECT_EQ(reg.Resolve("xxx:hello").error(), Errc::kUnknownChannel);
  EXPECT_EQ(reg.Resolve("$xxx:hello").error(), Errc::kUnknownChannel);
  // Namespaces match exactly (case-sensitive).
  EXPECT_EQ(reg.Resolve("Chat:room").error(), Errc::kUnknownChannel);
  EXPECT_EQ(reg.Resolve("cha:room").error(), Errc::kUnknownChannel);
}

TEST(BrokerValidateChannelName, EmptyIsBadRequest) {
  EXPECT_EQ(ValidateChannelName("", Limits{}), Errc::kBadRequest);
  EXPECT_EQ(MakeRegistry().Resolve("").error(), Errc::kBadRequest);
}

TEST(BrokerValidateChannelName, LengthLimitInBytesIsLimitExceeded) {
  const Limits limits;
  EXPECT_EQ(limits.max_channel_length, 255u);
  EXPECT_EQ(ValidateChannelName(std::string(255, 'a'), limits), Errc::kOk);
  EXPECT_EQ(ValidateChannelName(std::string(256, 'a'), limits), Errc::kLimitExceeded);

  Limits small;
  small.max_channel_length = 6;
  EXPECT_EQ(ValidateChannelName("abcdef", small), Errc::kOk);
  EXPECT_EQ(ValidateChannelName("abcdefg", small), Errc::kLimitExceeded);
  // Two euro signs are 6 bytes; three are 9.
  EXPECT_EQ(ValidateChannelName("\xe2\x82\xac\xe2\x82\xac", small), Errc::kOk);
  EXPECT_EQ(ValidateChannelName("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", small),
            Errc::kLimitExceeded);
  // The registry applies its own limits.
  NamespaceRegistry reg(ChannelOptions{}, {}, small);
  EXPECT_EQ(reg.Resolve("abcdefg").error(), Errc::kLimitExceeded);
  EXPECT_TRUE(reg.Resolve("abcdef").ok());
}

TEST(BrokerValidateChannelName, Utf8) {
  const Limits limits;
  EXPECT_EQ(ValidateChannelName("caf\xc3\xa9", limits), Errc::kOk);           // é
  EXPECT_EQ(ValidateChannelName("\xe2\x82\xac", limits), Errc::kOk);          // €
  EXPECT_EQ(ValidateChannelName("\xf0\x9d\x84\x9e", limits), Errc::kOk);      // U+1D11E
  EXPECT_EQ(ValidateChannelName("\xf4\x8f\xbf\xbf", limits), Errc::kOk);      // U+10FFFF
  EXPECT_EQ(ValidateChannelName("\xff", limits), Errc::kBadRequest);          // never valid
  EXPECT_EQ(ValidateChannelName("a\x80", limits), Errc::kBadRequest);         // lone continuation
  EXPECT_EQ(ValidateChannelName("\xc0\xaf", limits), Errc::kBadRequest);      // overlong '/'
  EXPECT_EQ(ValidateChannelName("\xe0\x80\xaf", limits), Errc::kBadRequest);  // overlong
  EXPECT_EQ(ValidateChannelName("\xed\xa0\x80", limits), Errc::kBadRequest);  // surrogate
  EXPECT_EQ(ValidateChannelName("\xf4\x90\x80\x80", limits), Errc::kBadRequest);  // > U+10FFFF
  EXPECT_EQ(ValidateChannelName("ab\xe2\x82", limits), Errc::kBadRequest);        // truncated
  EXPECT_EQ(ValidateChannelName("\xe2\x28\xa1", limits), Errc::kBadRequest);  // bad continuation
}

TEST(BrokerValidateChannelName, ControlCharacters) {
  const Limits limits;
  EXPECT_EQ(ValidateChannelName("a\x01", limits), Errc::kBadRequest);
  EXPECT_EQ(ValidateChannelName("a\nb", limits), Errc::kBadRequest);
  EXPECT_EQ(ValidateChannelName("a\tb", limits), Errc::kBadRequest);
  EXPECT_EQ(ValidateChannelName("a\x1f", limits), Errc::kBadRequest);
  EXPECT_EQ(ValidateChannelName("a\x7f", limits), Errc::kBadRequest);
  EXPECT_EQ(ValidateChannelName("a\0b"s, limits), Errc::kBadRequest);
  EXPECT_EQ(ValidateChannelName("a b~!@", limits), Errc::kOk);  // space and printable ASCII
  // The name is checked before the namespace is looked up.
  EXPECT_EQ(MakeRegistry().Resolve("xx\x01:room").error(), Errc::kBadRequest);
}

TEST(BrokerNamespaceRegistry, ValidConfigValidates) {
  EXPECT_EQ(MakeRegistry().Validate(), std::nullopt);
  EXPECT_EQ(NamespaceRegistry().Validate(), std::nullopt);
}

TEST(BrokerNamespaceRegistry, ValidateNamesTheBadKey) {
  const auto validate_ns = [](const ChannelOptions& o) {
    return NamespaceRegistry(ChannelOptions{}, {{"chat", o}}).Validate();
  };
  EXPECT_EQ(validate_ns(WithHistory(10, 0)),
            "namespaces.chat.history_ttl_ms: history_size > 0 requires history_ttl_ms > 0");
  EXPECT_EQ(validate_ns(WithHistory(0, 1000)),
            "namespaces.chat.history_size: history_ttl_ms > 0 requires history_size > 0");
  EXPECT_EQ(validate_ns(WithHistory(0, -1)), "namespaces.chat.history_ttl_ms: must be >= 0");

  ChannelOptions o;
  o.force_recovery = true;
  EXPECT_EQ(validate_ns(o),
            "namespaces.chat.force_recovery: recovery requires history (history_size and "
            "history_ttl_ms > 0)");
  o = ChannelOptions{};
  o.allow_recovery = true;
  EXPECT_EQ(validate_ns(o),
            "namespaces.chat.allow_recovery: recovery requires history (history_size and "
            "history_ttl_ms > 0)");
  o = WithHistory(1, 1);
  o.force_recovery = o.allow_recovery = true;
  EXPECT_EQ(validate_ns(o), std::nullopt);

  o = ChannelOptions{};
  o.user_presence = true;
  EXPECT_EQ(validate_ns(o), "namespaces.chat.user_presence: user_presence requires presence");
  o.presence = true;
  EXPECT_EQ(validate_ns(o), std::nullopt);

  o = ChannelOptions{};
  o.presence_page_size = 0;
  EXPECT_EQ(validate_ns(o), "namespaces.chat.presence_page_size: must be between 1 and 10000");
  o.presence_page_size = kMaxPresencePageSize + 1;
  EXPECT_EQ(validate_ns(o), "namespaces.chat.presence_page_size: must be between 1 and 10000");
  o.presence_page_size = kMaxPresencePageSize;
  EXPECT_EQ(validate_ns(o), std::nullopt);
}

TEST(BrokerNamespaceRegistry, ValidateDefaultsAndLimitsKeys) {
  EXPECT_EQ(NamespaceRegistry(WithHistory(5, 0), {}).Validate(),
            "channel.history_ttl_ms: history_size > 0 requires history_ttl_ms > 0");
  Limits limits;
  limits.max_channel_length = 0;
  EXPECT_EQ(NamespaceRegistry({}, {}, limits).Validate(), "limits.max_channel_length: must be > 0");
  limits = Limits{};
  limits.max_channels_per_connection = 0;
  EXPECT_EQ(NamespaceRegistry({}, {}, limits).Validate(),
            "limits.max_channels_per_connection: must be > 0");
  limits = Limits{};
  limits.max_publication_bytes = 0;
  EXPECT_EQ(NamespaceRegistry({}, {}, limits).Validate(),
            "limits.max_publication_bytes: must be > 0");
}

TEST(BrokerNamespaceRegistry, ValidateReportsDefaultsThenNamespacesInNameOrder) {
  const ChannelOptions bad = WithHistory(1, 0);
  EXPECT_EQ(NamespaceRegistry(bad, {{"beta", bad}, {"alpha", bad}}).Validate(),
            "channel.history_ttl_ms: history_size > 0 requires history_ttl_ms > 0");
  EXPECT_EQ(NamespaceRegistry({}, {{"beta", bad}, {"alpha", bad}}).Validate(),
            "namespaces.alpha.history_ttl_ms: history_size > 0 requires history_ttl_ms > 0");
}

TEST(BrokerNamespaceRegistry, ValidateNamespaceNames) {
  EXPECT_TRUE(IsValidNamespaceName("ab"));
  EXPECT_TRUE(IsValidNamespaceName("a-b_9Z"));
  EXPECT_FALSE(IsValidNamespaceName(""));
  EXPECT_FALSE(IsValidNamespaceName("a"));
  EXPECT_FALSE(IsValidNamespaceName("ch.at"));
  EXPECT_FALSE(IsValidNamespaceName("ch:at"));
  EXPECT_FALSE(IsValidNamespaceName("ch at"));
  EXPECT_FALSE(IsValidNamespaceName("caf\xc3\xa9"));
  EXPECT_EQ(NamespaceRegistry({}, {{"a", {}}}).Validate(),
            "namespaces.a: namespace name must match ^[-a-zA-Z0-9_]{2,}$");
}

TEST(BrokerChannelOptions, DefaultsFollowCentrifugoV2) {
  const ChannelOptions o;
  EXPECT_FALSE(o.presence);
  EXPECT_FALSE(o.join_leave);
  EXPECT_FALSE(o.user_presence);
  EXPECT_EQ(o.history_size, 0u);
  EXPECT_EQ(o.history_ttl_ms, 0);
  EXPECT_FALSE(o.HistoryEnabled());
  EXPECT_FALSE(o.force_recovery);
  EXPECT_FALSE(o.allow_recovery);
  EXPECT_TRUE(o.allow_subscribe_for_client);
  EXPECT_FALSE(o.allow_subscribe_for_anonymous);
  EXPECT_FALSE(o.allow_publish_for_client);
  EXPECT_FALSE(o.allow_publish_for_anonymous);
  EXPECT_TRUE(o.allow_presence_for_client);
  EXPECT_FALSE(o.allow_presence_for_anonymous);
  EXPECT_TRUE(o.allow_history_for_client);
  EXPECT_FALSE(o.allow_history_for_anonymous);
  EXPECT_EQ(o.presence_page_size, 100u);
  const Limits l;
  EXPECT_EQ(l.max_channels_per_connection, 128u);
  EXPECT_EQ(l.max_publication_bytes, 65536u);
}

// The full matrix: for each operation, the client flag and the anonymous flag in all four
// combinations, asked by a client and by an anonymous connection.
TEST(BrokerPermissions, MatrixForAnonymousAndClient) {
  struct Op {
    const char* name;
    Errc (*check)(const ChannelOptions&, bool);
    bool ChannelOptions::*for_client;
    bool ChannelOptions::*for_anonymous;
  };
  const Op ops[] = {
      {"subscribe", CanSubscribe, &ChannelOptions::allow_subscribe_for_client,
       &ChannelOptions::allow_subscribe_for_anonymous},
      {"publish", CanPublish, &ChannelOptions::allow_publish_for_client,
       &ChannelOptions::allow_publish_for_anonymous},
      {"presence", CanPresence, &ChannelOptions::allow_presence_for_client,
       &ChannelOptions::allow_presence_for_anonymous},
      {"history", CanHistory, &ChannelOptions::allow_history_for_client,
       &ChannelOptions::allow_history_for_anonymous},
  };
  for (const Op& op : ops) {
    for (int bits = 0; bits < 4; ++bits) {
      ChannelOptions o = WithHistory(10, 1000);
      o.presence = true;
      o.*op.for_client = (bits & 1) != 0;
      o.*op.for_anonymous = (bits & 2) != 0;
      SCOPED_TRACE(std::string(op.name) + " bits=" + std::to_string(bits));
      EXPECT_EQ(op.check(o, /*anonymous=*/false), (bits & 1) ? Errc::kOk : Errc::kPermissionDenied);
      EXPECT_EQ(op.check(o, /*anonymous=*/true), (bits & 2) ? Errc::kOk : Errc::kPermissionDenied);
    }
  }
}

TEST(BrokerPermissions, DisabledFeatureIsNotAvailableBeforePermission) {
  ChannelOptions o;
  o.allow_presence_for_anonymous = o.allow_history_for_anonymous = true;
  EXPECT_EQ(CanPresence(o, false), Errc::kNotAvailable);
  EXPECT_EQ(CanPresence(o, true), Errc::kNotAvailable);
  EXPECT_EQ(CanHistory(o, false), Errc::kNotAvailable);
  o.history_size = 10;  // size without TTL is not history
  EXPECT_EQ(CanHistory(o, true), Errc::kNotAvailable);
  o.history_ttl_ms = 1;
  EXPECT_EQ(CanHistory(o, true), Errc::kOk);
  o.allow_history_for_client = false;
  EXPECT_EQ(CanHistory(o, false), Errc::kPermissionDenied);
  // Subscribe and publish have no feature switch: defaults allow clients to subscribe only.
  const ChannelOptions d;
  EXPECT_EQ(CanSubscribe(d, false), Errc::kOk);
  EXPECT_EQ(CanSubscribe(d, true), Errc::kPermissionDenied);
  EXPECT_EQ(CanPublish(d, false), Errc::kPermissionDenied);
  EXPECT_EQ(CanPublish(d, true), Errc::kPermissionDenied);
}

TEST(BrokerShouldRecover, ForceAllowAndPermission) {
  ChannelOptions o = WithHistory(10, 1000);
  EXPECT_FALSE(ShouldRecover(o, false, true));  // neither force nor allow
  o.allow_recovery = true;
  EXPECT_TRUE(ShouldRecover(o, false, true));
  EXPECT_FALSE(ShouldRecover(o, false, false));  // client did not ask
  EXPECT_FALSE(ShouldRecover(o, true, true));    // anonymous may not read history
  o.allow_history_for_anonymous = true;
  EXPECT_TRUE(ShouldRecover(o, true, true));
  o.allow_recovery = false;
  o.force_recovery = true;
  o.allow_history_for_client = false;
  EXPECT_TRUE(ShouldRecover(o, false, false));  // forced: no ask, no history permission needed
  o.history_ttl_ms = 0;
  EXPECT_FALSE(ShouldRecover(o, false, true));  // no history, nothing to recover from
}

TEST(BrokerErrc, CentrifugoCodesAndMessages) {
  EXPECT_EQ(static_cast<int>(Errc::kUnknownChannel), 102);
  EXPECT_EQ(static_cast<int>(Errc::kLimitExceeded), 106);
  EXPECT_EQ(static_cast<int>(Errc::kBadRequest), 107);
  EXPECT_EQ(static_cast<int>(Errc::kUnrecoverablePosition), 112);
  EXPECT_EQ(make_error_code(Errc::kUnknownChannel).message(), "unknown channel");
  EXPECT_EQ(make_error_code(Errc::kUnrecoverablePosition).message(), "unrecoverable position");
  EXPECT_EQ(make_error_code(Errc::kPermissionDenied).message(), "permission denied");
  EXPECT_TRUE(IsClientCode(Errc::kInternal));
  EXPECT_TRUE(IsClientCode(Errc::kUnrecoverablePosition));
  EXPECT_TRUE(IsClientCode(Errc::kConflict));
  EXPECT_EQ(make_error_code(Errc::kConflict).message(), "conflict");
  EXPECT_FALSE(IsClientCode(Errc::kOk));
  EXPECT_FALSE(IsClientCode(Errc::kReplicaGap));
  EXPECT_EQ(kDisconnectInsufficientState.code, 3010u);
  const Result<int> r = Errc::kBadRequest;
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error(), Errc::kBadRequest);
  EXPECT_NE(r.error(), make_error_code(chp::Errc::kMalformed));
}

// broker/core/codes.h: the disconnect codes as Centrifugo's client protocol documents them
// (3000..3499 reconnect, 3500..3999 do not; 4000..4999 the application's, 4500.. do not).
TEST(BrokerCodes, DisconnectCodesCarryCentrifugosReasonAndAdvice) {
  const CloseCode all[] = {kDisconnectConnectionClosed,
                           kDisconnectByClient,
                           kDisconnectShutdown,
                           kDisconnectExpired,
                           kDisconnectSlow,
                           kDisconnectInsufficientState,
                           kDisconnectNoPong,
                           kDisconnectInvalidToken,
                           kDisconnectBadRequest,
                           kDisconnectStale,
                           kDisconnectForce};
  for (const CloseCode& c : all) {
    EXPECT_GE(c.code, kMinDisconnectCode);
    EXPECT_LE(c.code, kMaxDisconnectCode);
    EXPECT_FALSE(c.reason.empty());
    // The advice a code carries on the wire is the one its range gives, except a client that
    // left on its own (3000 without reconnect: it asked to go).
    if (c != kDisconnectByClient) {
      EXPECT_EQ(c.reconnect, DisconnectReconnects(c.code)) << c.code;
    }
  }
  EXPECT_EQ(kDisconnectShutdown, (CloseCode{3001, "shutdown", true}));
  EXPECT_EQ(kDisconnectExpired, (CloseCode{3005, "connection expired", true}));
  EXPECT_EQ(kDisconnectSlow, (CloseCode{3008, "slow", true}));
  EXPECT_EQ(kDisconnectNoPong, (CloseCode{3012, "no pong", true}));
  EXPECT_EQ(kDisconnectInvalidToken, (CloseCode{3500, "invalid token", false}));
  EXPECT_EQ(kDisconnectBadRequest, (CloseCode{3501, "bad request", false}));
  EXPECT_EQ(kDisconnectForce, (CloseCode{3503, "force disconnect", false}));
  EXPECT_TRUE(DisconnectReconnects(3499));
  EXPECT_FALSE(DisconnectReconnects(3500));
  EXPECT_FALSE(DisconnectReconnects(3999));
  EXPECT_TRUE(DisconnectReconnects(4000));
  EXPECT_TRUE(DisconnectReconnects(4499));
  EXPECT_FALSE(DisconnectReconnects(4500));
  EXPECT_EQ(kUnsubscribeServer, (CloseCode{2000, "server unsubscribe", false}));
  EXPECT_EQ(ToCode(Errc::kTokenExpired), 109u);
}

}  // namespace
}  // namespace chorus::broker
