#include "broker/protocol/auth.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>

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

// A NumericDate (RFC 7519 section 2: seconds, "non-integer values can be represented"), floored;
// nullopt when it is not a finite number in the int64 range.
std::optional<int64_t> NumericDate(const nlohmann::json& v) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return v.get<int64_t>();
  }
  if (!v.is_number_float()) return std::nullopt;
  const double d = std::floor(v.get<double>());
  // 2^63 is exactly representable; every double below it converts without overflow.
  if (!std::isfinite(d) || d < -9.2233720368547758e18 || d >= 9.2233720368547758e18) {
    return std::nullopt;
  }
  return static_cast<int64_t>(d);
}

// `aud` (RFC 7519 section 4.1.3): a string or an array of strings, one of which must be ours.
bool HasAudience(const nlohmann::json& aud, const std::string& want) {
  if (aud.is_string()) return aud.get<std::string>() == want;
  if (!aud.is_array()) return false;
  for (const auto& a : aud) {
    if (a.is_string() && a.get<std::string>() == want) return true;
  }
  return false;
}

// The claims of a token whose signature has been checked (the rules are in auth.h).
Result<TokenClaims> ReadClaims(const nlohmann::json& g, const TokenKeys& keys, int64_t now_s,
                               TokenKind kind) {
  TokenClaims claims;
  auto find = [&](const char* key) -> const nlohmann::json* {
    auto it = g.find(key);
    return it == g.end() || it->is_null() ? nullptr : &*it;
  };
  auto string_claim = [&](const char* key, std::string& out) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return true;
    if (!v->is_string()) return false;
    out = v->get<std::string>();
    return true;
  };
  if (!string_claim("sub", claims.user) || !string_claim("channel", claims.channel)) {
    return Errc::kUnauthorized;
  }
  if (kind == TokenKind::kConnection && !claims.channel.empty()) return Errc::kUnauthorized;
  if (!keys.audience.empty()) {
    const nlohmann::json* aud = find("aud");
    if (aud == nullptr || !HasAudience(*aud, keys.audience)) return Errc::kUnauthorized;
  }
  if (!keys.issuer.empty()) {
    std::string iss;
    if (!string_claim("iss", iss) || iss != keys.issuer) return Errc::kUnauthorized;
  }
  if (const nlohmann::json* nbf = find("nbf")) {
    const std::optional<int64_t> t = NumericDate(*nbf);
    if (!t || *t > now_s) return Errc::kUnauthorized;
  }
  if (const nlohmann::json* exp = find("exp")) {
    const std::optional<int64_t> t = NumericDate(*exp);
    if (!t) return Errc::kUnauthorized;
    if (*t <= now_s) return Errc::kTokenExpired;
    claims.exp_s = *t;
  }
  if (const nlohmann::json* list = find("channels")) {
    if (!list->is_array()) return Errc::kUnauthorized;
    for (const auto& c : *list) {
      if (!c.is_string()) return Errc::kUnauthorized;
      claims.channels.push_back(c.get<std::string>());
    }
  }
  if (const nlohmann::json* info = find("info")) claims.info = info->dump();
  return claims;
}

}  // namespace

Result<TokenClaims> VerifyToken(std::string_view token_view, const TokenKeys& keys, int64_t now_s,
                                TokenKind kind) {
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

  char* all = jwt_get_grants_json(j.get(), nullptr);
  if (all == nullptr) return Errc::kUnauthorized;
  auto grants = nlohmann::json::parse(all, nullptr, /*allow_exceptions=*/false);
  free(all);  // NOLINT: libjwt allocates with malloc
  if (!grants.is_object()) return Errc::kUnauthorized;
  return ReadClaims(grants, keys, now_s, kind);
}

}  // namespace chorus::broker
