// Plain synchronous syscalls for JS: pipes, eventfds, closing, O_DIRECT alignment, and socket set-up
// (socket, bind, listen, options, addresses, a non-blocking accept), dup, and passing fds over a Unix
// socket (SCM_RIGHTS, for ringio-proxy's binary upgrade). Cold paths on non-blocking, close-on-exec fds; errors are
// thrown as Node-style system errors (errors.h).
#include "sys.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "bytes.h"
#include "errors.h"

namespace ringio {
namespace {

Napi::Value SysPipe(const Napi::CallbackInfo& info) {
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) throw ErrnoError(info.Env(), errno, "pipe2");
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  a.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return a;
}

Napi::Value SysEventfd(const Napi::CallbackInfo& info) {
  uint32_t init = info.Length() > 0 ? info[0].ToNumber().Uint32Value() : 0;
  int fd = eventfd(init, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "eventfd");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value SysClose(const Napi::CallbackInfo& info) {
  int fd = info[0].ToNumber().Int32Value();
  // The epoll engine caches readiness per fd number; a later fd with this number must start fresh.
  Backend* backend = static_cast<Loop*>(info.Data())->backend();
  if (backend != nullptr) backend->ForgetFd(fd);
  if (close(fd) < 0 && errno != EINTR) throw ErrnoError(info.Env(), errno, "close");
  return info.Env().Undefined();
}

// ringio_sys_align_offset(buf, alignment) -> bytes to skip so that buf's data is aligned (O_DIRECT).
Napi::Value SysAlignOffset(const Napi::CallbackInfo& info) {
  uint8_t* data;
  size_t len;
  if (!Bytes(info[0], &data, &len)) throw Napi::TypeError::New(info.Env(), "buf must be a Uint8Array");
  uint32_t align = info[1].ToNumber().Uint32Value();
  if (align == 0 || (align & (align - 1)) != 0) throw Napi::RangeError::New(info.Env(), "alignment must be a power of two");
  uintptr_t addr = reinterpret_cast<uintptr_t>(data);
  return Napi::Number::New(info.Env(), static_cast<double>((align - (addr % align)) % align));
}

Napi::Value SysSetNonblock(const Napi::CallbackInfo& info) {
  int fd = info[0].ToNumber().Int32Value();
  bool on = info.Length() < 2 || info[1].ToBoolean();
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) < 0) {
    throw ErrnoError(info.Env(), errno, "fcntl");
  }
  return info.Env().Undefined();
}

// Socket set-up: cold paths, plain synchronous syscalls on non-blocking, close-on-exec sockets.
Napi::Value NetSocket(const Napi::CallbackInfo& info) {
  int fd = socket(info[0].ToNumber().Int32Value(), info[1].ToNumber().Int32Value() | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "socket");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value NetSocketpair(const Napi::CallbackInfo& info) {
  int fds[2];
  if (socketpair(info[0].ToNumber().Int32Value(), info[1].ToNumber().Int32Value() | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                 fds) < 0) {
    throw ErrnoError(info.Env(), errno, "socketpair");
  }
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  a.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return a;
}

Napi::Value NetBind(const Napi::CallbackInfo& info) {
  uint8_t* addr;
  size_t cap;
  if (!Bytes(info[1], &addr, &cap)) throw Napi::TypeError::New(info.Env(), "sockaddr must be a Uint8Array");
  uint32_t len = info[2].ToNumber().Uint32Value();
  if (len > cap) throw Napi::RangeError::New(info.Env(), "sockaddr length exceeds its buffer");
  if (bind(info[0].ToNumber().Int32Value(), reinterpret_cast<sockaddr*>(addr), len) < 0) {
    throw ErrnoError(info.Env(), errno, "bind");
  }
  return info.Env().Undefined();
}

Napi::Value NetListen(const Napi::CallbackInfo& info) {
  if (listen(info[0].ToNumber().Int32Value(), info[1].ToNumber().Int32Value()) < 0) {
    throw ErrnoError(info.Env(), errno, "listen");
  }
  return info.Env().Undefined();
}

Napi::Value NetSetsockopt(const Napi::CallbackInfo& info) {
  int v = info[3].ToNumber().Int32Value();
  if (setsockopt(info[0].ToNumber().Int32Value(), info[1].ToNumber().Int32Value(), info[2].ToNumber().Int32Value(),
                 &v, sizeof v) < 0) {
    throw ErrnoError(info.Env(), errno, "setsockopt");
  }
  return info.Env().Undefined();
}

Napi::Value NetGetsockopt(const Napi::CallbackInfo& info) {
  int v = 0;
  socklen_t l = sizeof v;
  if (getsockopt(info[0].ToNumber().Int32Value(), info[1].ToNumber().Int32Value(), info[2].ToNumber().Int32Value(),
                 &v, &l) < 0) {
    throw ErrnoError(info.Env(), errno, "getsockopt");
  }
  return Napi::Number::New(info.Env(), v);
}

// ringio_net_sockname(fd, buf, peer) -> the address length written into buf
Napi::Value NetSockname(const Napi::CallbackInfo& info) {
  uint8_t* addr;
  size_t cap;
  if (!Bytes(info[1], &addr, &cap)) throw Napi::TypeError::New(info.Env(), "buf must be a Uint8Array");
  socklen_t len = static_cast<socklen_t>(cap);
  int fd = info[0].ToNumber().Int32Value();
  bool peer = info[2].ToBoolean();
  int r = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(addr), &len)
               : getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len);
  if (r < 0) throw ErrnoError(info.Env(), errno, peer ? "getpeername" : "getsockname");
  return Napi::Number::New(info.Env(), len);
}

// ringio_net_accept(fd) -> a new non-blocking, close-on-exec fd, or -1 when no connection is queued.
// A plain accept4: the caller waits for readiness with a poll op, which can be cancelled without
// taking a connection (an in-flight accept op cannot: what it accepts while cancelled is lost).
Napi::Value NetAccept(const Napi::CallbackInfo& info) {
  for (;;) {
    int fd = accept4(info[0].ToNumber().Int32Value(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return Napi::Number::New(info.Env(), fd);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(info.Env(), -1);
    throw ErrnoError(info.Env(), errno, "accept");
  }
}

// ringio_net_shutdown(fd, how) -> 0, or -errno. shutdown(2) at once: on a socket it never blocks (it queues
// the FIN behind the bytes already in the send buffer), where IORING_OP_SHUTDOWN always goes to an io-wq
// worker thread. The caller uses it only while no send of its own is in flight on the fd (net's
// SocketStream.shutdown), so no byte it wrote can leave after the FIN. Errors are returned, not thrown:
// ENOTCONN (the peer is gone) is common on this path and a thrown error costs a stack trace.
Napi::Value NetShutdown(const Napi::CallbackInfo& info) {
  int r = shutdown(info[0].ToNumber().Int32Value(), info[1].ToNumber().Int32Value());
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// ringio_sys_dup(fd) -> a close-on-exec duplicate (same open file: a listener shared by threads).
Napi::Value SysDup(const Napi::CallbackInfo& info) {
  int fd = fcntl(info[0].ToNumber().Int32Value(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "fcntl");
  return Napi::Number::New(info.Env(), fd);
}

constexpr size_t kMaxPassedFds = 253;  // SCM_MAX_FD

// ringio_net_send_fds(sock, data, fds) -> bytes sent. sendmsg with the fds as SCM_RIGHTS, without
// waiting (EAGAIN is thrown: the caller polls for POLLOUT and tries again).
Napi::Value NetSendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t len;
  if (!Bytes(info[1], &data, &len) || len == 0) throw Napi::TypeError::New(env, "data must be a non-empty Uint8Array");
  if (!info[2].IsArray()) throw Napi::TypeError::New(env, "fds must be an array");
  Napi::Array arr = info[2].As<Napi::Array>();
  size_t n = arr.Length();
  if (n > kMaxPassedFds) throw Napi::RangeError::New(env, "at most 253 fds per message");
  std::vector<int> fds(n);
  for (size_t i = 0; i < n; i++) fds[i] = arr.Get(static_cast<uint32_t>(i)).ToNumber().Int32Value();
  iovec iov{data, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (n == 0 ? 1 : n)), 0);
  if (n > 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * n);
  }
  ssize_t r;
  do r = sendmsg(info[0].ToNumber().Int32Value(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) throw ErrnoError(env, errno, "sendmsg");
  return Napi::Number::New(env, static_cast<double>(r));
}

// ringio_net_recv_fds(sock, buf, maxFds) -> [bytes, fds]. recvmsg without waiting (EAGAIN is thrown);
// the fds arrive close-on-exec. If the control data was truncated, the fds that did arrive are
// closed and EMSGSIZE is thrown: nothing leaks.
Napi::Value NetRecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t len;
  if (!Bytes(info[1], &data, &len) || len == 0) throw Napi::TypeError::New(env, "buf must be a non-empty Uint8Array");
  size_t maxFds = info[2].ToNumber().Uint32Value();
  if (maxFds == 0 || maxFds > kMaxPassedFds) throw Napi::RangeError::New(env, "maxFds must be in 1..253");
  iovec iov{data, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * maxFds), 0);
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t r;
  do r = recvmsg(info[0].ToNumber().Int32Value(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) throw ErrnoError(env, errno, "recvmsg");
  std::vector<int> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      got.push_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    for (int fd : got) close(fd);
    throw ErrnoError(env, EMSGSIZE, "recvmsg");
  }
  Napi::Array fds = Napi::Array::New(env, got.size());
  for (size_t i = 0; i < got.size(); i++) fds.Set(static_cast<uint32_t>(i), Napi::Number::New(env, got[i]));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(r)));
  out.Set(1u, fds);
  return out;
}

}  // namespace

void RegisterSys(Napi::Env env, Napi::Object exports, Loop* loop) {
  const std::pair<const char*, Napi::Function::Callback> fns[] = {
      {"ringio_sys_pipe", SysPipe},
      {"ringio_sys_eventfd", SysEventfd},
      {"ringio_sys_close", SysClose},
      {"ringio_sys_align_offset", SysAlignOffset},
      {"ringio_sys_set_nonblock", SysSetNonblock},
      {"ringio_net_socket", NetSocket},
      {"ringio_net_socketpair", NetSocketpair},
      {"ringio_net_bind", NetBind},
      {"ringio_net_listen", NetListen},
      {"ringio_net_setsockopt", NetSetsockopt},
      {"ringio_net_getsockopt", NetGetsockopt},
      {"ringio_net_sockname", NetSockname},
      {"ringio_net_accept", NetAccept},
      {"ringio_net_shutdown", NetShutdown},
      {"ringio_net_send_fds", NetSendFds},
      {"ringio_net_recv_fds", NetRecvFds},
      {"ringio_sys_dup", SysDup},
  };
  for (const auto& f : fns) exports.Set(f.first, Napi::Function::New(env, f.second, f.first, loop));
}

}  // namespace ringio
