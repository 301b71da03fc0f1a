// The wire format between JS and the addon.
//
// JS describes each operation as one fixed-size record of int32 words in a shared Int32Array (the
// submission area) and hands the addon a batch of them in one call. The addon answers with completion
// records in a second shared Int32Array. Neither side allocates per op for this. The same numbers are
// exported by ringio_layout() and checked against packages/runtime/src/driver/layout.ts by a test.
#pragma once

#include <cstdint>

namespace ringio {

enum RecWord : int {
  W_OPCODE = 0,    // io_uring opcode (IORING_OP_*), used by the uring backend
  W_FD = 1,        // file descriptor (or -1)
  W_USER = 2,      // user_data: the JS op slot; negative values are reserved tags
  W_LEN = 3,       // sqe->len; for AK_BUF also the byte count checked against the buffer
  W_OFF_LO = 4,    // sqe->off, low 32 bits
  W_OFF_HI = 5,    // sqe->off, high 32 bits (-1/-1 means "current file position")
  W_ADDR_KIND = 6, // how to build sqe->addr (AddrKind)
  W_ADDR_A = 7,
  W_ADDR_B = 8,
  W_OPFLAGS = 9,   // the sqe's op-specific flags union (rw_flags, poll32_events, timeout_flags, ...)
  W_SQEFLAGS = 10, // bits 0-7 IOSQE_*, bits 16-31 sqe->ioprio (accept/recv multishot flags)
  W_ADDR2_KIND = 11, // how to build sqe->addr2 (which shares storage with sqe->off)
  W_ADDR2_A = 12,
  W_ADDR2_B = 13,
  W_LEGACY = 14,   // epoll backend: bits 0-7 the syscall to run (an IORING_OP_* code), bits 8-9 the interest,
                   // bits 10-31 the fd whose readiness is awaited (below 2^22)
  W_EXTRA = 15,    // sqe->splice_fd_in / file_index
  REC_WORDS = 16,
};

enum AddrKind : int {
  AK_NONE = 0,
  AK_BUF = 1,      // A = index into the batch's buffer array, B = byte offset; W_LEN bytes are checked
  AK_IOVEC = 2,    // A = first buffer index; W_LEN buffers, each used whole, become an iovec array
  AK_TIMESPEC = 3, // A = seconds, B = nanoseconds; stored in the slot
  AK_U64 = 4,      // A = low 32 bits, B = high 32 bits, passed as a plain value
  AK_SOCKLEN = 5,  // a socklen_t in the slot, initialised to A (for accept's addrlen)
  AK_BUF_END = 6,  // like AK_BUF, but the length is "to the end of the buffer" (sockaddr out-params)
  AK_MSGHDR = 7,   // a msghdr in the slot: A = data buffer index (used whole), B = name buffer index or -1
  AK_REG = 8,      // like AK_BUF, but A = an id from the buffer registry (ringio_buf_register), not an index
};

// INTEREST_POOL: the op's syscall may block (files): the epoll engine runs it on its file thread pool.
enum Interest : int { INTEREST_NONE = 0, INTEREST_READABLE = 1, INTEREST_WRITABLE = 2, INTEREST_POOL = 3 };

enum CqeWord : int { C_USER = 0, C_RES = 1, C_FLAGS = 2, CQE_WORDS = 4 };

// Reserved user_data tags. JS slots are small non-negative integers; these never collide with them.
constexpr int32_t USER_IGNORE = -1;  // an internal SQE whose completion nobody waits for

// Indices into the shared Float64Array of counters that JS reads without calling in.
enum StatIndex : int {
  S_ENTERS = 0,       // io_uring_enter calls (epoll: epoll_wait calls)
  S_COMPLETIONS = 1,  // completions delivered to JS
  S_INFLIGHT = 2,     // ops submitted whose final completion has not been reaped
  S_SUBMITTED = 3,    // ops handed to the kernel (or the legacy engine)
  S_WAKEUPS = 4,      // times the loop woke us through the poll handle
  S_CALLBACKS = 5,    // JS completion callbacks made from the loop
  STAT_COUNT = 8,
};

}  // namespace ringio
