// Experiment for docs/design/net.md: does an io_uring feature pay off for a small-message echo server
// on this machine? One single-threaded echo server, one switch per feature, measured with the
// reference load generator (../../../shared/bench/echo-run.sh). This is the best case for each
// feature (C, no runtime), so a feature that gains little here cannot pay for the API changes it would
// force on ringio's rented buffers.
//
//   echo-variants MODE PORT
//   MODE: plain     accept, then recv -> send -> recv per connection (one SQE each)
//         fixed     the same with every accepted fd registered (IOSQE_FIXED_FILE, direct descriptors)
//         multishot one multishot recv per connection into a provided buffer ring; send from the ring
//                   buffer, which is recycled when the send completes
//         regbuf    plain, but through registered buffers: READ_FIXED / WRITE_FIXED on the socket
//
// Build: gcc -O2 -o /tmp/echo-variants echo-variants.c -l:liburing.a
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };
#define MAXC 4096
#define BUFSZ 2048
#define NBUFS 4096
#define BGID 7

static struct io_uring ring;
static int mode;  // 0 plain, 1 fixed, 2 multishot
static char bufs[MAXC][BUFSZ];
static char* pool;  // provided buffers for multishot
static struct io_uring_buf_ring* br;

static inline unsigned long long ud(int op, int fd, int bid) {
  return ((unsigned long long)op << 56) | ((unsigned long long)(unsigned)bid << 24) | (unsigned)fd;
}

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
  if (mode == 2) {
    io_uring_prep_recv(s, fd, NULL, 0, 0);
    s->ioprio |= IORING_RECV_MULTISHOT;
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
  } else if (mode == 3) {
    io_uring_prep_read_fixed(s, fd, bufs[fd], BUFSZ, 0, fd);
  } else {
    io_uring_prep_recv(s, fd, bufs[fd], BUFSZ, 0);
    if (mode == 1) s->flags |= IOSQE_FIXED_FILE;
  }
  s->user_data = ud(OP_RECV, fd, 0);
}

static void arm_send(int fd, char* p, int n, int bid) {
  struct io_uring_sqe* s = sqe_get();
  if (mode == 3) {
    io_uring_prep_write_fixed(s, fd, p, n, 0, fd);
  } else {
    io_uring_prep_send(s, fd, p, n, MSG_NOSIGNAL);
  }
  if (mode == 1) s->flags |= IOSQE_FIXED_FILE;
  s->user_data = ud(OP_SEND, fd, bid);
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  mode = !strcmp(argv[1], "fixed") ? 1 : !strcmp(argv[1], "multishot") ? 2 : !strcmp(argv[1], "regbuf") ? 3 : 0;
  int port = atoi(argv[2]);
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (io_uring_queue_init_params(4096, &ring, &p) < 0) return 1;
  if (mode == 1 && io_uring_register_files_sparse(&ring, MAXC) < 0) return 1;
  if (mode == 3) {
    // One registered buffer per possible fd number; buf_index = fd.
    static struct iovec iov[MAXC];
    for (int i = 0; i < MAXC; i++) iov[i] = (struct iovec){bufs[i], BUFSZ};
    if (io_uring_register_buffers(&ring, iov, MAXC) < 0) return 1;
  }
  if (mode == 2) {
    // liburing 2.3 has no io_uring_setup_buf_ring: map and register the ring by hand.
    size_t sz = NBUFS * sizeof(struct io_uring_buf);
    br = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = NBUFS, .bgid = BGID};
    if (io_uring_register_buf_ring(&ring, &reg, 0) < 0) return 1;
    io_uring_buf_ring_init(br);
    pool = malloc((size_t)NBUFS * BUFSZ);
    for (int i = 0; i < NBUFS; i++)
      io_uring_buf_ring_add(br, pool + (size_t)i * BUFSZ, BUFSZ, i, io_uring_buf_ring_mask(NBUFS), i);
    io_uring_buf_ring_advance(br, NBUFS);
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(ls, (struct sockaddr*)&a, sizeof a) < 0 || listen(ls, 1024) < 0) return 1;
  struct io_uring_sqe* s = sqe_get();
  if (mode == 1)
    io_uring_prep_multishot_accept_direct(s, ls, NULL, NULL, 0);
  else
    io_uring_prep_multishot_accept(s, ls, NULL, NULL, 0);
  s->user_data = ud(OP_ACCEPT, ls, 0);
  for (;;) {
    io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe* c;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, c) {
      seen++;
      int op = (int)(c->user_data >> 56);
      int fd = (int)(c->user_data & 0xffffff);
      int bid = (int)((c->user_data >> 24) & 0xffffffff) & 0xffff;
      if (op == OP_ACCEPT) {
        if (c->res >= 0) {
          int nfd = c->res;
          if (mode != 1) setsockopt(nfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          arm_recv(nfd);
        }
      } else if (op == OP_RECV) {
        if (c->res <= 0) {
          if (mode == 1) {
            struct io_uring_sqe* x = sqe_get();
            io_uring_prep_close_direct(x, fd);
            x->user_data = 0;
          } else {
            close(fd);
          }
          continue;
        }
        if (mode == 2) {
          int b = c->flags >> IORING_CQE_BUFFER_SHIFT;
          arm_send(fd, pool + (size_t)b * BUFSZ, c->res, b);
          if (!(c->flags & IORING_CQE_F_MORE)) arm_recv(fd);  // the multishot ended: re-arm
        } else {
          arm_send(fd, bufs[fd], c->res, 0);
        }
      } else if (op == OP_SEND) {
        if (mode == 2) {
          io_uring_buf_ring_add(br, pool + (size_t)bid * BUFSZ, BUFSZ, bid, io_uring_buf_ring_mask(NBUFS), 0);
          io_uring_buf_ring_advance(br, 1);
        } else {
          arm_recv(fd);
        }
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
}
