// Per-message timestamps for one connection at depth 1 (issue #10's 1x1 tail): sends SIZE-byte messages
// one at a time for SECS seconds (after 0.5 s of warm-up) and writes, for every round trip, its send and
// receive times (CLOCK_MONOTONIC, ns, two int64 per message) to OUT. The server side
// (bench/experiments/tail-trace.mjs) stamps the same messages with the same clock, so each slow round trip
// splits into inbound (send -> the server's handler) and outbound (handler -> receive).
// Build: gcc -O2 -o /tmp/ringio-bench-tools/tail-trace bench/experiments/tail-trace.c
// Usage: tail-trace PORT SECS OUT [SIZE]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: tail-trace PORT SECS OUT [SIZE]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double secs = atof(argv[2]);
  size_t size = argc > 4 ? (size_t)atoi(argv[4]) : 64;
  char buf[4096];
  memset(buf, 'x', sizeof buf);
  if (size > sizeof buf) size = sizeof buf;
  size_t cap = (size_t)(secs * 200000) + 1000;
  int64_t *ts = malloc(cap * 2 * sizeof(int64_t));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("connect");
    return 1;
  }
  int64_t start = now(), warm = start + 500000000LL, end = warm + (int64_t)(secs * 1e9);
  size_t n = 0, all = 0;
  for (;;) {
    int64_t t0 = now();
    if (t0 >= end || n >= cap) break;
    if (send(fd, buf, size, 0) != (ssize_t)size) {
      perror("send");
      return 1;
    }
    size_t got = 0;
    while (got < size) {
      ssize_t r = recv(fd, buf, size - got, 0);
      if (r <= 0) {
        perror("recv");
        return 1;
      }
      got += r;
    }
    int64_t t1 = now();
    all++;
    if (t0 >= warm) {
      ts[2 * n] = t0;
      ts[2 * n + 1] = t1;
      n++;
    }
  }
  FILE *f = fopen(argv[3], "wb");
  fwrite(ts, sizeof(int64_t), 2 * n, f);
  fclose(f);
  // The index of the first recorded message among all the connection's messages.
  printf("{\"msgs\":%zu,\"skipped\":%zu}\n", n, all - n);
  return 0;
}
