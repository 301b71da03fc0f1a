// Plain synchronous syscalls for JS: pipes, eventfds, closing, O_DIRECT alignment, and socket set-up
// (socket, bind, listen, options, addresses). Cold paths on non-blocking, close-on-exec fds; errors are
// thrown as Node-style system errors (errors.h).
#include "sys.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

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
  };
  for (const auto& f : fns) exports.Set(f.first, Napi::Function::New(env, f.second, f.first, loop));
}

}  // namespace ringio
