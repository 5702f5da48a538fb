#include "broker/scheduler/source.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace chorus::broker::scheduler {
namespace {

namespace fs = std::filesystem;

int64_t Ns(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

void FromStat(const struct stat& st, SourceEntry* e) {
  e->size = static_cast<uint64_t>(st.st_size);
  e->mtime_ns = Ns(st.st_mtim);
  e->version = Ns(st.st_ctim);
}

bool Sha256File(const std::string& file, std::string* hex) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return false;
  char buf[64 * 1024];
  while (in) {
    in.read(buf, sizeof buf);
    if (in.gcount() > 0 && EVP_DigestUpdate(ctx.get(), buf, in.gcount()) != 1) return false;
  }
  if (in.bad()) return false;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) return false;
  static const char* kHex = "0123456789abcdef";
  hex->clear();
  for (unsigned int i = 0; i < len; ++i) {
    hex->push_back(kHex[md[i] >> 4]);
    hex->push_back(kHex[md[i] & 15]);
  }
  return true;
}

}  // namespace

Status DirectorySource::List(Listing* out) {
  out->entries.clear();
  out->summary = {};
  struct stat root_st {};
  if (::stat(root_.c_str(), &root_st) != 0) {
    const bool gone = errno == ENOENT || errno == ENOTDIR;
    return {Errc::kSourceMissing, "source '" + root_ + "': " + std::strerror(errno), gone};
  }
  if (!S_ISDIR(root_st.st_mode)) {
    return {Errc::kSourceMissing, "source '" + root_ + "' is not a directory", true};
  }
  std::error_code ec;
  fs::recursive_directory_iterator it(root_, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto& p = it->path();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // vanished, or not a file
    SourceEntry e;
    e.path = fs::relative(p, root_).generic_string();
    FromStat(st, &e);
    out->entries.push_back(std::move(e));
  }
  if (ec) return {Errc::kSourceMissing, "source '" + root_ + "': listing failed: " + ec.message()};
  std::sort(out->entries.begin(), out->entries.end(),
            [](const SourceEntry& a, const SourceEntry& b) { return a.path < b.path; });
  for (const auto& e : out->entries) {
    ++out->summary.count;
    out->summary.max_version = std::max(out->summary.max_version, e.version);
    out->summary.max_mtime = std::max(out->summary.max_mtime, e.mtime_ns);
  }
  return Status::Ok();
}

Status DirectorySource::Read(const std::string& path, SourceEntry* entry, std::string* hash) {
  if (path.empty() || path.front() == '/' || path.find("..") != std::string::npos) {
    return {Errc::kBadRequest, "bad path '" + path + "'"};
  }
  const std::string file = root_ + "/" + path;
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return {Errc::kSourceMissing, "'" + file + "' is gone"};
  }
  entry->path = path;
  FromStat(st, entry);
  if (!Sha256File(file, hash)) return {Errc::kSourceMissing, "'" + file + "' cannot be read"};
  return Status::Ok();
}

}  // namespace chorus::broker::scheduler
