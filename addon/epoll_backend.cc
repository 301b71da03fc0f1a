// The epoll ("legacy") backend: runs the same op records as the io_uring backend, by waiting for
// readiness and then making the plain syscall, the way Monoio's LegacyDriver does.
//
// Rules this file keeps:
//  1. An fd is registered once, edge-triggered, for both directions. Its readiness is cached per
//     direction; an op runs its syscall at once while the cached bit is set, and parks when the syscall
//     says EAGAIN. The next edge sets the bit again and runs the parked ops in FIFO order.
//  2. Ops with no interest (NOP, CLOSE, ops on regular files) run at once.
//  3. A TIMEOUT op owns a timerfd for its lifetime; cancelling it closes the timerfd.
//  4. Nothing here is seen by the kernel after the syscall returns, so Drain only has to forget.
#include <errno.h>
#include <linux/time_types.h>
#include <liburing/io_uring.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>

#include "backend.h"
#include "file_pool.h"
#include "ops.h"

namespace ringio {
namespace {

constexpr uint32_t kReadBit = 1;
constexpr uint32_t kWriteBit = 2;

struct FdState {
  uint32_t ready = kReadBit | kWriteBit;  // unknown counts as ready: the syscall will tell
  bool registered = false;
  bool pollable = true;
  // The peer hung up or the socket has an error: whatever is left (EOF, the error) must be read by a
  // syscall, and no new edge will announce it, so readiness is never cleared on a short read again.
  bool hup = false;
  // A byte stream (stream socket, pipe, tty): a short read means drained. Not so for datagrams.
  bool stream = true;
  // `stream` is known already (an accepted socket has its listener's type): Register asks no getsockopt.
  bool typed = false;
  int timer_slot = -1;  // for a timerfd: the TIMEOUT op that owns it
  // Parked ops per direction, FIFO. Vectors, not deques: a std::deque allocates a 512-byte block and
  // its map as soon as it exists, ~1.2 KiB per fd for the two, where most fds park one op or none.
  std::vector<int32_t> waiters[2];
};

class EpollBackend final : public Backend {
 public:
  EpollBackend(double* stats) : Backend(stats) {}

  bool Init(std::string* reason) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      *reason = std::string("epoll_create1 failed: ") + strerrorname_np(errno);
      return false;
    }
    return true;
  }
  ~EpollBackend() override {
    Drain();
    if (epfd_ >= 0) close(epfd_);
  }

  const char* Name() const override { return "epoll"; }
  int PollFd() const override { return epfd_; }
  uint32_t Entries() const override { return 0; }
  // Listed the same way as the io_uring backend's: op:NAME for every op this engine can run (ops.h).
  std::vector<std::string> Features() const override {
    // BUFFER_SELECT: the engine picks a pool buffer when the fd is ready (PbufOpen), as the kernel does.
    std::vector<std::string> f = {"EPOLLET", "TIMERFD", "BUFFER_SELECT"};
    for (uint32_t i = 0; i < kOpCount; i++) {
      if (kOps[i].run != nullptr || kOps[i].engine_op) f.push_back(std::string("op:") + kOps[i].name);
    }
    return f;
  }

  void Queue(const Op& op) override {
    stats_[S_SUBMITTED] += 1;
    switch (op.legacy_op) {
      case IORING_OP_ASYNC_CANCEL: {
        int res = CancelSlot(static_cast<int32_t>(static_cast<uint32_t>(op.addr)));
        if (op.user >= 0) PushReady(op.user, res);
        return;
      }
      case IORING_OP_TIMEOUT:
        StartTimer(op);
        return;
      default:
        break;
    }
    if (op.interest == INTEREST_POOL) {
      SubmitToPool(op);
      return;
    }
    uint32_t cflags = 0;
    if (op.interest == INTEREST_NONE) {
      int res = Run(op, &cflags);
      PushReady(op.user, res, cflags);
      return;
    }
    int dir = op.interest == INTEREST_READABLE ? 0 : 1;
    const int ifd = op.interest_fd;
    FdState& f = fds_[ifd];
    // Registering on first use tells sockets and pipes from regular files (epoll answers EPERM).
    if (!f.registered && f.pollable && !Register(ifd, f) && f.pollable) {
      PushReady(op.user, -errno);
      return;
    }
    if (!f.pollable) {
      // A regular file (or the like): always "ready", but its syscall may block on the disk, so the
      // read/write family goes to the file pool. Anything else is quick and runs now.
      const OpSpec* spec = FindOp(op.legacy_op);
      if (spec != nullptr && spec->may_block) {
        SubmitToPool(op);
      } else {
        int res = Run(op, &cflags);
        PushReady(op.user, res, cflags);
      }
      return;
    }
    if (f.waiters[dir].empty() && (f.ready & (1u << dir))) {
      int res = Run(op, &cflags);
      if (res != -EAGAIN) {
        if (f.stream && !f.hup && Drained(op, res)) f.ready &= ~(1u << dir);
        if (op.legacy_op == IORING_OP_ACCEPT && res >= 0) Accepted(res, f.stream);
        PushReady(op.user, res, cflags);
        return;
      }
      f.ready &= ~(1u << dir);
    }
    Park(op, dir, f);
  }

  std::string PbufOpen(uint32_t size, uint32_t max) override {
    if (pbuf_max_ != 0) return "a buffer pool is already open on this driver";
    if (max == 0 || max > 32768) return "the buffer count must be 1..32768";
    PbufInit(size, max);
    // A stack: the warmest buffer goes next (PbufGrow pushes a chunk so that its lowest id is on top).
    pbuf_free_.reserve(max);
    return "";
  }

  void SubmitToPool(const Op& op) {
    // SAFETY: the pool owns a copy of the Op; its pointers stay valid because the JS op table keeps
    // the buffers until this op's completion, which only Collect delivers.
    if (!RegisterPool()) {
      PushReady(op.user, -errno);
      return;
    }
    if (op.user >= 0) SlotFor(op.user).pooled = true;
    pool_.Submit(op);
  }

  void Flush(bool) override {}

  void Collect() override {
    struct epoll_event evs[256];
    for (;;) {
      stats_[S_ENTERS] += 1;
      int n = epoll_wait(epfd_, evs, 256, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        uint32_t e = evs[i].events;
        if (fd == pool_efd_) {
          CollectPool();
          continue;
        }
        auto it = fds_.find(fd);
        if (it == fds_.end()) continue;
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) it->second.ready |= kReadBit;
        if (e & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) it->second.hup = true;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) it->second.ready |= kWriteBit;
        if (it->second.timer_slot >= 0) {
          FireTimer(fd);
          continue;
        }
        RunWaiters(fd, 0);
        RunWaiters(fd, 1);
      }
      if (n < 256) return;
    }
  }

  uint32_t Reap(int32_t* out, uint32_t cap) override { return ReapReady(out, cap); }

  void Drain() override {
    // SAFETY: running pool jobs may be writing into JS buffers: wait for them before forgetting anything.
    pool_.Drain();
    for (Slot& s : slots_) {
      if (s.pooled) {
        s.pooled = false;
        if (s.batch) s.batch->active = false;
        stats_[S_INFLIGHT] -= 1;
      }
    }
    for (auto& kv : fds_) {
      if (kv.second.timer_slot >= 0) close(kv.first);
    }
    fds_.clear();
    for (Slot& s : slots_) {
      if (s.parked) {
        s.parked = false;
        s.connecting = false;
        s.timerfd = -1;
        stats_[S_INFLIGHT] -= 1;
      }
    }
    int32_t scratch[CQE_WORDS];
    while (ReapReady(scratch, 1) > 0) {
    }
  }

 private:
  bool Register(int fd, FdState& f) {
    if (f.registered) return true;
    if (!f.pollable) return false;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST) {
      f.registered = true;
      if (f.typed) return true;
      int type = 0;
      socklen_t l = sizeof type;
      if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0) f.stream = type == SOCK_STREAM;
      f.typed = true;
      return true;
    }
    if (errno == EPERM) f.pollable = false;
    return false;
  }

  // An ACCEPT gave `fd`: a socket of its listener's type (accept(2) keeps SOCK_STREAM or SOCK_SEQPACKET),
  // so its registration needs no getsockopt(SO_TYPE), one syscall per connection that libuv does not
  // make. Whatever the table held for that number is stale (its fd was closed), so it starts fresh.
  void Accepted(int fd, bool listener_stream) {
    FdState& n = fds_[fd];
    FailWaiters(n);
    n = FdState();
    n.stream = listener_stream;
    n.typed = true;
  }

  // A short read or write means the socket (or pipe) had no more to give or take at that moment. With
  // edge-triggered epoll, anything that arrives after the syscall raises a new edge, so treating the
  // direction as not ready saves the EAGAIN syscall the next op would make (libuv's partial-read rule;
  // which ops it applies to is the op table's drained_when_short). Not once the fd has reported a
  // hang-up or error (FdState::hup): a FIN that came with the data has already had its edge, and only
  // another syscall will see the EOF.
  bool Drained(const Op& op, int res) const {
    const OpSpec* spec = FindOp(op.legacy_op);
    uint32_t len = op.len;
    if ((op.sqe_flags & IOSQE_BUFFER_SELECT) && (len == 0 || len > pbuf_size_)) len = pbuf_size_;
    return spec != nullptr && spec->drained_when_short && res >= 0 && static_cast<uint32_t>(res) < len;
  }

  void Park(const Op& op, int dir, FdState& f) {
    Slot& s = SlotFor(op.user);
    s.op = op;
    s.parked = true;
    f.waiters[dir].push_back(op.user);
  }

  void RunWaiters(int fd, int dir) {
    auto it = fds_.find(fd);
    if (it == fds_.end()) return;
    FdState& f = it->second;
    while (!f.waiters[dir].empty() && (f.ready & (1u << dir))) {
      int32_t user = f.waiters[dir].front();
      Slot& s = slots_[static_cast<size_t>(user)];
      uint32_t cflags = 0;
      int res = Run(s.op, &cflags);
      if (res == -EAGAIN) {
        f.ready &= ~(1u << dir);
        return;
      }
      f.waiters[dir].erase(f.waiters[dir].begin());
      s.parked = false;
      if (f.stream && !f.hup && Drained(s.op, res)) f.ready &= ~(1u << dir);
      if (s.op.legacy_op == IORING_OP_ACCEPT && res >= 0) Accepted(res, f.stream);
      PushReady(user, res, cflags);
    }
  }

  void StartTimer(const Op& op) {
    const auto* ts = reinterpret_cast<const struct __kernel_timespec*>(op.addr);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) {
      PushReady(op.user, -errno);
      return;
    }
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = ts->tv_sec;
    its.it_value.tv_nsec = ts->tv_nsec;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;  // 0 disarms
    int flags = (op.op_flags & IORING_TIMEOUT_ABS) ? TFD_TIMER_ABSTIME : 0;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = tfd;
    if (timerfd_settime(tfd, flags, &its, nullptr) < 0 || epoll_ctl(epfd_, EPOLL_CTL_ADD, tfd, &ev) < 0) {
      int e = errno;
      close(tfd);
      PushReady(op.user, -e);
      return;
    }
    Slot& s = SlotFor(op.user);
    s.op = op;
    s.parked = true;
    s.timerfd = tfd;
    FdState& f = fds_[tfd];
    f.registered = true;
    f.timer_slot = op.user;
  }

  void FireTimer(int tfd) {
    uint64_t expirations;
    if (read(tfd, &expirations, sizeof expirations) < 0) return;  // spurious
    auto it = fds_.find(tfd);
    int32_t user = it->second.timer_slot;
    fds_.erase(it);
    close(tfd);  // closing drops the epoll registration too
    Slot& s = slots_[static_cast<size_t>(user)];
    s.parked = false;
    s.timerfd = -1;
    PushReady(user, -ETIME);  // io_uring reports an expired timeout as -ETIME; so do we
  }

  int CancelSlot(int32_t target) {
    if (target >= 0 && static_cast<size_t>(target) < slots_.size() && slots_[static_cast<size_t>(target)].pooled) {
      BatchState* b = slots_[static_cast<size_t>(target)].batch.get();
      if (b != nullptr && b->active) {
        // READ_MANY: the job stops between entries (one queued stops before its first); the entries it
        // did not run keep -ECANCELED, and the batch completes as one job still.
        b->cancel.store(true, std::memory_order_relaxed);
        return 0;
      }
      // A job that has not started is dropped (it completes with ECANCELED); a running one finishes.
      return pool_.Cancel(target) ? 0 : -EALREADY;
    }
    if (target < 0 || static_cast<size_t>(target) >= slots_.size() || !slots_[static_cast<size_t>(target)].parked) {
      return -ENOENT;
    }
    Slot& s = slots_[static_cast<size_t>(target)];
    if (s.timerfd >= 0) {
      fds_.erase(s.timerfd);
      close(s.timerfd);
      s.timerfd = -1;
    } else {
      auto it = fds_.find(s.op.interest_fd);
      if (it != fds_.end()) {
        for (auto& q : it->second.waiters) {
          auto pos = std::find(q.begin(), q.end(), target);
          if (pos != q.end()) q.erase(pos);
        }
      }
    }
    s.parked = false;
    s.connecting = false;  // the slot's next CONNECT (its next op, after this completion) starts afresh
    PushReady(target, -ECANCELED);
    return 0;
  }

  // Forget an fd that is being closed: its parked ops can never become ready now.
  void ForgetFd(int fd) override {
    auto it = fds_.find(fd);
    if (it == fds_.end()) return;
    if (it->second.registered && it->second.timer_slot < 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    FailWaiters(it->second);
    fds_.erase(it);
  }

  // The ops parked on an fd that is gone fail with EBADF: they can never become ready.
  void FailWaiters(FdState& f) {
    for (auto& q : f.waiters) {
      for (int32_t user : q) {
        slots_[static_cast<size_t>(user)].parked = false;
        slots_[static_cast<size_t>(user)].connecting = false;
        PushReady(user, -EBADF);
      }
      q.clear();
    }
  }

  // The syscall behind each legacy op (the op table's runner), answered as io_uring would. An op with
  // IOSQE_BUFFER_SELECT (a RECV from a pool reader) runs now that the fd is ready, into the pool's next
  // free buffer: a result of 1 byte or more keeps the buffer and says so in *cflags, as the kernel does
  // (IORING_CQE_F_BUFFER | id << 16); EOF, EAGAIN and errors leave it in the pool. No free buffer
  // answers ENOBUFS, as the kernel does.
  int Run(const Op& op, uint32_t* cflags) {
    if (!(op.sqe_flags & IOSQE_BUFFER_SELECT)) return RunOp(op, this);
    if (pbuf_free_.empty()) {
      // Only ENOBUFS when there is something to read (as the kernel): else park for the next edge.
      char probe;
      int r = RunPeek(op.fd, &probe);
      return r > 0 ? -ENOBUFS : r;
    }
    uint16_t id = pbuf_free_.back();
    Op o = op;
    // SAFETY: the pool's memory is held by the loop binding until this backend is gone.
    o.addr = reinterpret_cast<uint64_t>(PbufAddr(id));
    o.len = op.len == 0 || op.len > pbuf_size_ ? pbuf_size_ : op.len;
    int r = RunOp(o, this);
    if (r > 0) {
      pbuf_free_.pop_back();
      pbuf_out_[id] = 1;
      *cflags = IORING_CQE_F_BUFFER | (static_cast<uint32_t>(id) << IORING_CQE_BUFFER_SHIFT);
    }
    return r;
  }

  static int RunPeek(int fd, char* probe) {
    for (;;) {
      ssize_t r = recv(fd, probe, 1, MSG_PEEK | MSG_DONTWAIT);
      if (r >= 0) return static_cast<int>(r);
      if (errno != EINTR) return -errno;
    }
  }

  void PbufAdd(uint16_t id, uint32_t) override { pbuf_free_.push_back(id); }

  std::vector<uint16_t> pbuf_free_;

  bool RegisterPool() {
    if (pool_efd_ >= 0) return true;
    int efd = pool_.EventFd();
    if (efd < 0) return false;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = efd;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, efd, &ev) < 0) return false;
    pool_efd_ = efd;
    return true;
  }

  void CollectPool() {
    done_.clear();
    pool_.TakeDone(&done_);
    for (const Cqe& c : done_) {
      if (c.user >= 0) {
        Slot& s = slots_[static_cast<size_t>(c.user)];
        s.pooled = false;
        if (s.batch) s.batch->active = false;
      }
      PushReady(c.user, c.res);
    }
  }

  int epfd_ = -1;
  std::unordered_map<int, FdState> fds_;
  FilePool pool_;
  int pool_efd_ = -1;
  std::vector<Cqe> done_;
};

}  // namespace

Backend* NewEpollBackend(double* stats, const OpenOptions&, std::string* reason) {
  auto* b = new EpollBackend(stats);
  if (!b->Init(reason)) {
    delete b;
    return nullptr;
  }
  return b;
}

}  // namespace ringio
