// Connection tokens: JWTs checked with the node's key (HS256 with client.token_hmac_secret, or
// RS256 with the PEM public key in client.token_rsa_public_key_file). Claims as in Centrifugo:
// `sub` (user, "" = anonymous), `exp` (seconds since the epoch, optional), `info` (any JSON,
// the connection's info). Pure apart from libjwt; thread-safe (no shared state).
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
  bool Any() const { return !hmac_secret.empty() || !rsa_public_pem.empty(); }
};

struct TokenClaims {
  std::string user;
  std::string info;                   // JSON text, "" when absent
  int64_t exp_s = 0;                  // 0 = no expiry
  std::string channel;                // subscription tokens: the channel they grant
  std::vector<std::string> channels;  // connection tokens: server-side subscriptions
};

// 101 (kUnauthorized) for a malformed token, a bad signature, an algorithm without a key or a
// `none` token; 109 (kTokenExpired) when exp <= now_s.
Result<TokenClaims> VerifyToken(std::string_view token, const TokenKeys& keys, int64_t now_s);

}  // namespace chorus::broker
