#include "broker/protocol/auth.h"

#include <cerrno>
#include <cstdlib>
#include <memory>

#include <jwt.h>
#include <nlohmann/json.hpp>

namespace chorus::broker {
namespace {

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};

std::string Base64UrlDecode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '-') {
      v = 62;
    } else if (c == '_') {
      v = 63;
    } else {
      return {};  // not base64url (padding is not used in JWTs)
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// The alg named in the token's header (to pick the key; libjwt reports "none" for a token
// decoded without a key). "" if unreadable.
std::string HeaderAlg(std::string_view token) {
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos) return "";
  auto header = nlohmann::json::parse(Base64UrlDecode(token.substr(0, dot)), nullptr,
                                      /*allow_exceptions=*/false);
  if (!header.is_object()) return "";
  auto alg = header.find("alg");
  return alg != header.end() && alg->is_string() ? alg->get<std::string>() : "";
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
  if (const char* ch = jwt_get_grant(j.get(), "channel")) claims.channel = ch;
  if (char* list = jwt_get_grants_json(j.get(), "channels")) {
    auto parsed = nlohmann::json::parse(list, nullptr, /*allow_exceptions=*/false);
    free(list);                                              // NOLINT: libjwt allocates with malloc
    if (parsed.is_null()) parsed = nlohmann::json::array();  // libjwt's answer when absent
    if (!parsed.is_array()) return Errc::kUnauthorized;
    for (const auto& c : parsed) {
      if (!c.is_string()) return Errc::kUnauthorized;
      claims.channels.push_back(c.get<std::string>());
    }
  }
  if (char* info = jwt_get_grants_json(j.get(), "info")) {
    claims.info = info;
    free(info);  // NOLINT: libjwt allocates with malloc
  }
  return claims;
}

}  // namespace chorus::broker
