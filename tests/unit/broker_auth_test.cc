// VerifyToken (broker/protocol/auth.h): the claim checks of issue 10 ("Tokens"): `nbf`, `aud`
// and `iss` when configured, a subscription token refused as a connection token, and a
// non-integer `exp` read as RFC 7519 allows. Tokens are signed here with OpenSSL's HMAC, not
// with the verifier's library.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <string>

#include "broker/protocol/auth.h"

namespace chorus::broker {
namespace {

constexpr int64_t kNow = 1'700'000'000;
constexpr const char* kSecret = "auth-test-secret";

std::string Base64Url(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

// An HS256 token with these claims (a JSON object's text).
std::string Token(const std::string& claims) {
  const std::string signing = Base64Url(R"({"alg":"HS256","typ":"JWT"})") + "." + Base64Url(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), kSecret, static_cast<int>(std::string(kSecret).size()),
       reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &mac_len);
  return signing + "." + Base64Url(std::string(reinterpret_cast<char*>(mac), mac_len));
}

TokenKeys Keys(std::string audience = "", std::string issuer = "") {
  TokenKeys k;
  k.hmac_secret = kSecret;
  k.audience = std::move(audience);
  k.issuer = std::move(issuer);
  return k;
}

Errc ErrorOf(const std::string& claims, const TokenKeys& keys = Keys(),
             TokenKind kind = TokenKind::kConnection) {
  auto r = VerifyToken(Token(claims), keys, kNow, kind);
  return r ? Errc::kOk : static_cast<Errc>(r.error().value());
}

TEST(BrokerAuth, PlainTokenIsAccepted) {
  auto r = VerifyToken(Token(R"({"sub":"alice","info":{"a":1},"exp":1700000100})"), Keys(), kNow,
                       TokenKind::kConnection);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->user, "alice");
  EXPECT_EQ(r->info, R"({"a":1})");
  EXPECT_EQ(r->exp_s, 1'700'000'100);
}

TEST(BrokerAuth, NotBeforeInTheFutureIsRefused) {
  EXPECT_EQ(ErrorOf(R"({"sub":"a","nbf":1700000100})"), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","nbf":1700000000})"), Errc::kOk);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","nbf":1699999999.5})"), Errc::kOk);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","nbf":"soon"})"), Errc::kUnauthorized);
}

TEST(BrokerAuth, NonIntegerExpIsANumericDate) {
  // 1.7e9 + 100 as a float: valid for 100 s, not "no expiry" (read as 0 before).
  auto r =
      VerifyToken(Token(R"({"sub":"a","exp":1.7000001e9})"), Keys(), kNow, TokenKind::kConnection);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exp_s, 1'700'000'100);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","exp":1.6e9})"), Errc::kTokenExpired);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","exp":1699999999.9})"), Errc::kTokenExpired);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","exp":"1800000000"})"), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","exp":1e300})"), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","exp":18446744073709551615})"), Errc::kUnauthorized);
}

TEST(BrokerAuth, AudienceIsCheckedWhenConfigured) {
  const TokenKeys keys = Keys("chorus");
  EXPECT_EQ(ErrorOf(R"({"sub":"a","aud":"chorus"})", keys), Errc::kOk);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","aud":["x","chorus"]})", keys), Errc::kOk);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","aud":"other"})", keys), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","aud":["other"]})", keys), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a"})", keys), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","aud":"other"})"), Errc::kOk);  // not configured
}

TEST(BrokerAuth, IssuerIsCheckedWhenConfigured) {
  const TokenKeys keys = Keys("", "backend");
  EXPECT_EQ(ErrorOf(R"({"sub":"a","iss":"backend"})", keys), Errc::kOk);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","iss":"evil"})", keys), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","iss":["backend"]})", keys), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a"})", keys), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","iss":"evil"})"), Errc::kOk);  // not configured
}

TEST(BrokerAuth, SubscriptionTokenIsNotAConnectionToken) {
  const std::string sub_token = R"({"sub":"a","channel":"$private"})";
  EXPECT_EQ(ErrorOf(sub_token, Keys(), TokenKind::kConnection), Errc::kUnauthorized);
  auto r = VerifyToken(Token(sub_token), Keys(), kNow, TokenKind::kSubscription);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->channel, "$private");
}

TEST(BrokerAuth, WrongTypedClaimsAreRefused) {
  EXPECT_EQ(ErrorOf(R"({"sub":5})"), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","channel":1})", Keys(), TokenKind::kSubscription),
            Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","channels":"x"})"), Errc::kUnauthorized);
  EXPECT_EQ(ErrorOf(R"({"sub":"a","channels":[1]})"), Errc::kUnauthorized);
}

}  // namespace
}  // namespace chorus::broker
