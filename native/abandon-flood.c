/*
 * abandon-flood: the load of the abandon-flood benchmark and kernel test (issue 17, "Bad input").
 * One small epoll program so that 20,000 connections/s fit on a shared 2-core machine.
 *
 *   serve PORT MBIT          a source server on 127.0.0.1:PORT: a connection that sends a byte
 *                            gets a stream paced at MBIT Mbit/s (10 ms ticks); one that sends
 *                            nothing is held until its peer closes (what an abandoned one does)
 *   est HOST PORT N SECONDS  N established sessions: connect, send 'G', read for SECONDS;
 *                            prints {"ready":ms} once every session carries bytes, then
 *                            {"bucketMs":100,"start":ms,"bytes":[...],"per":[...]}
 *   flood HOST PORT RATE MS MODE SRC NSRC
 *                            open-loop: RATE connects/s for MS ms, from NSRC source addresses
 *                            counted up from SRC; MODE rst (connect, then close with RST),
 *                            fin (connect, then close), idle:HOLDMS (connect, send nothing, close
 *                            after HOLDMS); prints what happened as JSON
 *   none MS                  the flood's stand-in for the runs without one: sleeps, same output
 * Times are CLOCK_MONOTONIC ms (one clock for every process and namespace of the machine).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int max_fds(void) {
  struct rlimit r;
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
  return (int)r.rlim_cur;
}

static void die(const char *what) {
  fprintf(stderr, "abandon-flood: %s: %s\n", what, strerror(errno));
  exit(1);
}

static struct sockaddr_in addr_of(const char *host, int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    fprintf(stderr, "abandon-flood: not an IPv4 address: %s\n", host);
    exit(2);
  }
  return a;
}

static char chunk[65536];

/* ───────────────────────── serve ───────────────────────── */
enum { IDLE = 1, STREAM = 2 };

static int serve(int port, double mbit) {
  int n = max_fds();
  unsigned char *st = calloc((size_t)n, 1);
  double *owed = calloc((size_t)n, sizeof(double));
  memset(chunk, 'x', sizeof chunk);
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = addr_of("127.0.0.1", port);
  if (bind(l, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(l, 65535) < 0) die("listen");
  int ep = epoll_create1(0);
  int tf = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec its = {{0, 10000000}, {0, 10000000}};
  timerfd_settime(tf, 0, &its, NULL);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  ev.data.fd = tf;
  epoll_ctl(ep, EPOLL_CTL_ADD, tf, &ev);
  printf("{\"listening\":%d}\n", port);
  fflush(stdout);
  double per_tick = mbit * 1e6 / 8 / 100;
  struct epoll_event evs[256];
  char rb[4096];
  for (;;) {
    int k = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < k; i++) {
      int fd = evs[i].data.fd;
      if (fd == l) {
        int c;
        while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (c >= n) {
            close(c);
            continue;
          }
          st[c] = IDLE;
          owed[c] = 0;
          struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
      } else if (fd == tf) {
        uint64_t ticks;
        if (read(tf, &ticks, sizeof ticks) < 0) continue;
        for (int c = 0; c < n; c++) {
          if (st[c] != STREAM) continue;
          owed[c] += per_tick * (double)ticks;
          if (owed[c] > per_tick * 100) owed[c] = per_tick * 100; /* at most 1 s owed */
          while (owed[c] >= 1) {
            size_t want = owed[c] > sizeof chunk ? sizeof chunk : (size_t)owed[c];
            ssize_t w = send(c, chunk, want, MSG_NOSIGNAL);
            if (w <= 0) break;
            owed[c] -= (double)w;
          }
        }
      } else {
        ssize_t r = recv(fd, rb, sizeof rb, 0);
        if (r > 0) {
          st[fd] = STREAM;
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          st[fd] = 0;
          close(fd);
        }
      }
    }
  }
  return 0;
}

/* ───────────────────────── est ───────────────────────── */
static int est(const char *host, int port, int nsess, double seconds) {
  struct sockaddr_in a = addr_of(host, port);
  int *fds = calloc((size_t)nsess, sizeof(int));
  long long *per = calloc((size_t)nsess, sizeof(long long));
  int ep = epoll_create1(0);
  for (int i = 0; i < nsess; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fds[i], (struct sockaddr *)&a, sizeof a) < 0) die("est connect");
    if (send(fds[i], "G", 1, MSG_NOSIGNAL) != 1) die("est send");
    fcntl(fds[i], F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
  }
  int nb = (int)(seconds * 10) + 2;
  long long *bytes = calloc((size_t)nb, sizeof(long long));
  double start = -1, end = 0;
  int live = nsess, started = 0, closed = 0;
  struct epoll_event evs[64];
  for (;;) {
    double t = now_ms();
    if (start >= 0 && t >= end) break;
    int k = epoll_wait(ep, evs, 64, 20);
    for (int i = 0; i < k; i++) {
      int s = (int)evs[i].data.u32;
      for (;;) {
        ssize_t r = recv(fds[s], chunk, sizeof chunk, 0);
        if (r > 0) {
          if (per[s] == 0) started++;
          per[s] += r;
          if (start >= 0) {
            int b = (int)((now_ms() - start) / 100);
            if (b >= 0 && b < nb) bytes[b] += r;
          }
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          epoll_ctl(ep, EPOLL_CTL_DEL, fds[s], NULL);
          live--;
          closed++;
        }
        break;
      }
    }
    if (start < 0 && started == nsess) {
      start = now_ms();
      end = start + seconds * 1000;
      printf("{\"ready\":%.1f}\n", start);
      fflush(stdout);
    }
    if (live == 0) break;
  }
  printf("{\"bucketMs\":100,\"start\":%.1f,\"closed\":%d,\"bytes\":[", start, closed);
  for (int b = 0; b < nb; b++) printf("%s%lld", b ? "," : "", bytes[b]);
  printf("],\"per\":[");
  for (int i = 0; i < nsess; i++) printf("%s%lld", i ? "," : "", per[i]);
  printf("]}\n");
  return 0;
}

/* ───────────────────────── flood ───────────────────────── */
struct pend {
  double at;    /* when to close an idle one (ms); 0 = still connecting */
  double since; /* when its connect() was issued (ms) */
};

/* A connect that has not completed in this long is given up (closed): a SYN the full accept
 * queue dropped would otherwise hold the flooder's descriptor through its SYN retransmissions
 * and cap the offered rate at the flooder's open-file limit. */
#define CONNECT_GIVEUP_MS 250

static int flood(const char *host, int port, double rate, double ms, const char *mode, const char *src, int nsrc) {
  int n = max_fds();
  struct sockaddr_in dst = addr_of(host, port);
  struct sockaddr_in s0 = addr_of(src, 0);
  int rst = strcmp(mode, "rst") == 0;
  int fin = strcmp(mode, "fin") == 0;
  double hold = strncmp(mode, "idle:", 5) == 0 ? atof(mode + 5) : -1;
  if (!rst && !fin && hold < 0) {
    fprintf(stderr, "abandon-flood: MODE is rst, fin or idle:HOLDMS\n");
    return 2;
  }
  struct pend *p = calloc((size_t)n, sizeof *p);
  unsigned char *open_ = calloc((size_t)n, 1);
  int ep = epoll_create1(0);
  long long attempted = 0, connected = 0, failed = 0, skipped = 0, refused = 0, timedout = 0, other = 0, inflight = 0, peak = 0, peerClosed = 0, gaveUp = 0;
  double t0 = now_ms(), tend = t0 + ms;
  uint32_t base = ntohl(s0.sin_addr.s_addr);
  struct epoll_event evs[512];
  struct linger lg = {1, 0};
  int one = 1;
  double next_hold_check = t0;
  for (;;) {
    double t = now_ms();
    if (t >= tend) break;
    long long due = (long long)((t - t0) * rate / 1000) - attempted - skipped;
    for (long long i = 0; i < due; i++) {
      if (inflight >= n - 64) {
        skipped++;
        continue;
      }
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (fd < 0) {
        skipped++;
        continue;
      }
      struct sockaddr_in sa = s0;
      sa.sin_addr.s_addr = htonl(base + (uint32_t)((attempted + skipped) % nsrc));
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (rst) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      attempted++;
      if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)) {
        failed++;
        other++;
        close(fd);
        continue;
      }
      p[fd].at = 0;
      p[fd].since = t;
      open_[fd] = 1;
      inflight++;
      if (inflight > peak) peak = inflight;
      struct epoll_event ev = {.events = EPOLLOUT | EPOLLRDHUP, .data.fd = fd};
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    int k = epoll_wait(ep, evs, 512, 1);
    for (int i = 0; i < k; i++) {
      int fd = evs[i].data.fd;
      if (!open_[fd]) continue;
      int err = 0;
      socklen_t el = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
      if (p[fd].at == 0 && err == 0 && (evs[i].events & EPOLLOUT)) {
        connected++;
        if (hold >= 0) {
          p[fd].at = now_ms() + hold;
          struct epoll_event ev = {.events = EPOLLRDHUP, .data.fd = fd};
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
          continue;
        }
      } else if (p[fd].at == 0) {
        failed++;
        if (err == ECONNREFUSED) refused++;
        else if (err == ETIMEDOUT) timedout++;
        else other++;
      }
      else if (p[fd].at > 0) peerClosed++; /* an idle one the proxy closed before its hold ran out */
      /* connected and abandoned (rst/fin), failed, or an idle one the proxy closed */
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      open_[fd] = 0;
      inflight--;
      close(fd);
    }
    if (t >= next_hold_check) {
      next_hold_check = t + 10;
      for (int fd = 0; fd < n; fd++) {
        if (!open_[fd]) continue;
        int late = p[fd].at == 0 && t - p[fd].since >= CONNECT_GIVEUP_MS;
        if (late) gaveUp++;
        if (late || (p[fd].at > 0 && p[fd].at <= t)) {
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
          open_[fd] = 0;
          inflight--;
          close(fd);
        }
      }
    }
  }
  double t1 = now_ms();
  long long pending = 0;
  for (int fd = 0; fd < n; fd++) {
    if (!open_[fd]) continue;
    if (p[fd].at == 0) pending++;
    close(fd);
  }
  printf("{\"start\":%.1f,\"end\":%.1f,\"attempted\":%lld,\"connected\":%lld,\"failed\":%lld,\"refused\":%lld,\"timedOut\":%lld,\"otherErrors\":%lld,\"stillConnecting\":%lld,\"skipped\":%lld,\"peakOpen\":%lld,\"closedByPeer\":%lld,\"gaveUp\":%lld,\"rate\":%.1f}\n",
         t0, t1, attempted, connected, failed, refused, timedout, other, pending, skipped, peak, peerClosed, gaveUp, connected / ((t1 - t0) / 1000));
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 4 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]), atof(argv[3]));
  if (argc >= 6 && strcmp(argv[1], "est") == 0) return est(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
  if (argc >= 9 && strcmp(argv[1], "flood") == 0) return flood(argv[2], atoi(argv[3]), atof(argv[4]), atof(argv[5]), argv[6], argv[7], atoi(argv[8]));
  if (argc >= 3 && strcmp(argv[1], "none") == 0) {
    double t0 = now_ms();
    usleep((useconds_t)(atof(argv[2]) * 1000));
    printf("{\"start\":%.1f,\"end\":%.1f,\"attempted\":0,\"connected\":0,\"failed\":0,\"rate\":0}\n", t0, now_ms());
    return 0;
  }
  fprintf(stderr, "usage: abandon-flood serve PORT MBIT | est HOST PORT N SECONDS | flood HOST PORT RATE MS rst|fin|idle:HOLDMS SRC NSRC | none MS\n");
  return 2;
}
