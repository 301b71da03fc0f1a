// The io_uring backend. Private to the addon; JS sees it only through loop.cc.
//
// Rules this file keeps:
//  1. The ring is created, submitted to and reaped on the thread that owns the JS environment, and only
//     there (SINGLE_ISSUER when the kernel has it).
//  2. Pushing an SQE makes no syscall. The ring is entered when JS flushes a batch, when the SQ is full,
//     when the loop reports the ring (or its eventfd) readable, and in Drain.
//  3. An op's final CQE (one without IORING_CQE_F_MORE) ends its time in the kernel; S_INFLIGHT counts
//     ops between submission and that CQE, and Drain does not return until it is zero.
#include <errno.h>
#include <liburing.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "backend.h"
#include "ops.h"
#include "read_many.h"

namespace ringio {
namespace {

std::string ReadSysctl(const char* path) {
  std::ifstream f(path);
  std::string v;
  if (f) std::getline(f, v);
  return v;
}

std::string SetupFailureReason(int err, uint32_t entries) {
  std::string r = std::string("io_uring_setup failed: ") + strerrorname_np(err);
  if (err == EPERM || err == EACCES) {
    std::string d = ReadSysctl("/proc/sys/kernel/io_uring_disabled");
    if (!d.empty() && d != "0") {
      r += " (kernel.io_uring_disabled=" + d + ")";
    } else {
      r += " (blocked by a seccomp filter, as in Docker's default profile, or by an LSM)";
    }
  } else if (err == ENOSYS) {
    r += " (kernel built without io_uring)";
  } else if (err == ENOMEM || err == ENOBUFS) {
    r += " (ring memory for " + std::to_string(entries) + " entries exceeds RLIMIT_MEMLOCK on this kernel)";
  }
  return r;
}

class UringBackend final : public Backend {
 public:
  UringBackend(double* stats) : Backend(stats) {}

  bool Init(const OpenOptions& o, std::string* reason) {
    // CVE-2024-22017: a ring keeps the credentials it was created with, so a process that changes its
    // uid later would keep submitting as the old user. Refuse rings in set-id processes outright.
    if (getuid() != geteuid() || getgid() != getegid()) {
      *reason = "process runs set-user-ID or set-group-ID (CVE-2024-22017: rings keep old credentials)";
      return false;
    }
    if (!o.fault.empty()) {
      int e = o.fault == "EPERM" ? EPERM : o.fault == "ENOSYS" ? ENOSYS : o.fault == "ENOMEM" ? ENOMEM : EINVAL;
      *reason = SetupFailureReason(e, o.entries) + " [injected by RINGIO_FAULT_URING_SETUP]";
      return false;
    }
    // Richest flags first. A kernel that lacks a flag answers EINVAL; anything else is final.
    //
    // DEFER_TASKRUN is not among the defaults: the runtime sleeps in libuv's epoll_wait on the ring's
    // eventfd, and on DEFER_TASKRUN rings the kernel signals that eventfd for deferred task work about
    // one scheduler tick late (measured on 6.18: 62 round trips/s, p50 16 ms, on an idle connection;
    // bench/experiments/wake-stall.c reproduces it without ringio). COOP_TASKRUN with TASKRUN_FLAG posts
    // completions before it signals, so a sleeping loop wakes in microseconds, and the flag tells us
    // when an enter is needed to run task work. docs/design/driver.md has the measurements.
    // RINGIO_URING_SETUP=defer puts DEFER_TASKRUN first again, for experiments only.
    struct Attempt {
      uint32_t flags;
      const char* names;
    };
    constexpr uint32_t kCoop = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    const Attempt defer = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
                           "SINGLE_ISSUER,DEFER_TASKRUN,SUBMIT_ALL"};
    const Attempt defaults[] = {
        {IORING_SETUP_SINGLE_ISSUER | kCoop | IORING_SETUP_SUBMIT_ALL, "SINGLE_ISSUER,COOP_TASKRUN,TASKRUN_FLAG,SUBMIT_ALL"},
        {kCoop | IORING_SETUP_SUBMIT_ALL, "COOP_TASKRUN,TASKRUN_FLAG,SUBMIT_ALL"},
        {0, ""},
    };
    // RINGIO_URING_SETUP: comma-separated words, for experiments and tests: "defer", "none" (setup
    // flags), "nopollfirst" (no adaptive RECV_POLL_FIRST, as on a kernel without it).
    bool setup_defer = false, setup_none = false, setup_no_poll_first = false;
    for (size_t at = 0; at <= o.setup.size();) {
      size_t comma = o.setup.find(',', at);
      if (comma == std::string::npos) comma = o.setup.size();
      const std::string word = o.setup.substr(at, comma - at);
      if (word == "defer") setup_defer = true;
      if (word == "none") setup_none = true;
      if (word == "nopollfirst") setup_no_poll_first = true;
      at = comma + 1;
    }
    std::vector<Attempt> attempts;
    if (setup_defer) attempts.push_back(defer);
    if (!setup_none) attempts.insert(attempts.end(), std::begin(defaults), std::end(defaults));
    else attempts.push_back({0, ""});
    int err = 0;
    for (const Attempt& a : attempts) {
      struct io_uring_params p;
      memset(&p, 0, sizeof p);
      p.flags = a.flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
      p.cq_entries = o.entries * 4;
      err = -io_uring_queue_init_params(o.entries, &ring_, &p);
      if (err == 0) {
        flags_ = a.flags;
        flag_names_ = a.names;
        kernel_features_ = p.features;
        sq_entries_ = p.sq_entries;
        break;
      }
      if (err != EINVAL) break;
    }
    if (err != 0) {
      *reason = SetupFailureReason(err, o.entries);
      return false;
    }
    ring_ok_ = true;

    struct io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    if (probe == nullptr) {
      *reason = "io_uring opcode probe unsupported (kernel older than 5.6)";
      return false;
    }
    // The op table (ops.h) says which opcodes are required; every supported one is listed as op:NAME.
    for (uint32_t i = 0; i < kOpCount; i++) {
      const OpSpec& op = kOps[i];
      if (op.probe == Probe::kNative) {
        ops_.push_back(std::string("op:") + op.name);  // built on required opcodes probed here too
      } else if (io_uring_opcode_supported(probe, op.opcode)) {
        ops_.push_back(std::string("op:") + op.name);
      } else if (op.probe == Probe::kRequired) {
        *reason = std::string("kernel lacks io_uring opcode ") + op.name;
        io_uring_free_probe(probe);
        return false;
      }
    }
    io_uring_free_probe(probe);

    // Multishot accept (IORING_ACCEPT_MULTISHOT) came in 5.19 with no probe bit of its own: the kernel
    // version says. @ringio/net still falls back to single accepts if the kernel answers EINVAL.
    struct utsname u;
    unsigned major = 0, minor = 0;
    if (uname(&u) == 0 && sscanf(u.release, "%u.%u", &major, &minor) == 2) {
      accept_multishot_ = major > 5 || (major == 5 && minor >= 19);
    }

    // Multishot RECV (6.0) has no probe bit either. Provided-buffer rings (5.19) are probed by
    // registering a one-entry ring under a spare group id and taking it away again.
    recv_multishot_ = major >= 6;
    pbuf_ring_reason_ = ProbePbufRing();

    if (io_uring_register_ring_fd(&ring_) == 1) ring_fd_registered_ = true;
    else missing_.push_back("REGISTERED_RING_FD: IORING_REGISTER_RING_FDS refused (kernel older than 5.18)");

    poll_first_reason_ = setup_no_poll_first ? "disabled by RINGIO_URING_SETUP=nopollfirst" : ProbeRecvPollFirst();
    if (!poll_first_reason_.empty()) missing_.push_back("RECV_POLL_FIRST: " + poll_first_reason_);

    // What libuv's poll watches. Without DEFER_TASKRUN, the ring fd itself: it is readable exactly while
    // the CQ holds entries (or an overflow waits), and the kernel wakes its pollers when it posts them,
    // so the loop wakes as fast as with an eventfd, without the eventfd's signal on every CQ commit and
    // its read (a syscall) on every wakeup. A DEFER_TASKRUN ring (RINGIO_URING_SETUP=defer, experiments
    // only) is readable only after its task work ran, which needs the enter we would be waiting to make,
    // so there the registered eventfd stays. docs/design/driver.md, "Waking a sleeping loop".
    if (!(flags_ & IORING_SETUP_DEFER_TASKRUN)) {
      poll_fd_ = ring_.ring_fd;
      return true;
    }
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) {
      *reason = std::string("eventfd failed: ") + strerrorname_np(errno);
      return false;
    }
    int r = io_uring_register_eventfd(&ring_, efd_);
    if (r < 0) {
      *reason = std::string("io_uring_register_eventfd failed: ") + strerrorname_np(-r);
      return false;
    }
    poll_fd_ = efd_;
    return true;
  }

  ~UringBackend() override {
    // SAFETY: the ring goes first (Drain has already seen every op's final CQE), so the kernel lets go
    // of the buffer ring before its memory is unmapped; the buffers themselves are JS memory the loop
    // binding releases after this destructor.
    if (ring_ok_) io_uring_queue_exit(&ring_);
    if (br_ != nullptr) munmap(br_, br_bytes_);
    if (efd_ >= 0) close(efd_);
  }

  std::string PbufOpen(uint32_t size, uint32_t max) override {
    if (!pbuf_ring_reason_.empty()) return pbuf_ring_reason_;
    if (br_ != nullptr) return "a buffer pool is already registered on this ring";
    if (max == 0 || max > 32768 || (max & (max - 1)) != 0) return "the buffer count must be a power of two <= 32768";
    // The ring has an entry for every buffer the pool may grow to; it starts empty (PbufGrow fills it).
    size_t bytes = static_cast<size_t>(max) * sizeof(struct io_uring_buf);
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return std::string("mmap of the buffer ring failed: ") + strerrorname_np(errno);
    auto* br = static_cast<struct io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = reinterpret_cast<uint64_t>(mem);
    reg.ring_entries = max;
    reg.bgid = 0;
    int r = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (r < 0) {
      munmap(mem, bytes);
      return std::string("IORING_REGISTER_PBUF_RING failed: ") + strerrorname_np(-r);
    }
    br_ = br;
    br_bytes_ = bytes;
    PbufInit(size, max);
    return "";
  }

  const char* Name() const override { return "uring"; }
  int PollFd() const override { return poll_fd_; }
  uint32_t Entries() const override { return sq_entries_; }

  std::vector<std::string> Missing() const override { return missing_; }

  std::vector<std::string> Features() const override {
    std::vector<std::string> f;
    std::string names = flag_names_;
    size_t start = 0;
    while (start < names.size()) {
      size_t comma = names.find(',', start);
      if (comma == std::string::npos) comma = names.size();
      f.push_back(names.substr(start, comma - start));
      start = comma + 1;
    }
    if (kernel_features_ & IORING_FEAT_EXT_ARG) f.push_back("EXT_ARG");
    if (kernel_features_ & IORING_FEAT_NODROP) f.push_back("NODROP");
    if (kernel_features_ & IORING_FEAT_FAST_POLL) f.push_back("FAST_POLL");
    if (ring_fd_registered_) f.push_back("REGISTERED_RING_FD");
    if (poll_first_reason_.empty()) f.push_back("RECV_POLL_FIRST");
    if (accept_multishot_) f.push_back("ACCEPT_MULTISHOT");
    if (pbuf_ring_reason_.empty()) f.push_back("PBUF_RING");
    if (pbuf_ring_reason_.empty() && recv_multishot_) f.push_back("RECV_MULTISHOT");
    f.insert(f.end(), ops_.begin(), ops_.end());
    return f;
  }

  void Queue(const Op& op) override {
    if (op.opcode == kOpReadMany) {
      QueueBatch(op);
      return;
    }
    if (op.opcode == IORING_OP_ASYNC_CANCEL && CancelBatch(op)) return;
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      // The SQ is full: hand what we have to the kernel and take a fresh entry.
      Submit(false);
      sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) {
        PushReady(op.user, -EBUSY);
        return;
      }
    }
    // SAFETY: op.addr / op.addr2 point either into JS buffers that the JS op table keeps referenced
    // until this op's final CQE, or into this op's Slot, which is not reused before that CQE either.
    io_uring_prep_rw(op.opcode, sqe, op.fd, reinterpret_cast<const void*>(op.addr), op.len, op.off);
    if (op.has_addr2) sqe->addr2 = op.addr2;
    sqe->rw_flags = static_cast<__kernel_rwf_t>(op.op_flags);
    sqe->flags = op.sqe_flags;
    sqe->ioprio = op.ioprio;
    sqe->splice_fd_in = op.extra;
    sqe->user_data = static_cast<uint32_t>(op.user);
    if (op.opcode == IORING_OP_RECV && poll_first_reason_.empty()) PollFirstIfWaited(op, sqe);
    stats_[S_SUBMITTED] += 1;
    pending_ += 1;
  }

  void Flush(bool get_events) override {
    if (pending_ > 0 || (get_events && NeedsEnterForEvents())) Submit(get_events);
  }

  void Collect() override {
    epoch_++;  // a wakeup: whatever completes now waited (RecvDone)
    if (efd_ >= 0) {
      // The eventfd only says "look"; one read resets its count (it is not a semaphore eventfd).
      uint64_t v;
      ssize_t r = read(efd_, &v, sizeof v);
      (void)r;
    }
    if (pending_ > 0 || NeedsEnterForEvents()) Submit(true);
  }

  uint32_t Reap(int32_t* out, uint32_t cap) override {
    uint32_t n = ReapReady(out, cap);
    unsigned head;
    unsigned seen = 0;
    uint32_t finished = 0;  // final CQEs: S_INFLIGHT goes down by this once, after the loop
    struct io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (n == cap) break;
      seen++;
      int32_t user = static_cast<int32_t>(static_cast<uint32_t>(cqe->user_data));
      if (user < 0) continue;  // internal SQEs (cancels issued by Drain or by JS with USER_IGNORE)
      int32_t res = cqe->res;
      if (cqe->user_data >> 32) {
        // A READ_MANY entry: JS hears of the batch once, when its last entry is in; with kReadManyEach
        // also of every other entry as it arrives (a MORE completion naming the entry's index).
        const uint32_t i = static_cast<uint32_t>(cqe->user_data >> 32) - 1;
        bool each = false;
        if (!BatchEntryDone(user, i, res, &res, &each)) {
          if (!each) continue;
          int32_t* w = out + n * CQE_WORDS;
          w[C_USER] = user;
          w[C_RES] = res;
          w[C_FLAGS] = static_cast<int32_t>(IORING_CQE_F_MORE | (i << kEntryShift));
          n++;
          continue;
        }
      }
      if (!(cqe->flags & IORING_CQE_F_MORE)) {
        finished++;
        if (static_cast<size_t>(user) < recv_track_.size()) RecvDone(user);
      }
      if (cqe->flags & IORING_CQE_F_BUFFER) PbufTaken(cqe->flags);
      int32_t* w = out + n * CQE_WORDS;
      w[C_USER] = user;
      w[C_RES] = res;
      w[C_FLAGS] = static_cast<int32_t>(cqe->flags);
      n++;
    }
    stats_[S_INFLIGHT] -= finished;
    io_uring_cq_advance(&ring_, seen);
    return n;
  }

  void Drain() override {
    if (!ring_ok_) return;
    int32_t scratch[CQE_WORDS];
    while (ReapReady(scratch, 1) > 0) {
    }
    Submit(true);
    if (Inflight() <= 0) return;
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) {
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
      sqe->user_data = static_cast<uint32_t>(USER_IGNORE);
    }
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    int warned = 0;
    bool retried = false;
    while (Inflight() > 0) {
      struct __kernel_timespec ts = {0, 50 * 1000 * 1000};
      struct io_uring_cqe* cqe = nullptr;
      stats_[S_ENTERS] += 1;
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      pending_ = 0;
      unsigned head;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        seen++;
        int32_t user = static_cast<int32_t>(static_cast<uint32_t>(cqe->user_data));
        int32_t ignored;
        const bool entry = (cqe->user_data >> 32) != 0;
        if (user >= 0 && entry && BatchEntryDone(user, static_cast<uint32_t>(cqe->user_data >> 32) - 1, cqe->res, &ignored)) {
          stats_[S_INFLIGHT] -= 1;
        } else if (user >= 0 && !entry && !(cqe->flags & IORING_CQE_F_MORE)) {
          stats_[S_INFLIGHT] -= 1;
        }
        if (user < 0 && cqe->res == -EINVAL && !retried) {
          // A kernel without CANCEL_ANY (before 5.19): cancel slot by slot instead.
          retried = true;
          CancelEachSlot();
        }
      }
      io_uring_cq_advance(&ring_, seen);
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int secs = static_cast<int>(now.tv_sec - started.tv_sec);
      if (secs >= 5 * (warned + 1)) {
        // SAFETY: we may not return while the kernel can still write into JS memory, so we keep
        // waiting. Every op the runtime issues is cancellable or finishes by itself; say so if not.
        warned++;
        fprintf(stderr, "ringio: still waiting for %.0f in-flight io_uring ops to finish before teardown\n",
                Inflight());
      }
    }
  }

 private:
  // The next SQE, entering the kernel once if the SQ is full; nullptr if it stays full.
  struct io_uring_sqe* NextSqe() {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) return sqe;
    Submit(false);
    return io_uring_get_sqe(&ring_);
  }

  static uint64_t EntryUser(int32_t user, uint32_t i) {
    return static_cast<uint64_t>(static_cast<uint32_t>(user)) | (static_cast<uint64_t>(i + 1) << 32);
  }

  // READ_MANY (read_many.h): one READ SQE per entry, user_data = slot | (index + 1) << 32. A batch
  // larger than the SQ goes in SQ-sized pieces (NextSqe enters the kernel in between); the CQ holds
  // four times the SQ and overflows without loss (NODROP), and nothing is reaped before Reap.
  void QueueBatch(const Op& op) {
    BatchState& b = *reinterpret_cast<BatchState*>(op.addr);
    const uint32_t n = static_cast<uint32_t>(b.entries.size());
    stats_[S_SUBMITTED] += 1;
    for (uint32_t i = 0; i < n; i++) {
      if (b.done[i]) continue;
      struct io_uring_sqe* sqe = NextSqe();
      if (sqe == nullptr) {
        b.results[i] = -EBUSY;
        b.done[i] = 1;
        continue;
      }
      const BatchEntry& e = b.entries[i];
      // SAFETY: e.addr is a JS buffer the batch's JS op keeps referenced until the batch's completion,
      // which comes only after every entry's CQE (BatchEntryDone).
      io_uring_prep_read(sqe, op.fd, reinterpret_cast<void*>(e.addr), e.len, e.off);
      sqe->user_data = EntryUser(op.user, i);
      b.left++;
      pending_ += 1;
    }
    if (b.left == 0) Finish(b, op.user);
  }

  void Finish(BatchState& b, int32_t user) {
    b.active = false;
    PushReady(user, static_cast<int32_t>(b.entries.size()));
  }

  // An entry's CQE: its result goes into the batch; true (and *batch_res = the entry count) when it was
  // the batch's last. *each (when given) says an entry that was not the last is to be reported on its own.
  bool BatchEntryDone(int32_t user, uint32_t i, int32_t res, int32_t* batch_res, bool* each = nullptr) {
    if (static_cast<size_t>(user) >= slots_.size()) return false;
    BatchState* b = slots_[static_cast<size_t>(user)].batch.get();
    if (b == nullptr || !b->active || i >= b->entries.size() || b->done[i]) return false;
    b->results[i] = res;
    b->done[i] = 1;
    if (--b->left != 0) {
      if (each != nullptr) *each = b->each;
      return false;
    }
    b->active = false;
    *batch_res = static_cast<int32_t>(b->entries.size());
    return true;
  }

  // A cancel of a READ_MANY slot: one ASYNC_CANCEL per entry still out, each by its exact user_data, so
  // other ops on the same fd are not touched. The batch completes once every entry answered.
  bool CancelBatch(const Op& op) {
    if ((op.addr >> 32) != 0) return false;
    const int32_t target = static_cast<int32_t>(op.addr);
    if (target < 0 || static_cast<size_t>(target) >= slots_.size()) return false;
    BatchState* b = slots_[static_cast<size_t>(target)].batch.get();
    if (b == nullptr || !b->active || b->left == 0) return false;
    stats_[S_SUBMITTED] += 1;
    for (uint32_t i = 0; i < b->entries.size(); i++) {
      if (b->done[i]) continue;
      struct io_uring_sqe* sqe = NextSqe();
      if (sqe == nullptr) break;  // the rest finish on their own (page-cache reads do)
      io_uring_prep_cancel64(sqe, EntryUser(target, i), 0);
      sqe->user_data = static_cast<uint32_t>(USER_IGNORE);
      pending_ += 1;
    }
    if (op.user >= 0) PushReady(op.user, 0);
    return true;
  }

  // SAFETY: the ring entries point into JS memory the loop binding holds until this backend is gone.
  void PbufAdd(uint16_t id, uint32_t nth) override {
    io_uring_buf_ring_add(br_, PbufAddr(id), pbuf_size_, id, io_uring_buf_ring_mask(pbuf_max_), static_cast<int>(nth));
  }
  void PbufPublish(uint32_t n) override { io_uring_buf_ring_advance(br_, static_cast<int>(n)); }

  std::string ProbePbufRing() {
    long page = sysconf(_SC_PAGESIZE);
    void* mem = mmap(nullptr, static_cast<size_t>(page), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return std::string("mmap failed: ") + strerrorname_np(errno);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = reinterpret_cast<uint64_t>(mem);
    reg.ring_entries = 1;
    reg.bgid = 0xffff;
    int r = io_uring_register_buf_ring(&ring_, &reg, 0);
    std::string reason;
    if (r < 0) {
      reason = std::string("IORING_REGISTER_PBUF_RING failed: ") + strerrorname_np(-r) +
               (r == -EINVAL ? " (kernel older than 5.19)" : "");
    } else {
      io_uring_unregister_buf_ring(&ring_, 0xffff);
    }
    munmap(mem, static_cast<size_t>(page));
    return reason;
  }

  // Adaptive IORING_RECVSEND_POLL_FIRST (docs/design/driver.md, "Kernel time per op"). A single-shot
  // RECV that finds no data costs a full failed receive (socket lock, tcp_recvmsg, unlock) before the
  // kernel arms its poll. Request/response traffic (an HTTP keep-alive connection waiting for its next
  // request, a proxy waiting for its upstream's answer) finds no data nearly every time, so when the
  // last single-shot RECV on an fd had to wait, the next one on that fd goes straight to the poll.
  // "Had to wait" = its completion was not there at the first reap after the enter that submitted it
  // (epoch_ counts enters and wakeups). A wrong guess costs a poll arm that finds the data at once (one
  // task-work round) and clears the mark. Not for MSG_DONTWAIT (a poll-first RECV answers EAGAIN without
  // looking, and a non-blocking one must read data that is there) nor multishot receives (armed once
  // per connection).
  void PollFirstIfWaited(const Op& op, struct io_uring_sqe* sqe) {
    if ((op.ioprio & IORING_RECV_MULTISHOT) || (op.op_flags & MSG_DONTWAIT) || op.fd < 0 || op.user < 0) return;
    const size_t fd = static_cast<size_t>(op.fd);
    if (fd < recv_waited_.size() && recv_waited_[fd]) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    const size_t slot = static_cast<size_t>(op.user);
    if (slot >= recv_track_.size()) recv_track_.resize(slot + 64);
    recv_track_[slot] = {op.fd, epoch_ + 1};  // Submit makes epoch_ + 1 the epoch of this op's enter
  }

  void RecvDone(int32_t user) {
    RecvTrack& t = recv_track_[static_cast<size_t>(user)];
    if (t.fd < 0) return;
    const size_t fd = static_cast<size_t>(t.fd);
    if (fd < kMaxTrackedFd) {
      if (fd >= recv_waited_.size()) recv_waited_.resize(fd + 256);
      recv_waited_[fd] = t.epoch != epoch_;
    }
    t.fd = -1;
  }

  // Whether the kernel takes IORING_RECVSEND_POLL_FIRST on RECV (5.19+, no probe bit): one RECV with it
  // on a socket pair holding a byte. "" when it does, else why not. Runs before any op is in flight.
  std::string ProbeRecvPollFirst() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
      return std::string("socketpair failed: ") + strerrorname_np(errno);
    }
    std::string reason;
    char out = 'x';
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (send(sv[1], &out, 1, MSG_NOSIGNAL) != 1 || sqe == nullptr) {
      reason = "the probe could not be set up";
    } else {
      // SAFETY: the byte is a member, not a stack variable: should the RECV outlive the wait below
      // (the timeout), the kernel can still write it until the ring is gone, and the ring goes first.
      io_uring_prep_recv(sqe, sv[0], &probe_byte_, 1, 0);
      sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
      sqe->user_data = static_cast<uint32_t>(USER_IGNORE);
      struct io_uring_cqe* cqe = nullptr;
      struct __kernel_timespec ts = {1, 0};
      int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      if (r < 0 || cqe == nullptr) {
        reason = std::string("the probe's RECV did not complete: ") + strerrorname_np(r < 0 ? -r : EIO);
      } else {
        if (cqe->res == -EINVAL) reason = "the kernel refuses it on RECV (older than 5.19)";
        else if (cqe->res != 1) reason = std::string("the probe's RECV answered ") + strerrorname_np(-cqe->res);
        io_uring_cqe_seen(&ring_, cqe);
      }
    }
    close(sv[0]);
    close(sv[1]);
    return reason;
  }

  bool NeedsEnterForEvents() const {
    // With DEFER_TASKRUN, finished work waits as task_work until this thread enters with GETEVENTS.
    if (flags_ & IORING_SETUP_DEFER_TASKRUN) return true;
    // Otherwise the kernel says whether task_work or an overflow needs an enter.
    unsigned f = IO_URING_READ_ONCE(*ring_.sq.kflags);
    return (f & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
  }

  void Submit(bool get_events) {
    stats_[S_ENTERS] += 1;
    epoch_++;
    int r = get_events ? io_uring_submit_and_get_events(&ring_) : io_uring_submit(&ring_);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      fprintf(stderr, "ringio: io_uring_enter failed: %s\n", strerror(-r));
    }
    pending_ = 0;
  }

  void CancelEachSlot() {
    // Without CANCEL_ANY we do not know which slots are live in the kernel, so try every slot that
    // was ever used; unknown ones answer ENOENT, which costs nothing.
    for (size_t i = 0; i < slots_.size(); i++) {
      struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) {
        Submit(false);
        sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) return;
      }
      io_uring_prep_cancel64(sqe, i, 0);
      sqe->user_data = static_cast<uint32_t>(USER_IGNORE);
    }
  }

  struct io_uring ring_ {};
  bool ring_ok_ = false;
  bool ring_fd_registered_ = false;
  bool accept_multishot_ = false;
  bool recv_multishot_ = false;
  std::string pbuf_ring_reason_;
  struct io_uring_buf_ring* br_ = nullptr;
  size_t br_bytes_ = 0;
  int efd_ = -1;
  int poll_fd_ = -1;
  uint32_t flags_ = 0;
  uint32_t kernel_features_ = 0;
  uint32_t sq_entries_ = 0;
  uint32_t pending_ = 0;
  std::string flag_names_;
  std::vector<std::string> ops_;
  std::vector<std::string> missing_;
  // Adaptive RECV_POLL_FIRST (PollFirstIfWaited): "" when in use, else why not.
  std::string poll_first_reason_ = "not probed";
  struct RecvTrack {
    int32_t fd = -1;     // the fd of the single-shot RECV in this slot, -1: none
    uint64_t epoch = 0;  // the epoch of the enter that submitted it
  };
  static constexpr size_t kMaxTrackedFd = 1 << 22;
  std::vector<RecvTrack> recv_track_;  // by slot
  std::vector<uint8_t> recv_waited_;   // by fd: the last single-shot RECV on it had to wait
  uint64_t epoch_ = 0;                 // enters and wakeups so far
  uint8_t probe_byte_ = 0;             // ProbeRecvPollFirst's receive buffer
};

}  // namespace

Backend* NewUringBackend(double* stats, const OpenOptions& o, std::string* reason) {
  auto* b = new UringBackend(stats);
  if (!b->Init(o, reason)) {
    delete b;
    return nullptr;
  }
  return b;
}

uint32_t Backend::ReapReady(int32_t* out, uint32_t cap) {
  uint32_t n = 0;
  while (n < cap && !ready_.empty()) {
    const Cqe& c = ready_.front();
    if (c.user >= 0 && !(c.flags & IORING_CQE_F_MORE)) stats_[S_INFLIGHT] -= 1;
    int32_t* w = out + n * CQE_WORDS;
    w[C_USER] = c.user;
    w[C_RES] = c.res;
    w[C_FLAGS] = static_cast<int32_t>(c.flags);
    ready_.pop_front();
    n++;
  }
  return n;
}

}  // namespace ringio
