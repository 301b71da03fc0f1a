// Tail census for one connection at depth 1: sends SIZE-byte messages one at a time for SECS seconds and
// prints, as one JSON line, the message count, p50/p99/p999 at 1 us resolution, and how many round trips
// took longer than 50, 100, 200 and 500 us. Used by bench/experiments/tail-vs-gc.mjs to tell whether
// the slow round trips of a Node server are as many as its scavenges (docs/design/net.md).
// Build: gcc -O2 -o /tmp/ringio-bench-tools/tail-count bench/experiments/tail-count.c
// Usage: tail-count PORT SECS [SIZE]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXUS 100000
static unsigned long hist[MAXUS + 1];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: tail-count PORT SECS [SIZE]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double secs = atof(argv[2]);
  size_t size = argc > 3 ? (size_t)atoi(argv[3]) : 64;
  char buf[65536];
  memset(buf, 'x', sizeof buf);
  if (size > sizeof buf) size = sizeof buf;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("connect");
    return 1;
  }
  double start = now(), warm = start + 0.5, end = warm + secs;
  unsigned long n = 0, over[4] = {0};
  const int lim[4] = {50, 100, 200, 500};
  for (;;) {
    double s = now();
    if (s >= end) break;
    if (write(fd, buf, size) != (ssize_t)size) {
      perror("write");
      return 1;
    }
    size_t got = 0;
    while (got < size) {
      ssize_t r = read(fd, buf + got, size - got);
      if (r <= 0) {
        fprintf(stderr, "connection closed\n");
        return 1;
      }
      got += (size_t)r;
    }
    double t = now();
    if (s < warm) continue;
    long us = (long)((t - s) * 1e6);
    if (us > MAXUS) us = MAXUS;
    hist[us]++;
    n++;
    for (int i = 0; i < 4; i++)
      if (us > lim[i]) over[i]++;
  }
  unsigned long acc = 0;
  long p50 = -1, p99 = -1, p999 = -1;
  for (long b = 0; b <= MAXUS; b++) {
    acc += hist[b];
    if (p50 < 0 && acc >= n * 0.5) p50 = b;
    if (p99 < 0 && acc >= n * 0.99) p99 = b;
    if (p999 < 0 && acc >= n * 0.999) p999 = b;
  }
  printf("{\"msgs\":%lu,\"msgs_per_s\":%.0f,\"p50_us\":%ld,\"p99_us\":%ld,\"p999_us\":%ld,"
         "\"over50\":%lu,\"over100\":%lu,\"over200\":%lu,\"over500\":%lu}\n",
         n, n / secs, p50, p99, p999, over[0], over[1], over[2], over[3]);
  close(fd);
  return 0;
}
