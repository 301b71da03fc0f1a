// Does io_uring's READ_FIXED (registered buffers) or a registered file (IOSQE_FIXED_FILE) make random
// 4 KiB page-cache reads cheaper? The same loop as ../shared/bench/fileread_uring.c (QD reads in flight,
// DEFER_TASKRUN, one page-aligned buffer region), with the variant picked by argv[4]:
//   plain  IORING_OP_READ into the region (the reference's loop)
//   fixed  IORING_OP_READ_FIXED, the region registered as one buffer (io_uring_register_buffers)
//   file   IORING_OP_READ with the fd registered (IOSQE_FIXED_FILE)
//   both   READ_FIXED on a registered fd
// Prints {"variant","qd","ops","secs","cpu_s","ops_per_s","ops_per_cpu_s"}; cpu_s from getrusage.
// Build: cc -O2 -o /tmp/fileread-fixed bench/experiments/fileread-fixed.c -luring
// Run:   bench/experiments/fileread-fixed.sh (interleaved rounds, medians).
#define _GNU_SOURCE
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s file qd secs plain|fixed|file|both\n", argv[0]);
    return 2;
  }
  const char* path = argv[1];
  int qd = atoi(argv[2]);
  double secs = atof(argv[3]);
  const char* v = argv[4];
  int fixed = !strcmp(v, "fixed") || !strcmp(v, "both");
  int regfile = !strcmp(v, "file") || !strcmp(v, "both");
  const int bs = 4096;
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    perror("open");
    return 1;
  }
  struct stat st;
  fstat(fd, &st);
  long blocks = st.st_size / bs;
  struct io_uring ring;
  struct io_uring_params p = {0};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (io_uring_queue_init_params(qd * 2, &ring, &p) < 0) {
    perror("ring");
    return 1;
  }
  char* bufs = aligned_alloc(4096, (size_t)qd * bs);
  memset(bufs, 0, (size_t)qd * bs);
  if (fixed) {
    struct iovec iov = {bufs, (size_t)qd * bs};
    int r = io_uring_register_buffers(&ring, &iov, 1);
    if (r < 0) {
      fprintf(stderr, "register_buffers: %s\n", strerror(-r));
      return 1;
    }
  }
  int target = fd;
  if (regfile) {
    int r = io_uring_register_files(&ring, &fd, 1);
    if (r < 0) {
      fprintf(stderr, "register_files: %s\n", strerror(-r));
      return 1;
    }
    target = 0;
  }
  srand(1);
#define PREP(i)                                                                                   \
  do {                                                                                            \
    struct io_uring_sqe* s = io_uring_get_sqe(&ring);                                             \
    off_t off = (rand() % blocks) * (off_t)bs;                                                    \
    if (fixed) io_uring_prep_read_fixed(s, target, bufs + (size_t)(i) * bs, bs, off, 0);          \
    else io_uring_prep_read(s, target, bufs + (size_t)(i) * bs, bs, off);                         \
    if (regfile) s->flags |= IOSQE_FIXED_FILE;                                                    \
    s->user_data = (i);                                                                           \
  } while (0)
  for (int i = 0; i < qd; i++) PREP(i);
  unsigned long done = 0;
  double t0 = now(), c0 = cpu(), end = t0 + secs;
  while (now() < end) {
    io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe* c;
    unsigned h, n = 0;
    io_uring_for_each_cqe(&ring, h, c) {
      if (c->res != bs) {
        fprintf(stderr, "read: %d\n", c->res);
        return 1;
      }
      n++;
      done++;
      PREP((int)c->user_data);
    }
    io_uring_cq_advance(&ring, n);
  }
  double s = now() - t0, cs = cpu() - c0;
  printf("{\"variant\":\"%s\",\"qd\":%d,\"ops\":%lu,\"secs\":%.3f,\"cpu_s\":%.3f,\"ops_per_s\":%.0f,\"ops_per_cpu_s\":%.0f}\n", v, qd,
         done, s, cs, done / s, done / cs);
  return 0;
}
