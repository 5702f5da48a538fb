#include "broker/node/auth.h"

#include <cerrno>
#include <cstdlib>
#include <memory>

#include <jwt.h>

namespace chorus::broker::node {
namespace {

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};

// The alg named in the token's header, read without verifying (to pick the key). "" if unreadable.
std::string HeaderAlg(const std::string& token) {
  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, token.c_str(), nullptr, 0) != 0 || raw == nullptr) return "";
  std::unique_ptr<jwt_t, JwtFree> j(raw);
  return jwt_alg_str(jwt_get_alg(j.get()));
}

}  // namespace

Result<TokenClaims> VerifyToken(std::string_view token_view, const TokenKeys& keys, int64_t now_s) {
  if (token_view.empty() || token_view.size() > 16384) return Errc::kUnauthorized;
  const std::string token(token_view);
  const std::string alg = HeaderAlg(token);
  const std::string* key = nullptr;
  if (alg == "HS256" && !keys.hmac_secret.empty()) key = &keys.hmac_secret;
  if (alg == "RS256" && !keys.rsa_public_pem.empty()) key = &keys.rsa_public_pem;
  if (key == nullptr) return Errc::kUnauthorized;  // includes "none" and unknown algorithms

  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(key->data()),
                 static_cast<int>(key->size())) != 0 ||
      raw == nullptr) {
    return Errc::kUnauthorized;
  }
  std::unique_ptr<jwt_t, JwtFree> j(raw);
  if (jwt_alg_str(jwt_get_alg(j.get())) != alg) return Errc::kUnauthorized;

  TokenClaims claims;
  errno = 0;
  const long exp = jwt_get_grant_int(j.get(), "exp");
  if (errno == 0) {
    claims.exp_s = exp;
    if (exp <= now_s) return Errc::kTokenExpired;
  }
  if (const char* sub = jwt_get_grant(j.get(), "sub")) claims.user = sub;
  if (char* info = jwt_get_grants_json(j.get(), "info")) {
    claims.info = info;
    free(info);  // NOLINT: libjwt allocates with malloc
  }
  return claims;
}

}  // namespace chorus::broker::node
