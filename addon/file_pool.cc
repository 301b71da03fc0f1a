#include "file_pool.h"

#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/time_types.h>
#include <liburing/io_uring.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

namespace ringio {

namespace {
size_t PoolSize() {
  const char* v = getenv("RINGIO_FS_THREADS");
  long n = v != nullptr ? strtol(v, nullptr, 10) : 0;
  if (n >= 1 && n <= 256) return static_cast<size_t>(n);
  return 4;
}
}  // namespace

FilePool::~FilePool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  if (efd_ >= 0) close(efd_);
}

int FilePool::EventFd() {
  std::lock_guard<std::mutex> lock(mu_);
  if (efd_ < 0) efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return efd_;
}

void FilePool::Start() {
  size_t n = PoolSize();
  for (size_t i = 0; i < n; i++) threads_.emplace_back([this] { Worker(); });
}

void FilePool::Submit(const Op& op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (threads_.empty()) Start();
    queue_.push_back(op);
  }
  work_cv_.notify_one();
}

bool FilePool::Cancel(int32_t user) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->user == user) {
      queue_.erase(it);
      done_.push_back({user, -ECANCELED, 0});
      uint64_t one = 1;
      if (efd_ >= 0) (void)!write(efd_, &one, sizeof one);
      return true;
    }
  }
  return false;
}

void FilePool::TakeDone(std::vector<Cqe>* out) {
  uint64_t v;
  if (efd_ >= 0) (void)!read(efd_, &v, sizeof v);
  std::lock_guard<std::mutex> lock(mu_);
  out->insert(out->end(), done_.begin(), done_.end());
  done_.clear();
}

bool FilePool::Idle() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() && active_ == 0;
}

void FilePool::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  // Jobs that have not started are dropped: the kernel never saw them.
  queue_.clear();
  idle_cv_.wait(lock, [this] { return active_ == 0; });
  done_.clear();
}

void FilePool::Worker() {
  for (;;) {
    Op op;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_ && queue_.empty()) return;
      op = queue_.front();
      queue_.pop_front();
      active_++;
    }
    int res = RunOp(op, nullptr);  // nullptr: not the loop thread (ops.h)
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_--;
      done_.push_back({op.user, res, 0});
      uint64_t one = 1;
      if (efd_ >= 0) (void)!write(efd_, &one, sizeof one);
    }
    idle_cv_.notify_all();
  }
}

}  // namespace ringio
