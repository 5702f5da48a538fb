#include "broker/scheduler/catalog_pool.h"

#include <algorithm>

namespace chorus::broker::scheduler {

using Clock = std::chrono::steady_clock;

CatalogPool::CatalogPool(std::string path, PoolConfig config, std::shared_ptr<CatalogFaults> faults)
    : path_(std::move(path)),
      config_(config),
      counters_(std::make_shared<CatalogCounters>()),
      faults_(faults ? std::move(faults) : std::make_shared<CatalogFaults>()) {}

CatalogPool::~CatalogPool() = default;  // every Handle must be gone (they point at the pool)

Status CatalogPool::Acquire(Handle* out) {
  out->Reset();
  std::unique_lock lock(mu_);
  const auto deadline = Clock::now() + config_.acquire_timeout;
  bool waited = false;
  for (;;) {
    if (!idle_.empty()) {
      out->pool_ = this;
      out->conn_ = std::move(idle_.back());
      idle_.pop_back();
      return Status::Ok();
    }
    if (open_ < config_.size) {
      if (failures_ > 0 && Clock::now() < retry_at_) {
        ++stats_.refused_in_backoff;
        return {Errc::kCatalogError, last_error_ + " (backing off before reopening)"};
      }
      ++open_;  // reserve the slot, open outside the lock
      ++stats_.open_attempts;
      lock.unlock();
      std::unique_ptr<Catalog> conn;
      Status s = Catalog::Open(path_, counters_, faults_, &conn);
      lock.lock();
      if (!s.ok()) {
        --open_;
        ++failures_;
        const auto shift = std::min<uint32_t>(failures_ - 1, 20);
        retry_at_ =
            Clock::now() + std::min(config_.backoff_max, config_.backoff_base * (1 << shift));
        last_error_ = s.message;
        cv_.notify_all();  // waiters must see the failure, not wait for a connection
        return s;
      }
      failures_ = 0;
      stats_.open = open_;
      stats_.peak_open = std::max<uint64_t>(stats_.peak_open, open_);
      out->pool_ = this;
      out->conn_ = std::move(conn);
      return Status::Ok();
    }
    if (!waited) {
      ++stats_.waits;
      waited = true;
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= config_.size) {
      ++stats_.acquire_timeouts;
      return {Errc::kCatalogError, "catalog '" + path_ + "': no connection free within " +
                                       std::to_string(config_.acquire_timeout.count()) + " ms"};
    }
  }
}

void CatalogPool::Release(std::unique_ptr<Catalog> conn, bool broken) {
  {
    std::lock_guard lock(mu_);
    if (broken) {
      --open_;
      stats_.open = open_;
    } else {
      idle_.push_back(std::move(conn));
    }
  }
  cv_.notify_one();
  conn.reset();  // a broken connection closes outside the lock
}

PoolStats CatalogPool::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

CatalogPool::Handle& CatalogPool::Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    Reset();
    pool_ = std::exchange(o.pool_, nullptr);
    conn_ = std::move(o.conn_);
    broken_ = std::exchange(o.broken_, false);
  }
  return *this;
}

void CatalogPool::Handle::Reset() {
  if (pool_ && conn_) pool_->Release(std::move(conn_), broken_);
  pool_ = nullptr;
  conn_.reset();
  broken_ = false;
}

}  // namespace chorus::broker::scheduler
