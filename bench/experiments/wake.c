// Experiment: how should one ringio thread wake another that is asleep in its event loop?
//
// Every ringio thread sleeps in libuv's epoll_wait. Its ring (set up as addon/uring_backend.cc does:
// SINGLE_ISSUER|DEFER_TASKRUN, or COOP_TASKRUN where that is refused) has a registered eventfd that
// epoll watches level-triggered, as uv_poll does. Two candidate doorbells for thread B to wake thread A:
//   (a) eventfd:  A keeps a second eventfd in its epoll set and B write()s 1 to it;
//   (b) MSG_RING: B submits IORING_OP_MSG_RING on its own ring aimed at A's ring, so A's registered
//                 eventfd fires and A reads it, enters for events and reaps the message CQE.
// Two threads ping-pong one token, each blocking in epoll_wait between turns. The program reports the
// round-trip latency, CPU time and syscalls per wake on each side, and a spinning baseline as the floor.
//
// Build: gcc -O2 -Wall -Wextra -o /tmp/wake bench/experiments/wake.c -luring -lpthread
// Run:   /tmp/wake --probe            what the kernel does with MSG_RING and a registered eventfd
//        /tmp/wake [OPTIONS]          the measurement: one line per run, then medians over rounds
//   --n N          timed round trips per run (200000)   --warmup N  untimed round trips first (5000)
//   --rounds R     runs of every (pinning, mode); rounds are interleaved so drift hits all alike (5)
//   --modes LIST   comma-separated modes below, run in this order within a round (all but efd+enter)
//   --pin LIST     on (A on CPU 0, B on CPU 1) and/or off (scheduler's choice): on,off
//   --ring KIND    defer (ringio's first choice) or coop (its fallback): defer
//   --carry K      NOPs that each wake in the +carry modes submits anyway (4)
//   --cpu-split    read the thread CPU clock around every wake call, to split CPU time exactly between
//                  the waker and the woken side (costs two clock_gettime syscalls per wake, so the
//                  latency runs leave it off and use the wake call's median wall time instead)
//
// Modes (what the waker does; what the woken thread does after epoll_wait returns):
//   spin       store to an atomic; the peer busy-waits on it. No sleeping: the floor.
//   efd        (a) write(bell); read(bell).
//   msg-naive  (b) MSG_RING; as ringio's Collect today: read(ring eventfd), enter with GETEVENTS, reap.
//   msg-skip   msg-naive, but the MSG_RING SQE has IOSQE_CQE_SKIP_SUCCESS (no CQE on the sender's ring).
//   msg        msg-skip, but the woken side enters and reaps first and reads its eventfd last, then
//              rechecks IORING_SQ_TASKRUN (see wait_ring for why).
//   efd+carry  (a) after an io_uring_enter that submits K NOPs the thread had to submit anyway.
//   msg+carry  (b) as msg, with the MSG_RING in the same enter as those K NOPs.
//   efd+enter  control: efd, but the woken side also makes the empty GETEVENTS enter that (b) needs.
// The carried NOPs have IOSQE_CQE_SKIP_SUCCESS, so they stand for submitted work without adding CQEs.
// Rings are set up as ringio's, plus IORING_SETUP_TASKRUN_FLAG, which the "msg" protocol relies on.
//
// Output, one line per run: rt_p50/rt_p99 = round trip; cpu/rt = thread CPU time per round trip per thread
// (one wake sent plus one received); waker = median time inside the wake call(s), which never block (with
// --cpu-split: their mean thread CPU time); woken = cpu/rt - waker; w_sys, epoll, read, enter = syscalls
// per wake on the waker's and on the woken side (counted here; `strace -c -f` agrees); spur = wake-ups that
// found nothing; same = share of round trips whose two wakes ran on one CPU; ivcs = involuntary context
// switches per 1000 wakes; others, steal = share of the machine's CPU that other processes used, and that
// the hypervisor stole, while the run lasted (these three say how disturbed a run was: the machine is
// shared); oneway = median time from the waker starting its wake call to the woken thread's epoll_wait
// returning; turn = median time from that return to the start of the reply.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MSG_TAG 0x6d736755ULL  // user_data of the CQE that MSG_RING posts on the target ring
#define SRC_TAG 0x73726355ULL  // user_data of the MSG_RING SQE itself (its CQE lands on the sender's ring)
#define NOP_TAG 0x6e6f7055ULL
enum { EV_RING = 1, EV_BELL = 2 };
enum { RING_DEFER, RING_COOP };

static void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "wake: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static inline uint64_t now_ns(void) {
  // CLOCK_MONOTONIC is answered by the vDSO here (clocksource tsc), so timestamps add no syscalls.
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t thread_cpu_ns(void) {
  // A real syscall (no vDSO for thread clocks): called only twice per thread per run.
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

enum kind { K_SPIN, K_EFD, K_MSG };
struct mode {
  const char* name;
  enum kind kind;
  bool skip_src;   // IOSQE_CQE_SKIP_SUCCESS on the MSG_RING SQE
  bool read_last;  // woken side: enter and reap, then read the eventfd (else read first, as ringio does)
  bool carry;      // the wake shares an enter with --carry NOPs
  bool bell_enter; // control: after reading the doorbell, also enter with GETEVENTS as (b) must
};
static const struct mode kModes[] = {
    {"spin", K_SPIN, false, false, false, false},     {"efd", K_EFD, false, false, false, false},
    {"msg-naive", K_MSG, false, false, false, false}, {"msg-skip", K_MSG, true, false, false, false},
    {"msg", K_MSG, true, true, false, false},         {"efd+carry", K_EFD, false, false, true, false},
    {"msg+carry", K_MSG, true, true, true, false},    {"efd+enter", K_EFD, false, false, false, true},
};
#define NMODES (int)(sizeof kModes / sizeof kModes[0])

struct counts {
  uint64_t epoll, read, write, enter_wake, enter_get, spurious;
};

// One thread's state. Everything is set up by the thread itself: with SINGLE_ISSUER the ring belongs to
// the task that creates it, and DEFER_TASKRUN runs completions only when that task enters.
struct side {
  struct io_uring ring;
  bool have_ring;
  unsigned flags;
  int ring_fd, ring_efd, bell_efd, epfd;
  struct counts c;
  uint64_t cpu_ns;
  uint64_t* wake_ns;   // per timed wake: time spent in the waker's call(s)
  uint64_t* carry_ns;  // per timed wake (efd+carry): of which the enter that carried the NOPs
  uint64_t* rt_ns;     // thread A only: per round trip
  uint64_t* oneway_ns; // per wake received: from the peer starting its wake call to our epoll_wait return
  uint64_t* turn_ns;   // per wake received: from our epoll_wait return to the start of our reply
  uint64_t woke_at;    // when the epoll_wait that delivered the token returned
  uint64_t waker_cpu;  // --cpu-split: thread CPU time spent in timed wake calls
  _Atomic uint64_t sent_at;  // when this side last started a wake call (read by the peer it woke)
  int16_t* cpu_at;     // per timed wake: the CPU the waker ran on (unpinned: did the threads share one?)
  long nivcsw;         // involuntary context switches during the timed part: someone else wanted the CPU
  _Alignas(64) _Atomic uint64_t spin_seq;  // spin mode: the last token this side received
  char pad[64 - sizeof(uint64_t)];
};

struct run {
  const struct mode* m;
  bool pin, cpu_split;
  int ring_kind, carry;
  long n, warmup;
  struct side s[2];
  pthread_barrier_t bar;
};

static unsigned ring_setup_flags(int kind) {
  // The same attempts as UringBackend::Init, plus TASKRUN_FLAG on the DEFER_TASKRUN ring: the "msg"
  // protocol needs IORING_SQ_TASKRUN to see deferred work without a syscall.
  if (kind == RING_DEFER)
    return IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
           IORING_SETUP_SUBMIT_ALL;
  return IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
}

static void setup_side(struct side* S, int ring_kind) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = ring_setup_flags(ring_kind) | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  p.cq_entries = 256;
  int r = io_uring_queue_init_params(64, &S->ring, &p);
  if (r < 0) die("io_uring_queue_init_params(flags %#x): %s", p.flags, strerror(-r));
  S->have_ring = true;
  S->flags = p.flags;
  // ringio registers its ring fd so enters skip the fd lookup; MSG_RING still needs the real fd.
  io_uring_register_ring_fd(&S->ring);
  S->ring_fd = S->ring.ring_fd;
  S->ring_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  S->bell_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  S->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (S->ring_efd < 0 || S->bell_efd < 0 || S->epfd < 0) die("eventfd/epoll_create1: %s", strerror(errno));
  r = io_uring_register_eventfd(&S->ring, S->ring_efd);
  if (r < 0) die("io_uring_register_eventfd: %s", strerror(-r));
  // Level-triggered, as libuv's uv_poll: an eventfd left non-zero keeps waking the loop.
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = EV_RING};
  if (epoll_ctl(S->epfd, EPOLL_CTL_ADD, S->ring_efd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
  ev.data.u32 = EV_BELL;
  if (epoll_ctl(S->epfd, EPOLL_CTL_ADD, S->bell_efd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
}

static void teardown_side(struct side* S) {
  if (!S->have_ring) return;
  io_uring_queue_exit(&S->ring);
  close(S->ring_efd);
  close(S->bell_efd);
  close(S->epfd);
  S->have_ring = false;
}

static inline unsigned kflags(struct side* S) {
  // Order this load after the eventfd read before it (the kernel sets the flag before signalling).
  atomic_thread_fence(memory_order_seq_cst);
  return IO_URING_READ_ONCE(*S->ring.sq.kflags);
}

static void submit(struct side* S) {
  int r = io_uring_submit(&S->ring);
  S->c.enter_wake++;
  if (r < 0) die("io_uring_submit: %s", strerror(-r));
}

static void get_events(struct side* S) {
  int r = io_uring_get_events(&S->ring);
  S->c.enter_get++;
  if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) die("io_uring_get_events: %s", strerror(-r));
}

static void queue_nops(struct side* S, int k) {
  for (int i = 0; i < k; i++) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&S->ring);
    io_uring_prep_nop(sqe);
    sqe->user_data = NOP_TAG;
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  }
}

static int reap(struct side* S) {
  unsigned head, seen = 0;
  int got = 0;
  struct io_uring_cqe* cqe;
  io_uring_for_each_cqe(&S->ring, head, cqe) {
    seen++;
    if (cqe->user_data == MSG_TAG)
      got++;
    else if (cqe->res < 0)
      die("CQE %#llx failed: %s", (unsigned long long)cqe->user_data, strerror(-cqe->res));
  }
  io_uring_cq_advance(&S->ring, seen);
  return got;
}

static long read_efd(struct side* S, int fd) {
  uint64_t v = 0;
  ssize_t r = read(fd, &v, sizeof v);
  S->c.read++;
  if (r < 0 && errno != EAGAIN) die("read(eventfd): %s", strerror(errno));
  return r == sizeof v ? (long)v : 0;
}

// The ring's eventfd was reported readable: find the messages. Returns how many arrived.
static int wait_ring(const struct mode* m, struct side* S) {
  if (!m->read_last) {
    // ringio's Collect: clear the eventfd, enter if the ring may hold deferred work (always, with
    // DEFER_TASKRUN), reap. With DEFER_TASKRUN the eventfd is signalled twice per message: when the
    // message is queued as task work, and again when our own GETEVENTS posts its CQE. The second
    // signal outlives this call, so the next epoll_wait returns at once with nothing to do.
    read_efd(S, S->ring_efd);
    if ((S->flags & IORING_SETUP_DEFER_TASKRUN) || (kflags(S) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
      get_events(S);
    return reap(S);
  }
  // Enter and reap first, clear the eventfd last, so the read also swallows the signal that our own
  // CQE posting raised. That read may also swallow the signal of a message queued after our enter
  // took the task-work list; such a message has set IORING_SQ_TASKRUN before signalling (or, on a
  // COOP ring, has already posted its CQE), so checking both after the read cannot miss it.
  int got = 0;
  bool enter = kflags(S) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);  // with TASKRUN_FLAG, no guessing
  for (;;) {
    if (enter) get_events(S);
    got += reap(S);
    read_efd(S, S->ring_efd);
    enter = kflags(S) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
    if (!enter && io_uring_cq_ready(&S->ring) == 0) return got;
  }
}

// Sleep in epoll_wait until the token arrives.
static void wait_for(struct run* R, struct side* S, uint64_t seq) {
  if (R->m->kind == K_SPIN) {
    while (atomic_load_explicit(&S->spin_seq, memory_order_acquire) != seq) __builtin_ia32_pause();
    return;
  }
  for (;;) {
    struct epoll_event ev[4];
    int n = epoll_wait(S->epfd, ev, 4, -1);
    uint64_t t = now_ns();
    S->c.epoll++;
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait: %s", strerror(errno));
    }
    int got = 0;
    for (int i = 0; i < n; i++) {
      if (ev[i].data.u32 == EV_BELL) {
        got += (int)read_efd(S, S->bell_efd);
        if (R->m->bell_enter) get_events(S);
      } else {
        got += wait_ring(R->m, S);
      }
    }
    if (got > 0) {
      S->woke_at = t;
      return;
    }
    S->c.spurious++;  // woke up for nothing: a wasted epoll_wait plus whatever the handler did
  }
}

static void wake(struct run* R, struct side* S, struct side* P, uint64_t seq, long k) {
  const struct mode* m = R->m;
  uint64_t c0 = R->cpu_split && k >= 0 ? thread_cpu_ns() : 0;
  uint64_t t0 = now_ns(), t1 = t0;
  atomic_store_explicit(&S->sent_at, t0, memory_order_relaxed);  // the wake itself orders this store
  if (m->kind == K_SPIN) {
    atomic_store_explicit(&P->spin_seq, seq, memory_order_release);
  } else if (m->kind == K_EFD) {
    if (m->carry) {
      queue_nops(S, R->carry);
      submit(S);
      t1 = now_ns();
    }
    uint64_t one = 1;
    if (write(P->bell_efd, &one, sizeof one) != sizeof one) die("write(eventfd): %s", strerror(errno));
    S->c.write++;
  } else {
    if (m->carry) queue_nops(S, R->carry);
    struct io_uring_sqe* sqe = io_uring_get_sqe(&S->ring);
    io_uring_prep_msg_ring(sqe, P->ring_fd, 0, MSG_TAG, 0);
    sqe->user_data = SRC_TAG;
    if (m->skip_src) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    submit(S);
  }
  if (k >= 0) {
    S->wake_ns[k] = now_ns() - t0;
    if (S->carry_ns) S->carry_ns[k] = t1 - t0;
    S->cpu_at[k] = (int16_t)sched_getcpu();  // glibc reads it from rseq: no syscall
    if (R->cpu_split) S->waker_cpu += thread_cpu_ns() - c0;
  }
}

static void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= 0) {
    CPU_SET(cpu, &set);
  } else {
    for (int i = 0; i < CPU_SETSIZE; i++) CPU_SET(i, &set);  // undo any inherited mask
  }
  if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0 && cpu >= 0) die("cannot pin to CPU %d", cpu);
}

struct thread_arg {
  struct run* R;
  int idx;
};

static void* side_main(void* p) {
  struct thread_arg* a = p;
  struct run* R = a->R;
  struct side* S = &R->s[a->idx];
  struct side* P = &R->s[1 - a->idx];
  pin_to(R->pin ? a->idx : -1);
  if (R->m->kind != K_SPIN) setup_side(S, R->ring_kind);
  pthread_barrier_wait(&R->bar);  // both rings and doorbells exist before anyone aims at them
  long total = R->warmup + R->n;
  uint64_t cpu0 = 0;
  struct rusage ru0, ru1;
  memset(&ru0, 0, sizeof ru0);
  for (long i = 0; i < total; i++) {
    long k = i - R->warmup;  // index of the timed sample, negative during warm-up
    if (k == 0) {
      memset(&S->c, 0, sizeof S->c);
      cpu0 = thread_cpu_ns();
      getrusage(RUSAGE_THREAD, &ru0);
    }
    uint64_t seq = (uint64_t)i + 1;
    if (a->idx == 0) {
      uint64_t t0 = now_ns();
      wake(R, S, P, seq, k);
      wait_for(R, S, seq);
      uint64_t t1 = now_ns();
      if (k >= 0) {
        S->rt_ns[k] = t1 - t0;
        S->oneway_ns[k] = S->woke_at - atomic_load_explicit(&P->sent_at, memory_order_relaxed);
        S->turn_ns[k] = t1 - S->woke_at;  // A's handling up to where its next round trip starts
      }
    } else {
      wait_for(R, S, seq);
      uint64_t t1 = now_ns();
      if (k >= 0) {
        S->oneway_ns[k] = S->woke_at - atomic_load_explicit(&P->sent_at, memory_order_relaxed);
        S->turn_ns[k] = t1 - S->woke_at;
      }
      wake(R, S, P, seq, k);
    }
  }
  S->cpu_ns = thread_cpu_ns() - cpu0;
  getrusage(RUSAGE_THREAD, &ru1);
  S->nivcsw = ru1.ru_nivcsw - ru0.ru_nivcsw;
  pthread_barrier_wait(&R->bar);  // the peer may aim at our ring until it is done
  teardown_side(S);
  return NULL;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static double pct(uint64_t* v, long n, double q) {
  qsort(v, (size_t)n, sizeof *v, cmp_u64);
  long i = (long)(q * (double)(n - 1) + 0.5);
  return (double)v[i];
}

struct result {
  double rt50, rt99;  // round trip, ns
  double cpu;         // CPU per round trip per thread (= per wake sent plus per wake received), ns
  double waker;       // median time in the wake call, ns (it never blocks, so this is CPU time)
  double carry;       // efd+carry: median time in the enter that carried the NOPs, ns
  double woken;       // cpu - waker: receiving a wake, including going to sleep and waking up
  double sys_waker;   // syscalls per wake on the waker's side
  double sys_epoll, sys_read, sys_get, spurious;  // per wake on the woken side
  // How the run was disturbed (the machine is shared): fraction of round trips whose two wakes ran on
  // the same CPU, involuntary context switches per 1000 wakes, and the share of the machine's CPU that
  // other processes used and that the hypervisor stole while the run lasted.
  double same, ivcs, others, steal;
  double oneway, turn;  // median one-way wake latency and median handling time after waking, ns
};

struct cpustat {
  unsigned long long busy, steal, total;
};

static struct cpustat read_cpustat(void) {
  struct cpustat c = {0, 0, 0};
  unsigned long long v[10] = {0};
  FILE* f = fopen("/proc/stat", "r");
  if (f) {
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7]) == 8) {
      c.busy = v[0] + v[1] + v[2] + v[5] + v[6];
      c.steal = v[7];
      c.total = c.busy + v[3] + v[4] + v[7];
    }
    fclose(f);
  }
  return c;
}

static double self_cpu_ticks(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double s = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
             ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
  return s * (double)sysconf(_SC_CLK_TCK);
}

static struct result run_one(const struct mode* m, bool pin, bool cpu_split, int ring_kind, long n, long warmup,
                             int carry) {
  struct run* R = aligned_alloc(64, (sizeof(struct run) + 63) / 64 * 64);
  memset(R, 0, sizeof *R);
  R->m = m;
  R->pin = pin;
  R->cpu_split = cpu_split;
  R->ring_kind = ring_kind;
  R->carry = carry;
  R->n = n;
  R->warmup = warmup;
  for (int i = 0; i < 2; i++) {
    R->s[i].wake_ns = calloc((size_t)n, sizeof(uint64_t));
    R->s[i].cpu_at = calloc((size_t)n, sizeof(int16_t));
    R->s[i].oneway_ns = calloc((size_t)n, sizeof(uint64_t));
    R->s[i].turn_ns = calloc((size_t)n, sizeof(uint64_t));
    if (m->carry && m->kind == K_EFD) R->s[i].carry_ns = calloc((size_t)n, sizeof(uint64_t));
  }
  R->s[0].rt_ns = calloc((size_t)n, sizeof(uint64_t));
  pthread_barrier_init(&R->bar, NULL, 2);
  struct result res;
  memset(&res, 0, sizeof res);
  struct cpustat st0 = read_cpustat();
  double self0 = self_cpu_ticks();
  pthread_t t[2];
  struct thread_arg args[2] = {{R, 0}, {R, 1}};
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, side_main, &args[i]);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  struct cpustat st1 = read_cpustat();
  double self = self_cpu_ticks() - self0;
  double total = (double)(st1.total - st0.total);
  if (total > 0) {
    res.others = ((double)(st1.busy - st0.busy) - self) / total;
    if (res.others < 0) res.others = 0;
    res.steal = (double)(st1.steal - st0.steal) / total;
  }

  res.rt50 = pct(R->s[0].rt_ns, n, 0.50);
  res.rt99 = pct(R->s[0].rt_ns, n, 0.99);
  long same = 0;
  for (long k = 0; k < n; k++) same += R->s[0].cpu_at[k] == R->s[1].cpu_at[k];
  res.same = (double)same / (double)n;
  for (int i = 0; i < 2; i++) {
    struct side* S = &R->s[i];
    double w = (double)n;
    res.cpu += (double)S->cpu_ns / w / 2;
    // Wall time of a call that never blocks is its CPU time, except when the thread is preempted in it,
    // so without --cpu-split the median stands in for it.
    res.waker += (cpu_split ? (double)S->waker_cpu / w : pct(S->wake_ns, n, 0.50)) / 2;
    if (S->carry_ns) res.carry += pct(S->carry_ns, n, 0.50) / 2;
    res.sys_waker += (double)(S->c.write + S->c.enter_wake) / w / 2;
    res.sys_epoll += (double)S->c.epoll / w / 2;
    res.sys_read += (double)S->c.read / w / 2;
    res.sys_get += (double)S->c.enter_get / w / 2;
    res.spurious += (double)S->c.spurious / w / 2;
    res.ivcs += (double)S->nivcsw * 1000 / w / 2;
    if (m->kind != K_SPIN) {
      res.oneway += pct(S->oneway_ns, n, 0.50) / 2;
      res.turn += pct(S->turn_ns, n, 0.50) / 2;
    }
    free(S->oneway_ns);
    free(S->turn_ns);
    free(S->wake_ns);
    free(S->carry_ns);
    free(S->cpu_at);
  }
  res.woken = res.cpu - res.waker;
  free(R->s[0].rt_ns);
  pthread_barrier_destroy(&R->bar);
  free(R);
  return res;
}

static double median(double* v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ---------------------------------------------------------------------------------------------------
// --probe: single steps that show when the target's eventfd is signalled and when its CQE is visible.
// Thread A (main) owns ring A; a helper thread B owns ring B and sends MSG_RINGs on request.

struct probe {
  int ring_kind;
  struct side a, b;
  sem_t go, done;
  int cmd_count;    // MSG_RINGs B sends, each in its own submit; 0 tells B to exit
  bool cmd_skip;    // with IOSQE_CQE_SKIP_SUCCESS
  int cmd_delay_ms;
  long b_efd;       // B's own eventfd count after its sends
  unsigned b_cqes;  // CQEs on B's own ring after its sends
  bool ready;
};

static long efd_take(int fd) {
  // Readable right now? Then return (and clear) its count; otherwise 0.
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, 0) != 1) return 0;
  uint64_t v = 0;
  return read(fd, &v, sizeof v) == sizeof v ? (long)v : 0;
}

static void* probe_b(void* arg) {
  struct probe* P = arg;
  setup_side(&P->b, P->ring_kind);
  P->ready = true;
  sem_post(&P->done);
  for (;;) {
    sem_wait(&P->go);
    if (P->cmd_count == 0) break;
    if (P->cmd_delay_ms) usleep((useconds_t)P->cmd_delay_ms * 1000);
    for (int i = 0; i < P->cmd_count; i++) {
      struct io_uring_sqe* sqe = io_uring_get_sqe(&P->b.ring);
      io_uring_prep_msg_ring(sqe, P->a.ring_fd, 7, MSG_TAG, 0);
      sqe->user_data = SRC_TAG;
      if (P->cmd_skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
      io_uring_submit(&P->b.ring);
    }
    P->b_efd = efd_take(P->b.ring_efd);
    P->b_cqes = io_uring_cq_ready(&P->b.ring);
    reap(&P->b);
    sem_post(&P->done);
  }
  teardown_side(&P->b);
  return NULL;
}

static void probe_send(struct probe* P, int count, bool skip, int delay_ms) {
  P->cmd_count = count;
  P->cmd_skip = skip;
  P->cmd_delay_ms = delay_ms;
  sem_post(&P->go);
  if (delay_ms == 0) sem_wait(&P->done);
}

static const char* yesno(bool b) { return b ? "yes" : "no"; }

static void probe_kind(int ring_kind) {
  struct probe* P = calloc(1, sizeof *P);
  P->ring_kind = ring_kind;
  sem_init(&P->go, 0, 0);
  sem_init(&P->done, 0, 0);
  setup_side(&P->a, ring_kind);
  pthread_t tb;
  pthread_create(&tb, NULL, probe_b, P);
  sem_wait(&P->done);
  struct side* A = &P->a;
  printf("== ring setup flags %#x (%s) ==\n", A->flags,
         ring_kind == RING_DEFER ? "SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL"
                                 : "COOP_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL");

  probe_send(P, 1, false, 0);
  printf("1. B sent one MSG_RING; A has not entered the kernel since.\n");
  long e = efd_take(A->ring_efd);
  printf("   A's eventfd readable: %s (count %ld)\n", yesno(e > 0), e);
  printf("   A's CQEs visible without entering: %u; IORING_SQ_TASKRUN set: %s\n", io_uring_cq_ready(&A->ring),
         yesno(kflags(A) & IORING_SQ_TASKRUN));
  usleep(20000);
  printf("   20 ms later, A's CQEs visible: %u\n", io_uring_cq_ready(&A->ring));
  printf("   B's own ring: CQEs %u (the MSG_RING's own completion), B's eventfd count %ld\n", P->b_cqes, P->b_efd);
  io_uring_get_events(&A->ring);
  unsigned ready = io_uring_cq_ready(&A->ring);
  struct io_uring_cqe* cqe = NULL;
  io_uring_peek_cqe(&A->ring, &cqe);
  printf("2. A entered with GETEVENTS: CQEs %u", ready);
  if (cqe) printf(" (user_data %#llx res %d)", (unsigned long long)cqe->user_data, cqe->res);
  printf("; IORING_SQ_TASKRUN set: %s\n", yesno(kflags(A) & IORING_SQ_TASKRUN));
  reap(A);
  e = efd_take(A->ring_efd);
  printf("   A's eventfd readable again after that enter: %s (count %ld)\n", yesno(e > 0), e);

  probe_send(P, 1, true, 0);
  e = efd_take(A->ring_efd);
  printf("3. B sent one MSG_RING with IOSQE_CQE_SKIP_SUCCESS: B's own CQEs %u, B's eventfd count %ld; "
         "A's eventfd count %ld\n",
         P->b_cqes, P->b_efd, e);
  io_uring_get_events(&A->ring);
  reap(A);
  efd_take(A->ring_efd);

  probe_send(P, 3, true, 0);
  e = efd_take(A->ring_efd);
  printf("4. B sent three MSG_RINGs (three enters) before A entered: A's eventfd count %ld, ", e);
  io_uring_get_events(&A->ring);
  printf("then after one GETEVENTS: CQEs %u, ", io_uring_cq_ready(&A->ring));
  reap(A);
  e = efd_take(A->ring_efd);
  printf("eventfd count %ld\n", e);

  for (int skip = 0; skip < 2; skip++) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&A->ring);
    io_uring_prep_nop(sqe);
    sqe->user_data = NOP_TAG;
    if (skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_submit(&A->ring);
    unsigned c = io_uring_cq_ready(&A->ring);
    reap(A);
    e = efd_take(A->ring_efd);
    printf("5%c. A submitted a NOP%s itself: CQEs %u, A's eventfd count %ld\n", skip ? 'b' : 'a',
           skip ? " with IOSQE_CQE_SKIP_SUCCESS" : "", c, e);
  }

  // Does the message wake A out of epoll_wait? B sends 50 ms after being asked.
  uint64_t t0 = now_ns();
  probe_send(P, 1, true, 50);
  struct epoll_event ev;
  int n = epoll_wait(A->epfd, &ev, 1, 2000);
  uint64_t slept = now_ns() - t0;
  sem_wait(&P->done);
  printf("6. A blocked in epoll_wait(2 s); B sent after 50 ms: epoll_wait returned %d after %.1f ms (%s)\n", n,
         (double)slept / 1e6, n == 1 && ev.data.u32 == EV_RING ? "ring eventfd" : "other");
  efd_take(A->ring_efd);
  io_uring_get_events(&A->ring);
  reap(A);
  efd_take(A->ring_efd);

  // Not a message at all: an ordinary op that completes while its thread is out of the kernel. A READ on
  // an empty (blocking) pipe parks on the pipe's wait queue; the write below completes it.
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) die("pipe2: %s", strerror(errno));
  char buf[8];
  struct io_uring_sqe* sqe = io_uring_get_sqe(&A->ring);
  io_uring_prep_read(sqe, pfd[0], buf, sizeof buf, 0);
  sqe->user_data = NOP_TAG;
  io_uring_submit(&A->ring);
  efd_take(A->ring_efd);
  if (write(pfd[1], "x", 1) != 1) die("write(pipe): %s", strerror(errno));
  e = efd_take(A->ring_efd);
  printf("7. A's READ on a pipe completed while A was out of the kernel: A's eventfd count %ld, CQEs %u; ", e,
         io_uring_cq_ready(&A->ring));
  io_uring_get_events(&A->ring);
  printf("after GETEVENTS: CQEs %u, ", io_uring_cq_ready(&A->ring));
  reap(A);
  printf("eventfd count %ld\n", efd_take(A->ring_efd));
  close(pfd[0]);
  close(pfd[1]);

  P->cmd_count = 0;
  sem_post(&P->go);
  pthread_join(tb, NULL);
  teardown_side(A);
  free(P);
}

// ---------------------------------------------------------------------------------------------------

int main(int argc, char** argv) {
  long n = 200000, warmup = 5000;
  int rounds = 5, carry = 4, ring_kind = RING_DEFER;
  bool cpu_split = false;
  int order[NMODES], norder = 0;  // modes to run, in the order given
  for (int i = 0; i < NMODES; i++)
    if (!kModes[i].bell_enter) order[norder++] = i;
  bool pins[2] = {true, true};  // [0] on, [1] off
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--probe")) {
      probe_kind(RING_DEFER);
      probe_kind(RING_COOP);
      return 0;
    } else if (!strcmp(a, "--cpu-split")) {
      cpu_split = true;
    } else if (!strcmp(a, "--n") && v) {
      n = atol(v), i++;
    } else if (!strcmp(a, "--warmup") && v) {
      warmup = atol(v), i++;
    } else if (!strcmp(a, "--rounds") && v) {
      rounds = atoi(v), i++;
    } else if (!strcmp(a, "--carry") && v) {
      carry = atoi(v), i++;
    } else if (!strcmp(a, "--ring") && v) {
      ring_kind = !strcmp(v, "coop") ? RING_COOP : RING_DEFER, i++;
    } else if (!strcmp(a, "--pin") && v) {
      pins[0] = strstr(v, "on") != NULL;
      pins[1] = strstr(v, "off") != NULL;
      i++;
    } else if (!strcmp(a, "--modes") && v) {
      norder = 0;
      char* list = strdup(v);
      for (char* tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int j = 0;
        while (j < NMODES && strcmp(kModes[j].name, tok)) j++;
        if (j == NMODES) die("unknown mode %s", tok);
        if (norder == NMODES) die("too many modes");
        order[norder++] = j;
      }
      free(list);
      i++;
    } else {
      die("unknown argument %s (see the comment at the top of wake.c)", a);
    }
  }
  if (n < 1 || rounds < 1 || carry < 0 || carry > 32) die("bad --n, --rounds or --carry");

  static struct result all[2][NMODES][64];
  if (rounds > 64) rounds = 64;
  printf("# ring=%s n=%ld warmup=%ld rounds=%d carry=%d; times in microseconds, counts per wake; waker = %s\n",
         ring_kind == RING_DEFER ? "defer" : "coop", n, warmup, rounds, carry,
         cpu_split ? "mean thread CPU time of the wake call" : "median wall time of the wake call");
  printf("%-5s %-4s %-10s %8s %8s %8s %8s %8s %5s %5s %5s %5s %6s %5s %6s %6s %6s %7s %7s\n", "round", "pin",
         "mode", "rt_p50", "rt_p99", "cpu/rt", "waker", "woken", "w_sys", "epoll", "read", "enter", "spur", "same",
         "ivcs", "others", "steal", "oneway", "turn");
  for (int r = 0; r < rounds; r++)
    for (int p = 0; p < 2; p++) {
      if (!pins[p]) continue;
      for (int oi = 0; oi < norder; oi++) {
        int mi = order[oi];
        struct result x = run_one(&kModes[mi], p == 0, cpu_split, ring_kind, n, warmup, carry);
        all[p][mi][r] = x;
        printf("%-5d %-4s %-10s %8.2f %8.2f %8.2f %8.3f %8.2f %5.2f %5.2f %5.2f %5.2f %6.3f %5.2f %6.2f %5.1f%% "
               "%5.1f%% %7.2f %7.2f\n",
               r, p == 0 ? "on" : "off", kModes[mi].name, x.rt50 / 1e3, x.rt99 / 1e3, x.cpu / 1e3, x.waker / 1e3,
               x.woken / 1e3, x.sys_waker, x.sys_epoll, x.sys_read, x.sys_get, x.spurious, x.same, x.ivcs,
               x.others * 100, x.steal * 100, x.oneway / 1e3, x.turn / 1e3);
        fflush(stdout);
      }
    }

  printf("\n# medians over %d rounds (us; syscalls per wake; woken = cpu/rt - waker)\n\n", rounds);
  printf("| pin | mode | RT p50 | RT p99 | CPU per RT per thread | waker | woken | waker syscalls | "
         "woken syscalls (epoll_wait + read + enter) | spurious wakes | same CPU | one-way | turn |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int p = 0; p < 2; p++) {
    if (!pins[p]) continue;
    for (int oi = 0; oi < norder; oi++) {
      int mi = order[oi];
      double v[14][64];
      for (int r = 0; r < rounds; r++) {
        struct result* x = &all[p][mi][r];
        double f[14] = {x->rt50,     x->rt99,     x->cpu,      x->waker,    x->woken,
                        x->sys_waker, x->sys_epoll, x->sys_read, x->sys_get,  x->spurious,
                        x->carry,     x->same,      x->oneway,   x->turn};
        for (int k = 0; k < 14; k++) v[k][r] = f[k];
      }
      double md[14];
      for (int k = 0; k < 14; k++) md[k] = median(v[k], rounds);
      printf("| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f + %.2f + %.2f | %.3f | %.2f | %.2f | %.2f |\n",
             p == 0 ? "on" : "off", kModes[mi].name, md[0] / 1e3, md[1] / 1e3, md[2] / 1e3, md[3] / 1e3,
             md[4] / 1e3, md[5], md[6], md[7], md[8], md[9], md[11], md[12] / 1e3, md[13] / 1e3);
      if (kModes[mi].carry && kModes[mi].kind == K_EFD)
        printf("|  | (efd+carry: the carrying enter alone %.2f, the write after it %.2f) ||||||||||||\n", md[10] / 1e3,
               (md[3] - md[10]) / 1e3);
    }
  }
  return 0;
}
