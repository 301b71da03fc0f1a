#include "file_pool.h"

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
constexpr int kOpFtruncate = 55;  // IORING_OP_FTRUNCATE, newer than liburing 2.3

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
    int res = Run(op);
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

bool FilePool::Handles(uint8_t opcode) {
  switch (opcode) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_READV:
    case IORING_OP_WRITEV:
    case IORING_OP_OPENAT:
    case IORING_OP_STATX:
    case IORING_OP_FSYNC:
    case IORING_OP_FALLOCATE:
    case kOpFtruncate:
    case IORING_OP_UNLINKAT:
    case IORING_OP_RENAMEAT:
    case IORING_OP_MKDIRAT:
    case IORING_OP_SYMLINKAT:
    case IORING_OP_CLOSE:
      return true;
    default:
      return false;
  }
}

int FilePool::Run(const Op& op) {
  ssize_t r;
  char* p = reinterpret_cast<char*>(op.addr);
  char* p2 = reinterpret_cast<char*>(op.addr2);
  // io_uring ignores the position on streams (pipes, FIFOs, sockets); so does this, via ESPIPE below.
  bool positional = op.off != UINT64_MAX;
  const off_t pos = static_cast<off_t>(op.off);
  for (;;) {
    switch (op.legacy_op) {
      case IORING_OP_READ:
        r = positional ? pread(op.fd, p, op.len, pos) : read(op.fd, p, op.len);
        break;
      case IORING_OP_WRITE:
        r = positional ? pwrite(op.fd, p, op.len, pos) : write(op.fd, p, op.len);
        break;
      case IORING_OP_READV:
        r = positional ? preadv(op.fd, reinterpret_cast<iovec*>(p), static_cast<int>(op.len), pos)
                       : readv(op.fd, reinterpret_cast<iovec*>(p), static_cast<int>(op.len));
        break;
      case IORING_OP_WRITEV:
        r = positional ? pwritev(op.fd, reinterpret_cast<iovec*>(p), static_cast<int>(op.len), pos)
                       : writev(op.fd, reinterpret_cast<iovec*>(p), static_cast<int>(op.len));
        break;
      case IORING_OP_OPENAT:
        r = openat(op.fd, p, static_cast<int>(op.op_flags), static_cast<mode_t>(op.len));
        break;
      case IORING_OP_STATX:
        r = statx(op.fd, p, static_cast<int>(op.op_flags), op.len, reinterpret_cast<struct statx*>(p2));
        break;
      case IORING_OP_FSYNC:
        r = (op.op_flags & IORING_FSYNC_DATASYNC) ? fdatasync(op.fd) : fsync(op.fd);
        break;
      case IORING_OP_FALLOCATE:
        r = fallocate(op.fd, static_cast<int>(op.len), pos, static_cast<off_t>(op.addr));
        break;
      case kOpFtruncate:
        r = ftruncate(op.fd, pos);
        break;
      case IORING_OP_UNLINKAT:
        r = unlinkat(op.fd, p, static_cast<int>(op.op_flags));
        break;
      case IORING_OP_RENAMEAT:
        r = renameat2(op.fd, p, static_cast<int>(op.len), p2, op.op_flags);
        break;
      case IORING_OP_MKDIRAT:
        r = mkdirat(op.fd, p, static_cast<mode_t>(op.len));
        break;
      case IORING_OP_SYMLINKAT:
        r = symlinkat(p, op.fd, p2);
        break;
      case IORING_OP_CLOSE:
        r = close(op.fd);
        if (r < 0 && errno == EINTR) return 0;
        break;
      default:
        return -EOPNOTSUPP;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == ESPIPE && positional) {
      positional = false;
      continue;
    }
    break;
  }
  return r < 0 ? -errno : static_cast<int>(r);
}

}  // namespace ringio
