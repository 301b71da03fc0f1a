// Experiment for docs/design/driver.md (issue #10): does a ring asleep in epoll_wait, the way libuv
// sleeps for ringio, wake as soon as a completion is ready? One single-threaded echo server whose
// loop is shaped like ringio's on io_uring: a ring with a registered eventfd, the eventfd in an epoll
// set, epoll_wait(-1) when nothing is ready, then read the eventfd, enter with GETEVENTS and reap.
// Only the ring's setup flags and the wait change between modes.
//
//   wake-stall SETUP WAIT PORT
//   SETUP: defer      SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL (what ringio used first)
//          defer-tf   the same plus TASKRUN_FLAG
//          coop       COOP_TASKRUN | TASKRUN_FLAG | SUBMIT_ALL
//          coop-si    SINGLE_ISSUER | COOP_TASKRUN | TASKRUN_FLAG | SUBMIT_ALL
//          none       no setup flags
//   WAIT:  efd        epoll_wait on the registered eventfd (libuv's uv_poll on it; ringio's design)
//          ringfd     epoll_wait on the ring fd itself instead (no eventfd registered)
//          enter      io_uring_submit_and_wait(1) (the ring owns the wait, as monoio and the C
//                     reference server do; a runtime inside libuv cannot, it is the control)
//
// Measure with the reference load generator: ../../../shared/bench/echo-run.sh "wake-stall defer efd" 1 64 3
// Build: gcc -O2 -o /tmp/wake-stall wake-stall.c -l:liburing.a
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };
#define MAXC 4096
#define BUFSZ 4096

static struct io_uring ring;
static char bufs[MAXC][BUFSZ];
static int lens[MAXC];

static inline uint64_t ud(int op, int fd) { return ((uint64_t)op << 32) | (unsigned)fd; }

static struct io_uring_sqe* sqe_get(void) {
  struct io_uring_sqe* s = io_uring_get_sqe(&ring);
  if (!s) {
    io_uring_submit(&ring);
    s = io_uring_get_sqe(&ring);
  }
  return s;
}

static void arm_recv(int fd) {
  struct io_uring_sqe* s = sqe_get();
  io_uring_prep_recv(s, fd, bufs[fd], BUFSZ, 0);
  s->user_data = ud(OP_RECV, fd);
}

static void arm_send(int fd, int off) {
  struct io_uring_sqe* s = sqe_get();
  io_uring_prep_send(s, fd, bufs[fd] + off, lens[fd] - off, 0);
  s->user_data = ud(OP_SEND, fd) | ((uint64_t)off << 40);
}

static void arm_accept(int lfd) {
  struct io_uring_sqe* s = sqe_get();
  io_uring_prep_accept(s, lfd, NULL, NULL, 0);
  s->user_data = ud(OP_ACCEPT, lfd);
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: wake-stall defer|defer-tf|coop|coop-si|none efd|ringfd|enter PORT\n");
    return 2;
  }
  const char* setup = argv[1];
  const char* wait = argv[2];
  int port = atoi(argv[3]);
  unsigned flags = 0;
  if (!strcmp(setup, "defer")) flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
  else if (!strcmp(setup, "defer-tf"))
    flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
  else if (!strcmp(setup, "coop")) flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
  else if (!strcmp(setup, "coop-si"))
    flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
  else if (strcmp(setup, "none")) return 2;
  int mode = !strcmp(wait, "efd") ? 0 : !strcmp(wait, "ringfd") ? 1 : 2;

  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = flags;
  int r = io_uring_queue_init_params(256, &ring, &p);
  if (r < 0) {
    fprintf(stderr, "setup: %s\n", strerror(-r));
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int efd = -1;
  if (mode == 0) {
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    io_uring_register_eventfd(&ring, efd);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = efd};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  } else if (mode == 1) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ring.ring_fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, ring.ring_fd, &ev);
  }

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) < 0 || listen(lfd, 1024) < 0) {
    perror("listen");
    return 1;
  }
  arm_accept(lfd);

  for (;;) {
    if (mode == 2) {
      io_uring_submit_and_wait(&ring, 1);
    } else {
      // What ringio's flush does: submit with GETEVENTS, so completions that are already task work run.
      io_uring_submit_and_get_events(&ring);
      if (io_uring_cq_ready(&ring) == 0) {
        struct epoll_event ev;
        int n = epoll_wait(ep, &ev, 1, -1);
        if (n < 0 && errno != EINTR) return 1;
        if (mode == 0) {
          uint64_t v;
          while (read(efd, &v, sizeof v) > 0) {
          }
        }
        io_uring_submit_and_get_events(&ring);
      }
    }
    unsigned head, seen = 0;
    struct io_uring_cqe* c;
    io_uring_for_each_cqe(&ring, head, c) {
      seen++;
      int op = (int)(c->user_data >> 32) & 0xff;
      int fd = (int)(c->user_data & 0xffffffff);
      if (op == OP_ACCEPT) {
        arm_accept(lfd);
        if (c->res >= 0 && c->res < MAXC) {
          setsockopt(c->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          arm_recv(c->res);
        } else if (c->res >= 0) {
          close(c->res);
        }
      } else if (op == OP_RECV) {
        if (c->res <= 0) {
          close(fd);
        } else {
          lens[fd] = c->res;
          arm_send(fd, 0);
        }
      } else {
        int off = (int)(c->user_data >> 40);
        if (c->res <= 0) {
          close(fd);
        } else if (off + c->res < lens[fd]) {
          arm_send(fd, off + c->res);
        } else {
          arm_recv(fd);
        }
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
}
