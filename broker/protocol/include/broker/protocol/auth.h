// Connection and subscription tokens: JWTs checked with the node's key (HS256 with
// client.token_hmac_secret, or RS256 with the PEM public key in client.token_rsa_public_key_file).
// Claims as in Centrifugo: `sub` (user, "" = anonymous), `exp` and `nbf` (NumericDates, RFC 7519:
// integer or not, optional), `aud` and `iss` (checked when client.token_audience /
// client.token_issuer are set), `info` (any JSON), `channel` (subscription tokens only),
// `channels` (server-side subscriptions of a connection token). Pure apart from libjwt;
// thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/errc.h"

namespace chorus::broker {

struct TokenKeys {
  std::string hmac_secret;     // "" = HS256 tokens refused
  std::string rsa_public_pem;  // "" = RS256 tokens refused
  std::string audience;        // "" = `aud` not checked; else `aud` must be or contain it
  std::string issuer;          // "" = `iss` not checked; else `iss` must equal it
  bool Any() const { return !hmac_secret.empty() || !rsa_public_pem.empty(); }
};

struct TokenClaims {
  std::string user;
  std::string info;                   // JSON text, "" when absent
  int64_t exp_s = 0;                  // 0 = no expiry
  std::string channel;                // subscription tokens: the channel they grant
  std::vector<std::string> channels;  // connection tokens: server-side subscriptions
};

// What a token is presented as: a connection token MUST NOT carry `channel` (a subscription
// token is not a connection token). A subscription token's `channel` is compared with the
// subscribed channel by the caller (103 when it differs or is absent).
enum class TokenKind : uint8_t { kConnection, kSubscription };

// 101 (kUnauthorized) for a malformed token, a bad signature, an algorithm without a key or a
// `none` token, a claim of the wrong type (`sub`, `channel`, `channels`, `exp`, `nbf`), a token
// of the other kind, `nbf` > now_s, or an `aud` / `iss` that does not match the configured one;
// 109 (kTokenExpired) when exp <= now_s. `exp` 1.7e9 (a float) is 1700000000, floored.
Result<TokenClaims> VerifyToken(std::string_view token, const TokenKeys& keys, int64_t now_s,
                                TokenKind kind);

}  // namespace chorus::broker
