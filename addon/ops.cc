// The op table (ops.h) and the epoll backend's syscall behind each op. To add an op: write its TS file
// (packages/<pkg>/src/ops/<op>.ts, both driver paths), add its opcode to IORING_OP in
// packages/runtime/src/driver/layout.ts, and add one row below (with a runner if epoll can run it).
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing/io_uring.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>

#include "read_many.h"

namespace ringio {
namespace {

// A syscall's result as io_uring reports it: the count, or -errno. Retried on EINTR.
template <typename F>
int Sys(F f) {
  for (;;) {
    ssize_t r = f();
    if (r >= 0) return static_cast<int>(r);
    if (errno != EINTR) return -errno;
  }
}

// io_uring ignores the position on streams (pipes, FIFOs, sockets), and so do these: a positional
// call that gets ESPIPE is made again without the position. off == UINT64_MAX means "no position".
template <typename P, typename S>
int Positional(const Op& op, P positional, S stream) {
  if (op.off != UINT64_MAX) {
    int r = Sys(positional);
    if (r != -ESPIPE) return r;
  }
  return Sys(stream);
}

char* Addr(const Op& op) { return reinterpret_cast<char*>(op.addr); }
char* Addr2(const Op& op) { return reinterpret_cast<char*>(op.addr2); }
iovec* Iov(const Op& op) { return reinterpret_cast<iovec*>(op.addr); }
off_t Pos(const Op& op) { return static_cast<off_t>(op.off); }

int RunNop(const Op&, Backend*) { return 0; }

int RunRead(const Op& op, Backend*) {
  return Positional(op, [&] { return pread(op.fd, Addr(op), op.len, Pos(op)); }, [&] { return read(op.fd, Addr(op), op.len); });
}

int RunWrite(const Op& op, Backend*) {
  return Positional(op, [&] { return pwrite(op.fd, Addr(op), op.len, Pos(op)); }, [&] { return write(op.fd, Addr(op), op.len); });
}

int RunReadv(const Op& op, Backend*) {
  const int n = static_cast<int>(op.len);
  return Positional(op, [&] { return preadv(op.fd, Iov(op), n, Pos(op)); }, [&] { return readv(op.fd, Iov(op), n); });
}

int RunWritev(const Op& op, Backend*) {
  const int n = static_cast<int>(op.len);
  return Positional(op, [&] { return pwritev(op.fd, Iov(op), n, Pos(op)); }, [&] { return writev(op.fd, Iov(op), n); });
}

int RunPollAdd(const Op& op, Backend*) {
  struct pollfd pfd = {op.fd, static_cast<short>(op.op_flags), 0};
  int r = Sys([&] { return poll(&pfd, 1, 0); });
  if (r == 0) return -EAGAIN;
  return r < 0 ? r : pfd.revents;
}

int RunRecv(const Op& op, Backend*) {
  return Sys([&] { return recv(op.fd, Addr(op), op.len, static_cast<int>(op.op_flags) | MSG_DONTWAIT); });
}

int RunSend(const Op& op, Backend*) {
  return Sys([&] { return send(op.fd, Addr(op), op.len, static_cast<int>(op.op_flags) | MSG_DONTWAIT | MSG_NOSIGNAL); });
}

int RunSendmsg(const Op& op, Backend*) {
  return Sys([&] {
    return sendmsg(op.fd, reinterpret_cast<msghdr*>(op.addr), static_cast<int>(op.op_flags) | MSG_DONTWAIT | MSG_NOSIGNAL);
  });
}

int RunRecvmsg(const Op& op, Backend*) {
  return Sys([&] { return recvmsg(op.fd, reinterpret_cast<msghdr*>(op.addr), static_cast<int>(op.op_flags) | MSG_DONTWAIT); });
}

int RunAccept(const Op& op, Backend*) {
  return Sys([&] {
    return accept4(op.fd, reinterpret_cast<sockaddr*>(op.addr), reinterpret_cast<socklen_t*>(op.addr2),
                   static_cast<int>(op.op_flags));
  });
}

int RunConnect(const Op& op, Backend* engine) {
  if (engine == nullptr) return -EOPNOTSUPP;
  Slot& s = engine->SlotFor(op.user);
  if (s.connecting) {
    // The socket became writable after EINPROGRESS: the outcome is in SO_ERROR.
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0) err = errno;
    s.connecting = false;
    // A reset can only end an established connection (a refused SYN is ECONNREFUSED): the connect
    // itself succeeded, as io_uring reports it too, and the next op on the socket sees the reset.
    if (err == ECONNRESET) err = 0;
    return -err;
  }
  int r = Sys([&] { return connect(op.fd, reinterpret_cast<sockaddr*>(op.addr), static_cast<socklen_t>(op.off)); });
  if (r == -EINPROGRESS || r == -EALREADY) {
    s.connecting = true;
    return -EAGAIN;
  }
  return r;
}

int RunShutdown(const Op& op, Backend*) { return Sys([&] { return shutdown(op.fd, static_cast<int>(op.len)); }); }

int RunSplice(const Op& op, Backend*) {
  // io_uring's layout: fd = fd_out, off = off_out, addr = off_in, splice_fd_in = fd_in.
  loff_t in_off = static_cast<loff_t>(op.addr);
  loff_t out_off = static_cast<loff_t>(op.off);
  return Sys([&] {
    return splice(op.extra, op.addr == UINT64_MAX ? nullptr : &in_off, op.fd, op.off == UINT64_MAX ? nullptr : &out_off,
                  op.len, op.op_flags | SPLICE_F_NONBLOCK);
  });
}

int RunClose(const Op& op, Backend* engine) {
  // On the loop thread the engine first forgets the fd's readiness state and fails whatever still waits
  // on it with EBADF: a later fd with this number must start fresh.
  if (engine != nullptr) engine->ForgetFd(op.fd);
  int r = close(op.fd);
  if (r < 0 && errno != EINTR) return -errno;
  return 0;  // Linux closes the fd even on EINTR
}

int RunOpenat(const Op& op, Backend*) {
  return Sys([&] { return openat(op.fd, Addr(op), static_cast<int>(op.op_flags), static_cast<mode_t>(op.len)); });
}

int RunStatx(const Op& op, Backend*) {
  return Sys([&] {
    return statx(op.fd, Addr(op), static_cast<int>(op.op_flags), op.len, reinterpret_cast<struct statx*>(op.addr2));
  });
}

int RunFsync(const Op& op, Backend*) {
  return Sys([&] { return (op.op_flags & IORING_FSYNC_DATASYNC) ? fdatasync(op.fd) : fsync(op.fd); });
}

int RunFallocate(const Op& op, Backend*) {
  return Sys([&] { return fallocate(op.fd, static_cast<int>(op.len), Pos(op), static_cast<off_t>(op.addr)); });
}

int RunFtruncate(const Op& op, Backend*) { return Sys([&] { return ftruncate(op.fd, Pos(op)); }); }

int RunUnlinkat(const Op& op, Backend*) { return Sys([&] { return unlinkat(op.fd, Addr(op), static_cast<int>(op.op_flags)); }); }

int RunRenameat(const Op& op, Backend*) {
  return Sys([&] { return renameat2(op.fd, Addr(op), static_cast<int>(op.len), Addr2(op), op.op_flags); });
}

int RunMkdirat(const Op& op, Backend*) { return Sys([&] { return mkdirat(op.fd, Addr(op), static_cast<mode_t>(op.len)); }); }

int RunSymlinkat(const Op& op, Backend*) { return Sys([&] { return symlinkat(Addr(op), op.fd, Addr2(op)); }); }

constexpr Probe kReq = Probe::kRequired;
constexpr Probe kOpt = Probe::kOptional;
constexpr Probe kNat = Probe::kNative;

}  // namespace

// opcode, name, probe, epoll runner, engine op, may block (file pool), drained when short
const OpSpec kOps[] = {
    {IORING_OP_NOP, "NOP", kReq, RunNop, false, false, false},
    {IORING_OP_READV, "READV", kReq, RunReadv, false, true, false},
    {IORING_OP_WRITEV, "WRITEV", kReq, RunWritev, false, true, false},
    {IORING_OP_FSYNC, "FSYNC", kOpt, RunFsync, false, true, false},
    {IORING_OP_POLL_ADD, "POLL_ADD", kReq, RunPollAdd, false, false, false},
    {IORING_OP_SENDMSG, "SENDMSG", kOpt, RunSendmsg, false, false, false},
    {IORING_OP_RECVMSG, "RECVMSG", kOpt, RunRecvmsg, false, false, false},
    {IORING_OP_TIMEOUT, "TIMEOUT", kReq, nullptr, true, false, false},
    {IORING_OP_ACCEPT, "ACCEPT", kOpt, RunAccept, false, false, false},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL", kReq, nullptr, true, false, false},
    {IORING_OP_CONNECT, "CONNECT", kOpt, RunConnect, false, false, false},
    {IORING_OP_FALLOCATE, "FALLOCATE", kOpt, RunFallocate, false, true, false},
    {IORING_OP_OPENAT, "OPENAT", kOpt, RunOpenat, false, true, false},
    {IORING_OP_CLOSE, "CLOSE", kReq, RunClose, false, true, false},
    {IORING_OP_STATX, "STATX", kOpt, RunStatx, false, true, false},
    {IORING_OP_READ, "READ", kReq, RunRead, false, true, true},
    {IORING_OP_WRITE, "WRITE", kReq, RunWrite, false, true, true},
    {IORING_OP_SEND, "SEND", kOpt, RunSend, false, false, true},
    {IORING_OP_RECV, "RECV", kOpt, RunRecv, false, false, true},
    {IORING_OP_SPLICE, "SPLICE", kOpt, RunSplice, false, false, false},
    {IORING_OP_SHUTDOWN, "SHUTDOWN", kOpt, RunShutdown, false, false, false},
    {IORING_OP_RENAMEAT, "RENAMEAT", kOpt, RunRenameat, false, true, false},
    {IORING_OP_UNLINKAT, "UNLINKAT", kOpt, RunUnlinkat, false, true, false},
    {IORING_OP_MKDIRAT, "MKDIRAT", kOpt, RunMkdirat, false, true, false},
    {IORING_OP_SYMLINKAT, "SYMLINKAT", kOpt, RunSymlinkat, false, true, false},
    {IORING_OP_SEND_ZC, "SEND_ZC", kOpt, nullptr, false, false, false},
    {kOpFtruncate, "FTRUNCATE", kOpt, RunFtruncate, false, true, false},
    {kOpReadMany, "READ_MANY", kNat, RunReadMany, false, true, false},
};
const uint32_t kOpCount = sizeof kOps / sizeof kOps[0];

const OpSpec* FindOp(uint8_t opcode) {
  // Built once per process (a function-local static: thread-safe); constant data, shared by every thread.
  static const std::array<const OpSpec*, 256> index = [] {
    std::array<const OpSpec*, 256> a{};
    for (uint32_t i = 0; i < kOpCount; i++) a[kOps[i].opcode] = &kOps[i];
    return a;
  }();
  return index[opcode];
}

int RunOp(const Op& op, Backend* engine) {
  const OpSpec* s = FindOp(op.legacy_op);
  if (s == nullptr || s->run == nullptr) return -EOPNOTSUPP;
  return s->run(op, engine);
}

}  // namespace ringio
