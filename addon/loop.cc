// The loop binding: flat ringio_driver_* entry points, the per-environment driver, and how it sits in
// libuv's loop.
//
// Loop integration (docs/design/driver.md has the measurements behind it): libuv owns the blocking
// wait. The backend's poll fd (the ring fd, its registered eventfd with DEFER_TASKRUN, or the epoll fd)
// is watched by one uv_poll_t. JS pushes op records into a shared Int32Array and flushes a batch with one call
// (ringio_driver_submit), which also reaps whatever has completed into a second shared Int32Array.
// When the kernel finishes work while JS is idle, libuv wakes us, we reap, and make one callback into
// JS per batch of completions.
//
// Rules:
//  1. All state lives in the per-environment Loop (no C++ statics), so every worker thread has its own
//     ring, created on that thread.
//  2. A record is validated (decode.cc) against the JS buffer it names before any pointer reaches a
//     backend. A bad record completes with an error instead of throwing, so a batch is never half-taken.
//  3. The environment cleanup hook drains the backend (cancel, then wait for every completion) before
//     the environment's memory can go away: worker.terminate() and process exit are safe.
//  4. Nothing here throws a C++ exception outside an entry point (the cleanup hook, the poll and close
//     callbacks use raw Node-API), and an entry point whose exception cannot reach JS because the
//     worker is being terminated drops it (NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS in binding.gyp)
//     instead of ending the process in std::terminate. docs/design/cancellation.md, "Worker exit".
#include "loop.h"

#include <sys/utsname.h>

#include <cerrno>
#include <string>

#include "bytes.h"
#include "decode.h"
#include "errors.h"
#include "record.h"

namespace ringio {

struct Driver {
  Driver(Napi::Env e, Loop* l) : env(e), loop(l) {}
  // The backend (and with it the kernel's view of the buffer ring) goes before pbuf_chunks let go.
  ~Driver() { backend.reset(); }
  Napi::Env env;
  Loop* loop;
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
  // The provided-buffer pool (ringio_pbuf_open, ringio_pbuf_grow). SAFETY: pbuf_chunks keeps the pool's
  // memory alive for as long as this Driver, which outlives its backend (Shutdown drains and destroys the
  // backend first), so no op the kernel may still complete can write into freed memory.
  bool pbuf_open = false;
  std::vector<Napi::Reference<Napi::Uint8Array>> pbuf_chunks;
  Napi::Reference<Napi::Int32Array> pbuf_recycle_ref;
  int32_t* pbuf_recycle = nullptr;  // [count, id, id, ...]: buffers JS gave back since the last submit
  uint32_t pbuf_recycle_cap = 0;

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

Loop::Loop(Napi::Env env, const BufRegistry* registry) : registry_(registry) {
  // An async cleanup hook, not a plain one: the poll handle's close callback is code in this library,
  // so the environment (and the library) must wait until libuv has run it.
  napi_add_async_cleanup_hook(env, &Loop::AsyncCleanup, this, &cleanup_hook_);
}

Loop::~Loop() {
  Teardown();
  // Normally the hook has run and removed itself before the environment frees its instance data.
  // But when the addon's constructor fails after this Loop registered its hook (a worker terminated
  // while it loads the addon), the Loop goes at once: the hook must go with it, or the environment's
  // teardown would call it on freed memory.
  if (cleanup_hook_ != nullptr && !tearing_down_) {
    napi_remove_async_cleanup_hook(cleanup_hook_);
    cleanup_hook_ = nullptr;
  }
}

Backend* Loop::backend() const { return driver_ ? driver_->backend.get() : nullptr; }

void Loop::AsyncCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* self = static_cast<Loop*>(arg);
  self->cleanup_hook_ = handle;
  self->tearing_down_ = true;
  self->Teardown();
  self->MaybeFinishCleanup();
}

void Loop::OnHandleClosed(uv_handle_t* h) {
  auto* self = static_cast<Loop*>(h->data);
  delete reinterpret_cast<uv_poll_t*>(h);
  self->pending_closes_--;
  self->MaybeFinishCleanup();
}

void Loop::MaybeFinishCleanup() {
  if (tearing_down_ && pending_closes_ == 0 && cleanup_hook_ != nullptr) {
    napi_async_cleanup_hook_handle h = cleanup_hook_;
    cleanup_hook_ = nullptr;
    napi_remove_async_cleanup_hook(h);
  }
}

void Loop::ShutdownDriver(Driver& d) {
  if (d.poll != nullptr) pending_closes_++;
  d.Shutdown(&Loop::OnHandleClosed, this);
}

void Loop::Teardown() {
  if (!driver_) return;
  ShutdownDriver(*driver_);
  driver_.reset();
}

// ringio_driver_open({ driver, entries, fault, setup }, sq, cq, stats, onCompletions) -> info
Napi::Value Loop::Open(const Napi::CallbackInfo& info) {
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

  auto d = std::make_unique<Driver>(env, this);
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

  // The result first: any of these calls can throw (they fail while a worker is being terminated), and
  // until the poll handle is started a throw only has to free `d`. A started handle that nobody owned
  // would stay in libuv's loop over a closed fd (abort() in the worker's teardown) and a freed Driver.
  Napi::Object out = Napi::Object::New(env);
  out.Set("driver", Napi::String::New(env, b->Name()));
  out.Set("fallbackReason", fallback.empty() ? env.Null() : Napi::String::New(env, fallback));
  Napi::Array features = Napi::Array::New(env);
  uint32_t i = 0;
  for (const std::string& f : b->Features()) features.Set(i++, Napi::String::New(env, f));
  out.Set("features", features);
  Napi::Array missing = Napi::Array::New(env);
  i = 0;
  for (const std::string& m : b->Missing()) missing.Set(i++, Napi::String::New(env, m));
  out.Set("degraded", missing);
  out.Set("entries", Napi::Number::New(env, b->Entries()));
  struct utsname u;
  out.Set("kernel", Napi::String::New(env, uname(&u) == 0 ? u.release : "unknown"));

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
  uv_poll_start(d->poll, UV_READABLE, &Loop::OnPoll);
  uv_unref(reinterpret_cast<uv_handle_t*>(d->poll));
  // From here on nothing throws: the Loop owns the driver, and its teardown closes the handle.
  driver_ = std::move(d);
  return out;
}

// Resolve one address word group of a record into a pointer or value. Returns 0 or -errno.
Napi::Value Loop::Submit(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  if (!driver_) {
    napi_throw_error(env, "ERR_RINGIO_CLOSED", "the ringio driver is closed");
    return Napi::Value(env, nullptr);
  }
  Driver& d = *driver_;
  uint32_t n = 0;
  bool reap = false;
  // The caller says how many arrays `bufs` holds (bufs.length): napi_get_array_length cost ~170
  // instructions a batch. A count larger than the array only fails records: an index past the end
  // reads `undefined`, which BufferAt refuses (-EFAULT), as it refuses anything but a byte view.
  uint32_t nbufs = 0;
  if (info.Length() < 4 || napi_get_value_uint32(env, info[0], &n) != napi_ok ||
      napi_get_value_uint32(env, info[2], &nbufs) != napi_ok || napi_get_value_bool(env, info[3], &reap) != napi_ok) {
    napi_throw_type_error(env, nullptr, "ringio_driver_submit(count, bufs, nbufs, reap)");
    return Napi::Value(env, nullptr);
  }
  if (n > d.sq_cap) {
    napi_throw_range_error(env, nullptr, "ringio_driver_submit: count exceeds the submission area");
    return Napi::Value(env, nullptr);
  }
  napi_value bufs = info[1];
  Backend* be = d.backend.get();
  if (d.pbuf_recycle != nullptr && d.pbuf_recycle[0] > 0) {
    uint32_t k = static_cast<uint32_t>(d.pbuf_recycle[0]);
    be->PbufRecycle(d.pbuf_recycle + 1, k < d.pbuf_recycle_cap ? k : d.pbuf_recycle_cap);
    d.pbuf_recycle[0] = 0;
  }
  for (uint32_t i = 0; i < n; i++) {
    const int32_t* w = d.sq + static_cast<size_t>(i) * REC_WORDS;
    Op op;
    int err = DecodeRecord(env, bufs, nbufs, w, be, *registry_, &op);
    if (op.user >= 0) d.stats[S_INFLIGHT] += 1;
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

// ringio_pbuf_open(size, max, recycle) -> "" when the pool is in place (empty: ringio_pbuf_grow adds
// buffers), else why not
Napi::Value Loop::PbufOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!driver_) throw CodedError(env, "ERR_RINGIO_CLOSED", "the ringio driver is closed");
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsTypedArray()) {
    throw Napi::TypeError::New(env, "ringio_pbuf_open(size, max, recycle)");
  }
  auto recycle = info[2].As<Napi::Int32Array>();
  uint32_t size = info[0].As<Napi::Number>().Uint32Value();
  uint32_t max = info[1].As<Napi::Number>().Uint32Value();
  if (recycle.TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(env, "ringio_pbuf_open: recycle must be an Int32Array");
  }
  if (size == 0 || max == 0 || max > 32768 || recycle.ElementLength() < static_cast<size_t>(max) + 1) {
    throw Napi::RangeError::New(env, "ringio_pbuf_open: size or max out of range, or recycle is too short");
  }
  Driver& d = *driver_;
  if (d.pbuf_open) return Napi::String::New(env, "a buffer pool is already open on this driver");
  std::string reason = d.backend->PbufOpen(size, max);
  if (!reason.empty()) return Napi::String::New(env, reason);
  d.pbuf_open = true;
  d.pbuf_recycle_ref = Napi::Persistent(recycle);
  d.pbuf_recycle = recycle.Data();
  d.pbuf_recycle[0] = 0;
  d.pbuf_recycle_cap = max;
  return Napi::String::New(env, "");
}

// ringio_pbuf_grow(mem, count) -> "" when the `count` buffers in `mem` joined the pool (as the next ids),
// else why not. Cold path: the pool grows when reads find it empty or running low.
Napi::Value Loop::PbufGrow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!driver_) throw CodedError(env, "ERR_RINGIO_CLOSED", "the ringio driver is closed");
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "ringio_pbuf_grow(mem, count)");
  }
  auto mem = info[0].As<Napi::Uint8Array>();
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  if (mem.TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "ringio_pbuf_grow: mem must be a Uint8Array");
  Driver& d = *driver_;
  if (!d.pbuf_open) return Napi::String::New(env, "no buffer pool is open on this driver");
  // The backend knows the buffer size; the chunk must hold count of them.
  if (count == 0 || static_cast<uint64_t>(d.backend->PbufSize()) * count > mem.ByteLength()) {
    throw Napi::RangeError::New(env, "ringio_pbuf_grow: count buffers exceed mem");
  }
  // SAFETY: the reference is taken before the kernel sees the memory, so no failing call (a worker
  // being terminated) can leave ring entries over memory that nothing holds.
  Napi::Reference<Napi::Uint8Array> mem_ref = Napi::Persistent(mem);
  std::string reason = d.backend->PbufGrow(mem.Data(), count);
  if (!reason.empty()) return Napi::String::New(env, reason);
  d.pbuf_chunks.push_back(std::move(mem_ref));
  return Napi::String::New(env, "");
}

// ringio_driver_reap() -> completions written; collects from the kernel first
Napi::Value Loop::Reap(const Napi::CallbackInfo& info) {
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

Napi::Value Loop::Close(const Napi::CallbackInfo& info) {
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

void Loop::OnPoll(uv_poll_t* handle, int status, int events) {
  (void)status;
  (void)events;
  auto* d = static_cast<Driver*>(handle->data);
  if (d->close_requested || !d->backend) return;
  Loop* self = d->loop;
  if (self->tearing_down_) return;
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

void Loop::Release(Driver* d) {
  for (auto it = retired_.begin(); it != retired_.end(); ++it) {
    if (it->get() == d) {
      retired_.erase(it);
      return;
    }
  }
}


namespace {

Loop* Self(const Napi::CallbackInfo& info) { return static_cast<Loop*>(info.Data()); }

// ringio_driver_open({ driver, entries, fault, setup }, sq, cq, stats, onCompletions) -> info
Napi::Value Open(const Napi::CallbackInfo& info) { return Self(info)->Open(info); }
// ringio_driver_submit(count, bufs, nbufs, reap) -> completions written to the shared completion array
Napi::Value Submit(const Napi::CallbackInfo& info) { return Self(info)->Submit(info); }
// ringio_driver_reap() -> completions written; collects from the kernel first
Napi::Value Reap(const Napi::CallbackInfo& info) { return Self(info)->Reap(info); }
Napi::Value Close(const Napi::CallbackInfo& info) { return Self(info)->Close(info); }
Napi::Value PbufOpen(const Napi::CallbackInfo& info) { return Self(info)->PbufOpen(info); }
Napi::Value PbufGrow(const Napi::CallbackInfo& info) { return Self(info)->PbufGrow(info); }

}  // namespace

void RegisterLoop(Napi::Env env, Napi::Object exports, Loop* loop) {
  const std::pair<const char*, Napi::Function::Callback> fns[] = {
      {"ringio_driver_open", Open},
      {"ringio_driver_submit", Submit},
      {"ringio_driver_reap", Reap},
      {"ringio_driver_close", Close},
      {"ringio_pbuf_open", PbufOpen},
      {"ringio_pbuf_grow", PbufGrow},
  };
  for (const auto& f : fns) exports.Set(f.first, Napi::Function::New(env, f.second, f.first, loop));
}

}  // namespace ringio
