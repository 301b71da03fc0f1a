// Cross-thread wakeups (doorbells), CPU pinning and process-wide ids: the native half of
// thread-per-core. docs/design/threads.md explains the protocol; the measurements behind the choice of
// an eventfd over IORING_OP_MSG_RING are in bench/experiments/wake-results.md.
//
// Every thread that runs a ringio runtime registers a doorbell in a process-wide table: an eventfd
// watched by a uv_poll_t on that thread's loop, an inbox of tokens (which primitive changed), and a
// state word. Any thread may ring any doorbell; only the owner thread drains it.
//
// Rules:
//  1. A wake is never lost. The waker publishes its token (under the door's mutex) and then reads the
//     state; the owner, before libuv may block, stores PARKED and then reads the inbox length. Both
//     sides use sequentially consistent atomics, so at least one of them sees the other (Dekker): either
//     the waker sees PARKED and writes the eventfd, or the owner sees the token and does not block.
//  2. Waking a busy thread costs no syscall: the state is PARKED only between libuv's prepare phase and
//     its check phase, i.e. while the loop may be blocked in epoll_wait. Tokens for a busy thread wait in
//     the inbox and are delivered in the next check phase.
//  3. The eventfd is written only under the door's mutex, and the owner closes it only under the same
//     mutex: a waker aiming at a door whose thread has gone can never write into a recycled fd number.
//     Tokens are hints, not messages: a token that reaches the wrong thread (a door reused by a new
//     runtime) is ignored there, because every primitive re-checks its shared state when woken.
//  4. Statics here are process-wide on purpose (every worker thread shares the table). Per-thread
//     state lives in ThreadEnv, owned by the environment and torn down by its async cleanup hook.
//  5. A thread that other threads have woken within the last 2 ms spins for up to RINGIO_SPIN_US
//     (default 50) before it lets libuv block, watching its inbox. Waking a sleeping thread costs a
//     syscall on the waker's side and a scheduler wakeup (on a VM, an interrupt into an idle vCPU) on
//     the sleeper's; a thread that is in a conversation with another one answers far sooner when it
//     is still awake. The spin ends early when libuv has other I/O ready or a timer due, so it never
//     delays other work by more than about 10 µs, and a thread that nobody talks to never spins.

#include "threads.h"

#include "errors.h"

#include <poll.h>
#include <sched.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

namespace ringio {
namespace {

constexpr uint32_t kMaxDoors = 1024;  // threads with a runtime at the same time; a key is an index

enum DoorState : int { kFree = 0, kRunning = 1, kParked = 2, kNotified = 3 };

struct Door {
  std::mutex mu;
  int efd = -1;      // guarded by mu
  std::vector<uint32_t> inbox;  // guarded by mu
  std::atomic<uint32_t> inbox_len{0};
  std::atomic<int> state{kFree};
  // Counters for stats(): tokens received, eventfd writes aimed at this door.
  std::atomic<double> tokens{0};
  std::atomic<double> syscalls{0};
};

Door g_doors[kMaxDoors];

// Rule 5: how long a thread that was woken by another thread recently spins before it sleeps
// ($RINGIO_SPIN_US, default 50 µs; 0 turns spinning off), and what "recently" means.
uint64_t SpinNsFromEnv() {
  const char* v = getenv("RINGIO_SPIN_US");
  if (v == nullptr || *v == 0) return 50000;
  char* end = nullptr;
  unsigned long us = strtoul(v, &end, 10);
  if (end == v || us > 1000000) return 50000;
  return static_cast<uint64_t>(us) * 1000;
}
const uint64_t g_spin_ns = SpinNsFromEnv();
constexpr uint64_t kSpinWindowNs = 2000000;  // woken by another thread in the last 2 ms
constexpr uint64_t kIoCheckNs = 10000;       // look at libuv's other fds every 10 µs while spinning
constexpr uint64_t kPauseNs = 3000;          // then spin with sched_yield
std::mutex g_alloc_mu;
std::atomic<uint32_t> g_next_uid{1};

// Lets go of a reference without throwing: the moved-to reference's destructor deletes it and ignores
// the status.
template <typename R>
void Drop(R& ref) noexcept {
  R gone(std::move(ref));
}

// The per-environment half: the owner's libuv handles and the JS delivery path.
struct ThreadEnv {
  napi_env env = nullptr;
  int index = -1;
  uint32_t key = 0;
  uv_poll_t* poll = nullptr;
  uv_prepare_t* prepare = nullptr;
  uv_check_t* check = nullptr;
  uv_idle_t* idle = nullptr;
  bool idle_on = false;
  bool refed = false;
  bool delivering = false;
  uint64_t last_delivery_ns = 0;
  Napi::Reference<Napi::Int32Array> area_ref;
  int32_t* area = nullptr;
  uint32_t area_len = 0;
  Napi::FunctionReference on_wake;
  std::unique_ptr<Napi::AsyncContext> async_ctx;
  std::vector<uint32_t> pending;  // drained from the inbox, not yet handed to JS
  napi_async_cleanup_hook_handle cleanup = nullptr;
  int pending_closes = 0;
  bool tearing_down = false;

  Door& door() { return g_doors[index]; }

  // libuv is about to block: first spin a little if other threads have been talking to us (rule 5),
  // then announce it and look at the inbox once more (rule 1).
  static void OnPrepare(uv_prepare_t* h) {
    auto* t = static_cast<ThreadEnv*>(h->data);
    Door& d = t->door();
    if (t->Spin()) {
      // Deliver now rather than in the check phase: the other thread is waiting for our answer.
      // The idle handle keeps this poll from blocking, since JS may have queued work just now.
      t->StartIdle();
      t->Deliver();
      return;
    }
    d.state.store(kParked, std::memory_order_seq_cst);
    if (d.inbox_len.load(std::memory_order_seq_cst) > 0) {
      // A token arrived while we were busy: keep this poll from blocking; the check phase delivers it.
      d.state.store(kRunning, std::memory_order_seq_cst);
      t->StartIdle();
    }
  }

  // libuv has returned from polling: we are running again, and deliver whatever arrived.
  static void OnCheck(uv_check_t* h) {
    auto* t = static_cast<ThreadEnv*>(h->data);
    t->door().state.store(kRunning, std::memory_order_seq_cst);
    if (t->idle_on) {
      uv_idle_stop(t->idle);
      t->idle_on = false;
    }
    t->Deliver();
  }

  static void OnIdle(uv_idle_t*) {}

  static void OnPoll(uv_poll_t* h, int, int) {
    auto* t = static_cast<ThreadEnv*>(h->data);
    uint64_t v;
    // Drain the counter so the level-triggered poll goes quiet; delivery happens in the check phase.
    while (read(t->door().efd, &v, sizeof v) < 0 && errno == EINTR) {
    }
  }

  // Rule 5. Returns true if a token arrived while spinning.
  bool Spin() {
    if (g_spin_ns == 0 || last_delivery_ns == 0) return false;
    uint64_t now = NowNs();
    if (now - last_delivery_ns > kSpinWindowNs) return false;
    uv_loop_t* loop = reinterpret_cast<uv_handle_t*>(prepare)->loop;
    int timeout_ms = uv_backend_timeout(loop);
    if (timeout_ms == 0) return false;  // libuv has work to do already
    uint64_t budget = g_spin_ns;
    if (timeout_ms > 0 && static_cast<uint64_t>(timeout_ms) * 1000000 < budget) budget = static_cast<uint64_t>(timeout_ms) * 1000000;
    uint64_t end = now + budget;
    uint64_t next_io_check = now + kIoCheckNs;
    uint64_t yield_after = now + kPauseNs;
    Door& d = door();
    for (uint32_t i = 0;; i++) {
      if (d.inbox_len.load(std::memory_order_acquire) > 0) return true;
      __builtin_ia32_pause();
      if ((i & 63) != 63) continue;
      now = NowNs();
      // After a short pure spin, give the CPU away each round: when threads outnumber CPUs the
      // thread we are waiting for may need this very CPU to answer.
      if (now >= yield_after) sched_yield();
      if (now >= end) return false;
      if (now >= next_io_check) {
        // Other I/O ready on libuv's epoll fd ends the spin: we must not sit on it.
        struct pollfd p = {uv_backend_fd(loop), POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) return false;
        next_io_check = now + kIoCheckNs;
      }
    }
  }

  static uint64_t NowNs() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  }

  void StartIdle() {
    if (idle_on) return;
    idle_on = true;
    uv_idle_start(idle, &ThreadEnv::OnIdle);
  }

  void Deliver() {
    if (tearing_down || delivering) return;
    Door& d = door();
    if (d.inbox_len.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(d.mu);
      pending.insert(pending.end(), d.inbox.begin(), d.inbox.end());
      d.inbox.clear();
      d.inbox_len.store(0, std::memory_order_seq_cst);
    }
    if (pending.empty()) return;
    last_delivery_ns = NowNs();
    delivering = true;
    size_t off = 0;
    // Raw Node-API, as in the driver's poll callback: during worker termination calls may fail.
    while (off < pending.size()) {
      uint32_t n = static_cast<uint32_t>(std::min<size_t>(area_len, pending.size() - off));
      for (uint32_t i = 0; i < n; i++) area[i] = static_cast<int32_t>(pending[off + i]);
      off += n;
      napi_handle_scope scope;
      if (napi_open_handle_scope(env, &scope) != napi_ok) break;
      napi_value fn, recv, arg, result;
      bool ok = napi_get_reference_value(env, on_wake.operator napi_ref(), &fn) == napi_ok &&
                napi_get_global(env, &recv) == napi_ok && napi_create_uint32(env, n, &arg) == napi_ok;
      if (ok) {
        napi_status st = napi_make_callback(env, async_ctx->operator napi_async_context(), recv, fn, 1, &arg, &result);
        if (st == napi_pending_exception) {
          napi_value err;
          if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
        }
      }
      napi_close_handle_scope(env, scope);
      // JS may have closed the runtime (and this doorbell) from inside the callback.
      if (!ok || tearing_down || index < 0) break;
    }
    pending.clear();
    delivering = false;
  }

  void SetRef(bool on) {
    if (poll == nullptr || on == refed) return;
    refed = on;
    if (on) {
      uv_ref(reinterpret_cast<uv_handle_t*>(poll));
    } else {
      uv_unref(reinterpret_cast<uv_handle_t*>(poll));
    }
  }

  static void OnClosed(uv_handle_t* h) {
    auto* t = static_cast<ThreadEnv*>(h->data);
    switch (h->type) {
      case UV_POLL: delete reinterpret_cast<uv_poll_t*>(h); break;
      case UV_PREPARE: delete reinterpret_cast<uv_prepare_t*>(h); break;
      case UV_CHECK: delete reinterpret_cast<uv_check_t*>(h); break;
      default: delete reinterpret_cast<uv_idle_t*>(h); break;
    }
    t->pending_closes--;
    t->MaybeFinish();
  }

  void CloseHandle(uv_handle_t* h) {
    pending_closes++;
    uv_close(h, &ThreadEnv::OnClosed);
  }

  // Releases the door (rule 3) and closes the handles. Safe to call twice.
  void Unregister() {
    if (index < 0) return;
    Door& d = door();
    {
      std::lock_guard<std::mutex> lock(d.mu);
      if (d.efd >= 0) close(d.efd);
      d.efd = -1;
      d.inbox.clear();
      d.inbox_len.store(0);
      d.state.store(kFree);
    }
    {
      std::lock_guard<std::mutex> lock(g_alloc_mu);
      index = -1;
    }
    if (poll != nullptr) {
      uv_poll_stop(poll);
      CloseHandle(reinterpret_cast<uv_handle_t*>(poll));
      uv_prepare_stop(prepare);
      CloseHandle(reinterpret_cast<uv_handle_t*>(prepare));
      uv_check_stop(check);
      CloseHandle(reinterpret_cast<uv_handle_t*>(check));
      uv_idle_stop(idle);
      CloseHandle(reinterpret_cast<uv_handle_t*>(idle));
      poll = nullptr;
      prepare = nullptr;
      check = nullptr;
      idle = nullptr;
    }
    // The next runtime on this thread starts from scratch with new handles: no idle handle running,
    // no conversation going on.
    idle_on = false;
    refed = false;
    last_delivery_ns = 0;
    if (!delivering) pending.clear();
    // Not Reset(): it throws a Napi::Error when napi_delete_reference fails, and this also runs in the
    // environment's cleanup hook, where no JS frame could take it (std::terminate).
    Drop(area_ref);
    Drop(on_wake);
    async_ctx.reset();
  }

  // The last step of teardown: every handle is closed, so nothing can reach this object any more.
  void MaybeFinish() {
    if (tearing_down && pending_closes == 0 && cleanup != nullptr) {
      napi_async_cleanup_hook_handle h = cleanup;
      cleanup = nullptr;
      napi_remove_async_cleanup_hook(h);
      delete this;
    }
  }

  static void AsyncCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
    auto* t = static_cast<ThreadEnv*>(arg);
    t->cleanup = handle;
    t->tearing_down = true;
    t->Unregister();
    t->MaybeFinish();
  }
};

ThreadEnv* Self(const Napi::CallbackInfo& info) { return static_cast<ThreadEnv*>(info.Data()); }

// ringio_thread_register(area: Int32Array, onWake: (count) => void) -> key
Napi::Value Register(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThreadEnv* t = Self(info);
  if (t->index >= 0) throw CodedError(env, "ERR_RINGIO_NESTED_START", "this thread already has a doorbell");
  if (t->tearing_down) throw CodedError(env, "ERR_RINGIO_CLOSED", "the environment is shutting down");
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsFunction()) {
    throw Napi::TypeError::New(env, "ringio_thread_register(area, onWake)");
  }
  auto area = info[0].As<Napi::Int32Array>();
  if (area.ElementLength() == 0) throw Napi::RangeError::New(env, "ringio_thread_register: empty area");
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) throw ErrnoError(env, errno, "eventfd");
  int index = -1;
  {
    std::lock_guard<std::mutex> lock(g_alloc_mu);
    for (uint32_t i = 0; i < kMaxDoors; i++) {
      if (g_doors[i].state.load() == kFree) {
        index = static_cast<int>(i);
        g_doors[i].state.store(kRunning);
        break;
      }
    }
  }
  if (index < 0) {
    close(efd);
    throw CodedError(env, "ERR_RINGIO_TOO_MANY_THREADS", "more than 1024 threads run a ringio runtime");
  }
  Door& d = g_doors[index];
  {
    std::lock_guard<std::mutex> lock(d.mu);
    d.efd = efd;
    d.inbox.clear();
    d.inbox_len.store(0);
    d.tokens.store(0);
    d.syscalls.store(0);
  }
  t->index = index;
  t->key = static_cast<uint32_t>(index);
  // SAFETY: the area is held by a reference until Unregister, so its data pointer stays valid.
  t->area_ref = Napi::Persistent(area);
  t->area = area.Data();
  t->area_len = static_cast<uint32_t>(area.ElementLength());
  t->on_wake = Napi::Persistent(info[1].As<Napi::Function>());
  t->async_ctx = std::make_unique<Napi::AsyncContext>(env, "ringio:doorbell");

  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  t->poll = new uv_poll_t;
  t->prepare = new uv_prepare_t;
  t->check = new uv_check_t;
  t->idle = new uv_idle_t;
  uv_poll_init(loop, t->poll, efd);
  uv_prepare_init(loop, t->prepare);
  uv_check_init(loop, t->check);
  uv_idle_init(loop, t->idle);
  t->poll->data = t->prepare->data = t->check->data = t->idle->data = t;
  uv_poll_start(t->poll, UV_READABLE, &ThreadEnv::OnPoll);
  uv_prepare_start(t->prepare, &ThreadEnv::OnPrepare);
  uv_check_start(t->check, &ThreadEnv::OnCheck);
  // None of these keep the loop alive by themselves; JS refs the poll while it has waiters.
  uv_unref(reinterpret_cast<uv_handle_t*>(t->poll));
  uv_unref(reinterpret_cast<uv_handle_t*>(t->prepare));
  uv_unref(reinterpret_cast<uv_handle_t*>(t->check));
  uv_unref(reinterpret_cast<uv_handle_t*>(t->idle));
  t->refed = false;
  return Napi::Number::New(env, t->key);
}

Napi::Value Unregister(const Napi::CallbackInfo& info) {
  Self(info)->Unregister();
  return info.Env().Undefined();
}

// ringio_thread_ref(on): keep the loop alive while this thread awaits other threads.
Napi::Value Ref(const Napi::CallbackInfo& info) {
  Self(info)->SetRef(info[0].ToBoolean());
  return info.Env().Undefined();
}

// ringio_thread_wake(key, token) -> false when no thread owns that doorbell. Any thread.
Napi::Value Wake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "ringio_thread_wake(key, token)");
  }
  uint32_t key = info[0].As<Napi::Number>().Uint32Value();
  uint32_t token = info[1].As<Napi::Number>().Uint32Value();
  if (key >= kMaxDoors) throw Napi::RangeError::New(env, "ringio_thread_wake: bad thread key");
  Door& d = g_doors[key];
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.efd < 0) return Napi::Boolean::New(env, false);
  d.inbox.push_back(token);
  d.inbox_len.store(static_cast<uint32_t>(d.inbox.size()), std::memory_order_seq_cst);
  d.tokens.store(d.tokens.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  int expected = kParked;
  if (d.state.load(std::memory_order_seq_cst) == kParked &&
      d.state.compare_exchange_strong(expected, kNotified, std::memory_order_seq_cst)) {
    uint64_t one = 1;
    // SAFETY (rule 3): efd is this door's live eventfd; we hold the mutex its owner closes it under.
    while (write(d.efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
    d.syscalls.store(d.syscalls.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  return Napi::Boolean::New(env, true);
}

// ringio_thread_counters() -> [tokens received, eventfd writes that woke this thread]
Napi::Value Counters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThreadEnv* t = Self(info);
  Napi::Array a = Napi::Array::New(env, 2);
  if (t->index < 0) {
    a.Set(0u, Napi::Number::New(env, 0));
    a.Set(1u, Napi::Number::New(env, 0));
  } else {
    a.Set(0u, Napi::Number::New(env, t->door().tokens.load()));
    a.Set(1u, Napi::Number::New(env, t->door().syscalls.load()));
  }
  return a;
}

// ringio_thread_uid() -> a process-wide id, unique for the life of the process (wraps after 2^32).
Napi::Value Uid(const Napi::CallbackInfo& info) {
  uint32_t id = g_next_uid.fetch_add(1);
  if (id == 0) id = g_next_uid.fetch_add(1);
  return Napi::Number::New(info.Env(), id);
}

// ringio_thread_pin(cpus: number[]): sched_setaffinity on the calling thread only.
Napi::Value Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "ringio_thread_pin(cpus)");
  Napi::Array cpus = info[0].As<Napi::Array>();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < cpus.Length(); i++) {
    Napi::Value v = cpus.Get(i);
    if (!v.IsNumber()) throw Napi::TypeError::New(env, "cpus must be numbers");
    int64_t c = v.As<Napi::Number>().Int64Value();
    if (c < 0 || c >= CPU_SETSIZE) throw Napi::RangeError::New(env, "cpu index out of range");
    CPU_SET(static_cast<int>(c), &set);
  }
  // pid 0 is the calling thread, not the process: each worker pins itself.
  if (sched_setaffinity(0, sizeof set, &set) < 0) throw ErrnoError(env, errno, "sched_setaffinity");
  return env.Undefined();
}

// ringio_thread_affinity() -> the CPUs the calling thread may run on.
Napi::Value Affinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) < 0) throw ErrnoError(env, errno, "sched_getaffinity");
  Napi::Array a = Napi::Array::New(env);
  uint32_t n = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (CPU_ISSET(c, &set)) a.Set(n++, Napi::Number::New(env, c));
  }
  return a;
}

}  // namespace

void RegisterThreads(Napi::Env env, Napi::Object exports) {
  auto* t = new ThreadEnv();
  t->env = env;
  // The ThreadEnv outlives every handle: the async cleanup hook closes them and frees it once libuv
  // has run the last close callback (MaybeFinish).
  napi_add_async_cleanup_hook(env, &ThreadEnv::AsyncCleanup, t, &t->cleanup);
  const std::pair<const char*, Napi::Function::Callback> fns[] = {
      {"ringio_thread_register", Register}, {"ringio_thread_unregister", Unregister},
      {"ringio_thread_ref", Ref},           {"ringio_thread_wake", Wake},
      {"ringio_thread_counters", Counters}, {"ringio_thread_uid", Uid},
      {"ringio_thread_pin", Pin},           {"ringio_thread_affinity", Affinity},
  };
  for (const auto& f : fns) exports.Set(f.first, Napi::Function::New(env, f.second, f.first, t));
}

}  // namespace ringio
