// The addon's JS boundary: flat `ringio_*` entry points, the per-environment driver, and how it sits in
// libuv's loop.
//
// Loop integration (docs/design/driver.md has the measurements behind it): libuv owns the blocking
// wait. The backend's poll fd (the ring's registered eventfd, or the epoll fd) is watched by one
// uv_poll_t. JS pushes op records into a shared Int32Array and flushes a batch with one call
// (ringio_driver_submit), which also reaps whatever has completed into a second shared Int32Array.
// When the kernel finishes work while JS is idle, libuv wakes us, we reap, and make one callback into
// JS per batch of completions.
//
// Rules:
//  1. All state lives in the per-environment Addon instance (no C++ statics), so every worker thread
//     has its own ring, created on that thread.
//  2. A record is validated here against the JS buffer it names before any pointer reaches a backend.
//     A bad record completes with an error instead of throwing, so a batch is never half-taken.
//  3. The environment cleanup hook drains the backend (cancel, then wait for every completion) before
//     the environment's memory can go away: worker.terminate() and process exit are safe.
//  4. The buffer registry (ringio_buf_register / ringio_buf_release) caches the data pointer and length
//     of typed arrays that JS uses again and again, so a record can name one by id (AK_REG) instead of
//     the plain path's element and typed-array lookups. JS owns the ids' lifetimes: it maps each live
//     typed array to its id in a WeakMap, releases an id only after a FinalizationRegistry has seen the
//     array collected, and checks right before each flush that no registered array in the batch was
//     detached (packages/runtime/src/driver/registry.ts). The window is still checked here against the
//     length taken at registration.
#include <fcntl.h>
#include <napi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "backend.h"
#include "errors.h"
#include "threads.h"

#define RINGIO_STR2(x) #x
#define RINGIO_STR(x) RINGIO_STR2(x)
#ifndef RINGIO_SOURCE_HASH
#define RINGIO_SOURCE_HASH unknown
#endif

namespace ringio {
namespace {

struct Driver {
  explicit Driver(Napi::Env e) : env(e) {}
  Napi::Env env;
  std::unique_ptr<Backend> backend;
  uv_poll_t* poll = nullptr;
  bool refed = false;
  bool in_callback = false;
  bool close_requested = false;
  Napi::Reference<Napi::Int32Array> sq_ref;
  Napi::Reference<Napi::Int32Array> cq_ref;
  Napi::Reference<Napi::Float64Array> stats_ref;
  Napi::FunctionReference on_completions;
  std::unique_ptr<Napi::AsyncContext> async_ctx;
  int32_t* sq = nullptr;
  uint32_t sq_cap = 0;
  int32_t* cq = nullptr;
  uint32_t cq_cap = 0;
  double* stats = nullptr;

  // Keep the loop alive exactly while ops are in flight: an idle runtime must let the process exit.
  void UpdateRef() {
    bool want = stats[S_INFLIGHT] > 0;
    if (want == refed) return;
    refed = want;
    if (want) {
      uv_ref(reinterpret_cast<uv_handle_t*>(poll));
    } else {
      uv_unref(reinterpret_cast<uv_handle_t*>(poll));
    }
  }

  // Drains the backend and closes the poll handle; on_closed runs when libuv has let go of it.
  void Shutdown(void (*on_closed)(uv_handle_t*), void* owner) {
    if (backend) backend->Drain();
    if (poll != nullptr) {
      uv_poll_stop(poll);
      poll->data = owner;
      uv_close(reinterpret_cast<uv_handle_t*>(poll), on_closed);
      poll = nullptr;
    }
    backend.reset();
  }
};

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod("ringio_driver_open", &Addon::DriverOpen),
                             InstanceMethod("ringio_driver_submit", &Addon::DriverSubmit),
                             InstanceMethod("ringio_driver_reap", &Addon::DriverReap),
                             InstanceMethod("ringio_driver_close", &Addon::DriverClose),
                             InstanceMethod("ringio_buf_register", &Addon::BufRegister),
                             InstanceMethod("ringio_buf_release", &Addon::BufRelease),
                             InstanceMethod("ringio_buf_registered", &Addon::BufRegistered),
                             InstanceMethod("ringio_layout", &Addon::Layout),
                             InstanceMethod("ringio_source_hash", &Addon::SourceHash),
                             InstanceMethod("ringio_sys_pipe", &Addon::SysPipe),
                             InstanceMethod("ringio_sys_eventfd", &Addon::SysEventfd),
                             InstanceMethod("ringio_sys_close", &Addon::SysClose),
                             InstanceMethod("ringio_sys_align_offset", &Addon::SysAlignOffset),
                             InstanceMethod("ringio_sys_set_nonblock", &Addon::SysSetNonblock),
                             InstanceMethod("ringio_net_socket", &Addon::NetSocket),
                             InstanceMethod("ringio_net_socketpair", &Addon::NetSocketpair),
                             InstanceMethod("ringio_net_bind", &Addon::NetBind),
                             InstanceMethod("ringio_net_listen", &Addon::NetListen),
                             InstanceMethod("ringio_net_setsockopt", &Addon::NetSetsockopt),
                             InstanceMethod("ringio_net_getsockopt", &Addon::NetGetsockopt),
                             InstanceMethod("ringio_net_sockname", &Addon::NetSockname),
                         });
    RegisterThreads(env, exports);
    // An async cleanup hook, not a plain one: the poll handle's close callback is code in this
    // library, so the environment (and the library) must wait until libuv has run it.
    napi_add_async_cleanup_hook(env, &Addon::AsyncCleanup, this, &cleanup_hook_);
  }

  ~Addon() { Teardown(); }

 private:
  static void AsyncCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
    auto* self = static_cast<Addon*>(arg);
    self->cleanup_hook_ = handle;
    self->tearing_down_ = true;
    self->Teardown();
    self->MaybeFinishCleanup();
  }

  static void OnHandleClosed(uv_handle_t* h) {
    auto* self = static_cast<Addon*>(h->data);
    delete reinterpret_cast<uv_poll_t*>(h);
    self->pending_closes_--;
    self->MaybeFinishCleanup();
  }

  void MaybeFinishCleanup() {
    if (tearing_down_ && pending_closes_ == 0 && cleanup_hook_ != nullptr) {
      napi_async_cleanup_hook_handle h = cleanup_hook_;
      cleanup_hook_ = nullptr;
      napi_remove_async_cleanup_hook(h);
    }
  }

  void ShutdownDriver(Driver& d) {
    if (d.poll != nullptr) pending_closes_++;
    d.Shutdown(&Addon::OnHandleClosed, this);
  }

  void Teardown() {
    if (!driver_) return;
    ShutdownDriver(*driver_);
    driver_.reset();
  }

  // ringio_driver_open({ driver, entries, fault, setup }, sq, cq, stats, onCompletions) -> info
  Napi::Value DriverOpen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (driver_) throw CodedError(env, "ERR_RINGIO_NESTED_START", "a ringio driver is already open on this thread");
    if (info.Length() < 5 || !info[0].IsObject() || !info[1].IsTypedArray() || !info[2].IsTypedArray() ||
        !info[3].IsTypedArray() || !info[4].IsFunction()) {
      throw Napi::TypeError::New(env, "ringio_driver_open(options, sq, cq, stats, onCompletions)");
    }
    Napi::Object o = info[0].As<Napi::Object>();
    std::string kind = o.Get("driver").ToString().Utf8Value();
    OpenOptions opts;
    opts.entries = o.Get("entries").ToNumber().Uint32Value();
    if (o.Get("fault").IsString()) opts.fault = o.Get("fault").ToString().Utf8Value();
    if (o.Get("setup").IsString()) opts.setup = o.Get("setup").ToString().Utf8Value();
    auto sq = info[1].As<Napi::Int32Array>();
    auto cq = info[2].As<Napi::Int32Array>();
    auto st = info[3].As<Napi::Float64Array>();
    if (st.ElementLength() < STAT_COUNT || sq.ElementLength() < REC_WORDS || cq.ElementLength() < CQE_WORDS) {
      throw Napi::RangeError::New(env, "ringio_driver_open: shared arrays too small");
    }

    auto d = std::make_unique<Driver>(env);
    // SAFETY: the three shared arrays are held by references for the driver's lifetime, so their
    // backing stores (never on V8's moving heap once we have taken their data pointer) stay put.
    d->sq_ref = Napi::Persistent(sq);
    d->cq_ref = Napi::Persistent(cq);
    d->stats_ref = Napi::Persistent(st);
    d->sq = sq.Data();
    d->sq_cap = static_cast<uint32_t>(sq.ElementLength() / REC_WORDS);
    d->cq = cq.Data();
    d->cq_cap = static_cast<uint32_t>(cq.ElementLength() / CQE_WORDS);
    d->stats = st.Data();
    d->on_completions = Napi::Persistent(info[4].As<Napi::Function>());
    d->async_ctx = std::make_unique<Napi::AsyncContext>(env, "ringio:driver");

    std::string reason;
    std::string fallback;
    Backend* b = nullptr;
    if (kind == "uring" || kind == "auto") {
      b = NewUringBackend(d->stats, opts, &reason);
      if (b == nullptr && kind == "uring") {
        throw CodedError(env, "ERR_RINGIO_DRIVER_UNAVAILABLE", "io_uring driver unavailable: " + reason);
      }
      if (b == nullptr) fallback = reason;
    }
    if (b == nullptr) {
      if (kind != "uring" && kind != "auto" && kind != "epoll") {
        throw Napi::TypeError::New(env, "driver must be 'uring', 'epoll' or 'auto'");
      }
      b = NewEpollBackend(d->stats, opts, &reason);
      if (b == nullptr) throw CodedError(env, "ERR_RINGIO_DRIVER_UNAVAILABLE", "epoll driver unavailable: " + reason);
    }
    d->backend.reset(b);

    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    d->poll = new uv_poll_t;
    int r = uv_poll_init(loop, d->poll, b->PollFd());
    if (r != 0) {
      delete d->poll;
      d->poll = nullptr;
      throw CodedError(env, "ERR_RINGIO_DRIVER_UNAVAILABLE", std::string("uv_poll_init failed: ") + uv_strerror(r));
    }
    d->poll->data = d.get();
    uv_poll_start(d->poll, UV_READABLE, &Addon::OnPoll);
    uv_unref(reinterpret_cast<uv_handle_t*>(d->poll));

    Napi::Object out = Napi::Object::New(env);
    out.Set("driver", Napi::String::New(env, b->Name()));
    out.Set("fallbackReason", fallback.empty() ? env.Null() : Napi::String::New(env, fallback));
    Napi::Array features = Napi::Array::New(env);
    uint32_t i = 0;
    for (const std::string& f : b->Features()) features.Set(i++, Napi::String::New(env, f));
    out.Set("features", features);
    out.Set("entries", Napi::Number::New(env, b->Entries()));
    struct utsname u;
    out.Set("kernel", Napi::String::New(env, uname(&u) == 0 ? u.release : "unknown"));
    driver_ = std::move(d);
    return out;
  }

  // Resolve one address word group of a record into a pointer or value. Returns 0 or -errno.
  int ResolveAddr(napi_env env, napi_value bufs, uint32_t nbufs, int kind, int32_t a, int32_t b, uint32_t len,
                  int32_t user, uint64_t* out) {
    switch (kind) {
      case AK_NONE:
        *out = 0;
        return 0;
      case AK_U64:
        *out = static_cast<uint64_t>(static_cast<uint32_t>(a)) | (static_cast<uint64_t>(static_cast<uint32_t>(b)) << 32);
        return 0;
      case AK_BUF:
      case AK_BUF_END: {
        uint8_t* data;
        size_t length;
        if (!BufferAt(env, bufs, nbufs, a, &data, &length)) return -EFAULT;
        // The window offset is an unsigned 32-bit word: windows may start anywhere in a 4 GiB buffer.
        const size_t off = static_cast<uint32_t>(b);
        if (off > length) return -EFAULT;
        if (kind == AK_BUF && static_cast<size_t>(len) > length - off) return -EFAULT;
        // SAFETY: the JS op keeps this typed array referenced until its final completion.
        *out = reinterpret_cast<uint64_t>(data + off);
        return 0;
      }
      case AK_REG: {
        if (a < 0 || static_cast<size_t>(a) >= reg_.size()) return -EFAULT;
        const RegEntry& e = reg_[static_cast<size_t>(a)];
        if (e.data == nullptr) return -EFAULT;
        const size_t off = static_cast<uint32_t>(b);
        if (off > e.length || static_cast<size_t>(len) > e.length - off) return -EFAULT;
        // SAFETY: the id names a typed array that is alive (JS's WeakMap yields ids of live arrays only,
        // and an id is released only after its array was collected) and that JS saw attached just before
        // this call, with no JS run since; the JS op keeps it referenced until its final completion. An
        // off-heap backing store does not move, so the pointer taken at registration still holds.
        *out = reinterpret_cast<uint64_t>(e.data + off);
        return 0;
      }
      case AK_IOVEC: {
        if (user < 0 || len == 0 || len > 1024) return -EINVAL;
        Slot& s = driver_->backend->SlotFor(user);
        s.iov.resize(len);
        for (uint32_t i = 0; i < len; i++) {
          uint8_t* data;
          size_t length;
          if (!BufferAt(env, bufs, nbufs, a + static_cast<int32_t>(i), &data, &length)) return -EFAULT;
          s.iov[i].iov_base = data;
          s.iov[i].iov_len = length;
        }
        // SAFETY: the iovec array lives in the op's slot, which is not reused before its completion.
        *out = reinterpret_cast<uint64_t>(s.iov.data());
        return 0;
      }
      case AK_TIMESPEC: {
        if (user < 0 || a < 0 || b < 0 || b >= 1000000000) return -EINVAL;
        Slot& s = driver_->backend->SlotFor(user);
        s.ts.tv_sec = a;
        s.ts.tv_nsec = b;
        *out = reinterpret_cast<uint64_t>(&s.ts);
        return 0;
      }
      case AK_MSGHDR: {
        if (user < 0) return -EINVAL;
        Slot& s = driver_->backend->SlotFor(user);
        uint8_t* data;
        size_t length;
        if (!BufferAt(env, bufs, nbufs, a, &data, &length)) return -EFAULT;
        s.iov.resize(1);
        s.iov[0].iov_base = data;
        s.iov[0].iov_len = length;
        memset(&s.msg, 0, sizeof s.msg);
        s.msg.msg_iov = s.iov.data();
        s.msg.msg_iovlen = 1;
        if (b >= 0) {
          uint8_t* name;
          size_t namelen;
          if (!BufferAt(env, bufs, nbufs, b, &name, &namelen)) return -EFAULT;
          s.msg.msg_name = name;
          s.msg.msg_namelen = static_cast<socklen_t>(namelen);
        }
        // SAFETY: the msghdr, its iovec and both buffers live until the op's final completion.
        *out = reinterpret_cast<uint64_t>(&s.msg);
        return 0;
      }
      case AK_SOCKLEN: {
        if (user < 0) return -EINVAL;
        Slot& s = driver_->backend->SlotFor(user);
        s.socklen = static_cast<socklen_t>(a);
        *out = reinterpret_cast<uint64_t>(&s.socklen);
        return 0;
      }
      default:
        return -EINVAL;
    }
  }

  static bool BufferAt(napi_env env, napi_value bufs, uint32_t nbufs, int32_t index, uint8_t** data, size_t* length) {
    if (index < 0 || static_cast<uint32_t>(index) >= nbufs) return false;
    napi_value v;
    if (napi_get_element(env, bufs, static_cast<uint32_t>(index), &v) != napi_ok) return false;
    return ByteView(env, v, data, length);
  }

  // A byte typed array's data and length; false for anything else (napi_get_typedarray_info refuses
  // what is not a typed array). A detached array has no data and a length of 0.
  static bool ByteView(napi_env env, napi_value v, uint8_t** data, size_t* length) {
    napi_typedarray_type type;
    size_t count;
    void* p;
    napi_value ab;
    size_t byte_offset;
    if (napi_get_typedarray_info(env, v, &type, &count, &p, &ab, &byte_offset) != napi_ok) return false;
    if (type != napi_uint8_array && type != napi_int8_array && type != napi_uint8_clamped_array) return false;
    *data = static_cast<uint8_t*>(p);
    *length = count;
    return p != nullptr || count == 0;
  }

  // ringio_buf_register(view) -> an id >= 0, or -1 when the view cannot be registered (not a byte
  // array, empty, or the registry is full). Takes the view's data pointer once; taking it also moves a
  // small typed array's bytes off V8's heap for good, so the pointer stays put while the view lives.
  Napi::Value BufRegister(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    uint8_t* data;
    size_t length;
    if (info.Length() < 1 || !ByteView(env, info[0], &data, &length) || length == 0 || data == nullptr ||
        (reg_free_.empty() && reg_.size() >= kMaxRegistered)) {
      return Napi::Value(env, Int(env, -1));
    }
    uint32_t id;
    if (!reg_free_.empty()) {
      id = reg_free_.back();
      reg_free_.pop_back();
    } else {
      id = static_cast<uint32_t>(reg_.size());
      reg_.emplace_back();
    }
    reg_[id].data = data;
    reg_[id].length = length;
    return Napi::Value(env, Int(env, static_cast<int32_t>(id)));
  }

  // ringio_buf_release(id): JS saw the view collected; the id may be handed out again.
  Napi::Value BufRelease(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    int32_t id = -1;
    if (info.Length() >= 1 && napi_get_value_int32(env, info[0], &id) == napi_ok && id >= 0 &&
        static_cast<size_t>(id) < reg_.size() && reg_[static_cast<size_t>(id)].data != nullptr) {
      reg_[static_cast<size_t>(id)] = RegEntry{};
      reg_free_.push_back(static_cast<uint32_t>(id));
    }
    return Napi::Value(env, Undefined(env));
  }

  // ringio_buf_registered() -> ids in use (for tests and stats).
  Napi::Value BufRegistered(const Napi::CallbackInfo& info) {
    return Napi::Value(info.Env(), Uint(info.Env(), static_cast<uint32_t>(reg_.size() - reg_free_.size())));
  }


  static napi_value Int(napi_env env, int32_t v) {
    napi_value r = nullptr;
    if (napi_create_int32(env, v, &r) != napi_ok) return Undefined(env);
    return r;
  }

  // The hot entry points below use raw Node-API and never throw C++ exceptions: while a worker is
  // being terminated any call may fail, and node-addon-api's error path would then abort the process.
  static napi_value Undefined(napi_env env) {
    napi_value u = nullptr;
    napi_get_undefined(env, &u);
    return u;
  }

  static napi_value Uint(napi_env env, uint32_t v) {
    napi_value r = nullptr;
    if (napi_create_uint32(env, v, &r) != napi_ok) return Undefined(env);
    return r;
  }

  // ringio_driver_submit(count, bufs, reap) -> completions written to the shared completion array
  Napi::Value DriverSubmit(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    if (!driver_) {
      napi_throw_error(env, "ERR_RINGIO_CLOSED", "the ringio driver is closed");
      return Napi::Value(env, nullptr);
    }
    Driver& d = *driver_;
    uint32_t n = 0;
    bool reap = false;
    uint32_t nbufs = 0;
    if (info.Length() < 3 || napi_get_value_uint32(env, info[0], &n) != napi_ok ||
        napi_get_value_bool(env, info[2], &reap) != napi_ok ||
        napi_get_array_length(env, info[1], &nbufs) != napi_ok) {
      napi_throw_type_error(env, nullptr, "ringio_driver_submit(count, bufs, reap)");
      return Napi::Value(env, nullptr);
    }
    if (n > d.sq_cap) {
      napi_throw_range_error(env, nullptr, "ringio_driver_submit: count exceeds the submission area");
      return Napi::Value(env, nullptr);
    }
    napi_value bufs = info[1];
    Backend* be = d.backend.get();
    for (uint32_t i = 0; i < n; i++) {
      const int32_t* w = d.sq + static_cast<size_t>(i) * REC_WORDS;
      Op op;
      op.opcode = static_cast<uint8_t>(w[W_OPCODE]);
      op.fd = w[W_FD];
      op.user = w[W_USER];
      op.len = static_cast<uint32_t>(w[W_LEN]);
      op.off = static_cast<uint64_t>(static_cast<uint32_t>(w[W_OFF_LO])) |
               (static_cast<uint64_t>(static_cast<uint32_t>(w[W_OFF_HI])) << 32);
      op.op_flags = static_cast<uint32_t>(w[W_OPFLAGS]);
      op.sqe_flags = static_cast<uint8_t>(w[W_SQEFLAGS] & 0xff);
      op.ioprio = static_cast<uint16_t>(static_cast<uint32_t>(w[W_SQEFLAGS]) >> 16);
      op.legacy_op = static_cast<uint8_t>(w[W_LEGACY] & 0xff);
      op.interest = static_cast<uint8_t>((w[W_LEGACY] >> 8) & 3);
      op.interest_fd = static_cast<int32_t>(static_cast<uint32_t>(w[W_LEGACY]) >> 10);
      op.extra = w[W_EXTRA];
      if (op.user >= 0) d.stats[S_INFLIGHT] += 1;
      int err = ResolveAddr(env, bufs, nbufs, w[W_ADDR_KIND], w[W_ADDR_A], w[W_ADDR_B], op.len, op.user, &op.addr);
      if (err == 0 && w[W_ADDR2_KIND] != AK_NONE) {
        op.has_addr2 = true;
        err = ResolveAddr(env, bufs, nbufs, w[W_ADDR2_KIND], w[W_ADDR2_A], w[W_ADDR2_B], 0, op.user, &op.addr2);
      }
      if (err != 0) {
        if (op.user >= 0) be->PushReady(op.user, err);
        continue;
      }
      be->Queue(op);
    }
    be->Flush(reap);
    uint32_t got = reap ? be->Reap(d.cq, d.cq_cap) : 0;
    d.stats[S_COMPLETIONS] += got;
    d.UpdateRef();
    return Napi::Value(env, Uint(env, got));
  }

  // ringio_driver_reap() -> completions written; collects from the kernel first
  Napi::Value DriverReap(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    if (!driver_) {
      napi_throw_error(env, "ERR_RINGIO_CLOSED", "the ringio driver is closed");
      return Napi::Value(env, nullptr);
    }
    Driver& d = *driver_;
    d.backend->Collect();
    uint32_t got = d.backend->Reap(d.cq, d.cq_cap);
    d.stats[S_COMPLETIONS] += got;
    d.UpdateRef();
    return Napi::Value(env, Uint(env, got));
  }

  Napi::Value DriverClose(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    if (!driver_) return Napi::Value(env, Undefined(env));
    if (driver_->in_callback) {
      // This driver's completion callback is still on the stack (JS closed it from a continuation that
      // runs inside that callback). Tear everything down now, so a new driver can open at once, but
      // keep the object itself alive until OnPoll returns: it is still using it.
      driver_->close_requested = true;
      ShutdownDriver(*driver_);
      retired_.push_back(std::move(driver_));
      return Napi::Value(env, Undefined(env));
    }
    Teardown();
    return Napi::Value(env, Undefined(env));
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    (void)status;
    (void)events;
    auto* d = static_cast<Driver*>(handle->data);
    if (d->close_requested || !d->backend) return;
    Addon* self = d->env.GetInstanceData<Addon>();
    if (self == nullptr || self->tearing_down_) return;
    d->stats[S_WAKEUPS] += 1;
    d->backend->Collect();
    uint32_t got = d->backend->Reap(d->cq, d->cq_cap);
    d->stats[S_COMPLETIONS] += got;
    d->UpdateRef();
    if (got == 0) return;
    d->stats[S_CALLBACKS] += 1;
    // Raw Node-API from here: while a worker is being terminated every call may fail, and the
    // node-addon-api wrappers would then try to build an Error, which fails too and aborts.
    napi_env env = d->env;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value fn, recv, arg, result;
    d->in_callback = true;
    if (napi_get_reference_value(env, d->on_completions.operator napi_ref(), &fn) == napi_ok &&
        napi_get_global(env, &recv) == napi_ok && napi_create_uint32(env, got, &arg) == napi_ok) {
      napi_status st = napi_make_callback(env, d->async_ctx->operator napi_async_context(), recv, fn, 1, &arg, &result);
      if (st != napi_ok) {
        // JS could not run (termination) or threw. The dispatcher catches everything it calls, so a
        // throw here is a runtime bug: hand it to process 'uncaughtException' if JS can still run.
        bool pending = false;
        napi_value err;
        if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
            napi_get_and_clear_last_exception(env, &err) == napi_ok && st == napi_pending_exception) {
          napi_fatal_exception(env, err);
        }
      }
    }
    d->in_callback = false;
    napi_close_handle_scope(env, scope);
    if (d->close_requested) self->Release(d);
  }

  Napi::Value Layout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    const std::pair<const char*, int> entries[] = {
        {"W_OPCODE", W_OPCODE}, {"W_FD", W_FD}, {"W_USER", W_USER}, {"W_LEN", W_LEN}, {"W_OFF_LO", W_OFF_LO},
        {"W_OFF_HI", W_OFF_HI}, {"W_ADDR_KIND", W_ADDR_KIND}, {"W_ADDR_A", W_ADDR_A}, {"W_ADDR_B", W_ADDR_B},
        {"W_OPFLAGS", W_OPFLAGS}, {"W_SQEFLAGS", W_SQEFLAGS}, {"W_ADDR2_KIND", W_ADDR2_KIND},
        {"W_ADDR2_A", W_ADDR2_A}, {"W_ADDR2_B", W_ADDR2_B}, {"W_LEGACY", W_LEGACY}, {"W_EXTRA", W_EXTRA},
        {"REC_WORDS", REC_WORDS}, {"AK_NONE", AK_NONE}, {"AK_BUF", AK_BUF}, {"AK_IOVEC", AK_IOVEC},
        {"AK_TIMESPEC", AK_TIMESPEC}, {"AK_U64", AK_U64}, {"AK_SOCKLEN", AK_SOCKLEN}, {"AK_BUF_END", AK_BUF_END}, {"AK_MSGHDR", AK_MSGHDR}, {"AK_REG", AK_REG},
        {"INTEREST_NONE", INTEREST_NONE}, {"INTEREST_READABLE", INTEREST_READABLE},
        {"INTEREST_WRITABLE", INTEREST_WRITABLE}, {"INTEREST_POOL", INTEREST_POOL}, {"C_USER", C_USER}, {"C_RES", C_RES}, {"C_FLAGS", C_FLAGS},
        {"CQE_WORDS", CQE_WORDS}, {"USER_IGNORE", USER_IGNORE}, {"S_ENTERS", S_ENTERS},
        {"S_COMPLETIONS", S_COMPLETIONS}, {"S_INFLIGHT", S_INFLIGHT}, {"S_SUBMITTED", S_SUBMITTED},
        {"S_WAKEUPS", S_WAKEUPS}, {"S_CALLBACKS", S_CALLBACKS}, {"STAT_COUNT", STAT_COUNT},
    };
    for (const auto& e : entries) o.Set(e.first, Napi::Number::New(env, e.second));
    return o;
  }

  Napi::Value SourceHash(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), RINGIO_STR(RINGIO_SOURCE_HASH));
  }

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
    if (driver_ && driver_->backend) driver_->backend->ForgetFd(fd);
    if (close(fd) < 0 && errno != EINTR) throw ErrnoError(info.Env(), errno, "close");
    return info.Env().Undefined();
  }

  void Release(Driver* d) {
    for (auto it = retired_.begin(); it != retired_.end(); ++it) {
      if (it->get() == d) {
        retired_.erase(it);
        return;
      }
    }
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

  static bool Bytes(const Napi::Value& v, uint8_t** data, size_t* len) {
    if (!v.IsTypedArray()) return false;
    auto a = v.As<Napi::Uint8Array>();
    *data = a.Data();
    *len = a.ByteLength();
    return true;
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

  struct RegEntry {
    uint8_t* data = nullptr;  // nullptr: the id is free
    size_t length = 0;
  };
  // Enough for any sane number of live rented buffers; past it buffers simply go unregistered.
  static constexpr size_t kMaxRegistered = 1 << 20;
  std::vector<RegEntry> reg_;
  std::vector<uint32_t> reg_free_;

  std::unique_ptr<Driver> driver_;
  std::vector<std::unique_ptr<Driver>> retired_;
  napi_async_cleanup_hook_handle cleanup_hook_ = nullptr;
  bool tearing_down_ = false;
  int pending_closes_ = 0;
};

}  // namespace
}  // namespace ringio

using RingioAddon = ringio::Addon;
NODE_API_ADDON(RingioAddon)
