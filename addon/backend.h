// The backend interface: what the loop binding (loop.cc) needs from a driver, and the per-slot storage
// both backends share.
#pragma once

#include <linux/time_types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "record.h"

namespace ringio {

struct Cqe {
  int32_t user;
  int32_t res;
  uint32_t flags;
};

// One operation as decoded from a record: every pointer here has been resolved from a JS buffer that
// the JS op table keeps referenced until this op's final completion.
struct Op {
  uint8_t opcode = 0;
  uint8_t legacy_op = 0;
  uint8_t interest = 0;
  uint8_t sqe_flags = 0;
  uint16_t ioprio = 0;
  int32_t fd = -1;
  int32_t interest_fd = -1;
  int32_t user = USER_IGNORE;
  uint32_t len = 0;
  uint64_t off = 0;
  bool has_addr2 = false;
  uint64_t addr = 0;
  uint64_t addr2 = 0;
  uint32_t op_flags = 0;
  int32_t extra = 0;
};

// One READ_MANY batch (addon/read_many.cc): its entries resolved to pointers at decoding, and where
// their results go. Kept in the batch's Slot and reused by the next batch in that slot.
struct BatchEntry {
  uint64_t addr;  // SAFETY: a JS buffer the batch's JS op keeps referenced until the batch's completion
  uint32_t len;
  uint64_t off;
};
struct BatchState {
  std::vector<BatchEntry> entries;
  std::vector<uint8_t> done;  // 1: the entry's result is in `results` (io_uring: its CQE arrived)
  int32_t* results = nullptr; // SAFETY: the batch's Int32Array, referenced by its JS op as the buffers are
  uint32_t left = 0;          // io_uring: entries in the kernel
  bool active = false;        // between decoding and the batch's one completion
  bool each = false;          // io_uring: report every entry as it arrives (kReadManyEach)
  std::atomic<bool> cancel{false};  // epoll: the pool job stops between entries once set
};

// Native storage an op needs for as long as the kernel may read it: a timespec, a socklen_t, an iovec
// array. Indexed by the op's slot (user_data). JS frees a slot only after its final completion, so a
// slot is never reused while the kernel can still see its storage.
struct Slot {
  struct __kernel_timespec ts {};
  socklen_t socklen = 0;
  std::vector<iovec> iov;
  struct msghdr msg {};
  // Legacy engine state.
  Op op;
  bool parked = false;
  bool connecting = false;  // a legacy CONNECT that got EINPROGRESS: finish with SO_ERROR
  bool pooled = false;      // a legacy file op queued or running on the file thread pool
  int timerfd = -1;
  // READ_MANY: created by the slot's first batch, reused after (shared_ptr: Slot stays copyable).
  std::shared_ptr<BatchState> batch;
};

struct OpenOptions {
  uint32_t entries = 1024;
  std::string fault;  // fault injection for tests: "EPERM" etc. makes io_uring setup fail that way
  std::string setup;  // io_uring setup flags for experiments: "" (default), "defer" or "none"
};

class Backend {
 public:
  explicit Backend(double* stats) : stats_(stats) {}
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  virtual const char* Name() const = 0;
  // The fd the host loop watches for readability.
  virtual int PollFd() const = 0;
  // Queue one op. Some ops complete at once and land in the ready list.
  virtual void Queue(const Op& op) = 0;
  // Hand queued ops to the kernel; with get_events, also collect finished work in the same syscall.
  virtual void Flush(bool get_events) = 0;
  // The poll fd was readable, or a reap was asked for: collect whatever the kernel finished.
  virtual void Collect() = 0;
  // Copy up to cap completions out. Returns how many.
  virtual uint32_t Reap(int32_t* out, uint32_t cap) = 0;
  // Cancel everything in flight and wait until the kernel has answered for all of it.
  virtual void Drain() = 0;
  virtual std::vector<std::string> Features() const = 0;
  // Kernel features the backend probed for and runs without, each "NAME: why" (stats().degraded).
  virtual std::vector<std::string> Missing() const { return {}; }
  // An fd is being closed outside the driver: drop any readiness state kept for its number.
  virtual void ForgetFd(int) {}
  virtual uint32_t Entries() const = 0;

  // Provided buffers (docs/design/net.md): one pool per driver, buffer group 0, of buffers of `size`
  // bytes, at most `max` of them (a power of two: the ring's entries). PbufOpen sets it up empty and
  // returns "" when it is in place, else why not; PbufGrow then adds buffers, in chunks of JS memory the
  // loop binding keeps referenced until the backend is gone. Ops with IOSQE_BUFFER_SELECT take a buffer
  // only when data arrives: the kernel picks it (io_uring) or the engine does (epoll); the completion
  // says which (IORING_CQE_F_BUFFER, id in the upper 16 bits), and JS gives it back with PbufRecycle.
  virtual std::string PbufOpen(uint32_t size, uint32_t max) = 0;
  // Adds `count` buffers at `base` (`count` * size bytes) as ids pbuf_count_.. and hands them to the
  // pool. Returns "" or why not (no pool open, or past `max`).
  std::string PbufGrow(uint8_t* base, uint32_t count) {
    if (pbuf_max_ == 0) return "no buffer pool is open on this driver";
    if (count == 0 || count > pbuf_max_ - pbuf_count_) return "the pool would exceed its maximum";
    uint32_t first = pbuf_count_;
    std::vector<int32_t> ids(count);
    for (uint32_t i = 0; i < count; i++) {
      // SAFETY: `base` is a chunk the loop binding holds until this backend is gone.
      pbuf_addr_[first + i] = base + static_cast<size_t>(i) * pbuf_size_;
      pbuf_out_[first + i] = 1;
      // In reverse, so that a stack (the epoll engine's free list) hands out the lowest new id first.
      ids[i] = static_cast<int32_t>(first + count - 1 - i);
    }
    pbuf_count_ = first + count;
    PbufRecycle(ids.data(), count);
    return "";
  }
  uint32_t PbufSize() const { return pbuf_size_; }
  // Gives buffers back to the pool. Ids that are out of range or not out (JS bug) are ignored.
  void PbufRecycle(const int32_t* ids, uint32_t n) {
    uint32_t added = 0;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t id = static_cast<uint32_t>(ids[i]);
      if (id >= pbuf_count_ || !pbuf_out_[id]) continue;
      pbuf_out_[id] = 0;
      PbufAdd(static_cast<uint16_t>(id), added++);
    }
    if (added > 0) PbufPublish(added);
  }

  Slot& SlotFor(int32_t user) {
    if (static_cast<size_t>(user) >= slots_.size()) slots_.resize(static_cast<size_t>(user) + 64);
    return slots_[static_cast<size_t>(user)];
  }
  // A completion produced without the kernel: a record that failed validation, or a legacy op.
  void PushReady(int32_t user, int32_t res, uint32_t flags = 0) { ready_.push_back({user, res, flags}); }
  double Inflight() const { return stats_[S_INFLIGHT]; }

 protected:
  // A completion handed buffer `id` to JS: it is out until recycled.
  void PbufTaken(uint32_t cflags) {
    uint32_t id = cflags >> 16;
    if ((cflags & 1u) && id < pbuf_count_) pbuf_out_[id] = 1;
  }
  // The backend's half of PbufRecycle: stage buffer `id` at position `nth` of this batch, then publish.
  virtual void PbufAdd(uint16_t, uint32_t) {}
  virtual void PbufPublish(uint32_t) {}
  // The common half of PbufOpen: the pool's shape, no buffers yet.
  void PbufInit(uint32_t size, uint32_t max) {
    pbuf_size_ = size;
    pbuf_max_ = max;
    pbuf_count_ = 0;
    pbuf_addr_.assign(max, nullptr);
    pbuf_out_.assign(max, 1);
  }
  uint8_t* PbufAddr(uint32_t id) const { return pbuf_addr_[id]; }
  uint32_t pbuf_size_ = 0;
  uint32_t pbuf_max_ = 0;    // the most buffers the pool may grow to (0: no pool)
  uint32_t pbuf_count_ = 0;  // buffers added so far: ids 0..pbuf_count_-1
  std::vector<uint8_t*> pbuf_addr_;  // each buffer's address (buffers come in chunks: PbufGrow)
  std::vector<uint8_t> pbuf_out_;  // 1: handed to JS (a lease), 0: with the kernel or the engine
  uint32_t ReapReady(int32_t* out, uint32_t cap);
  double* stats_;
  // A deque, not a vector: growing it must not move a Slot whose storage the kernel may be reading.
  std::deque<Slot> slots_;
  std::deque<Cqe> ready_;
};

// Constructors return nullptr and set *reason when the backend cannot run here.
Backend* NewUringBackend(double* stats, const OpenOptions& o, std::string* reason);
Backend* NewEpollBackend(double* stats, const OpenOptions& o, std::string* reason);

}  // namespace ringio
