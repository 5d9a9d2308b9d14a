/*
 * connload: the connection load generator and its echo server (the bench groups setup,
 * setup-latency, setup-cpu, setup-cell, sessions-memory, convert). Native so that on a 2-core
 * host the load generator leaves the CPU to the proxy it measures: the Node one it replaces
 * (bench/connload.ts) spent more per connection than the proxy, so its own ceiling was the figure.
 *
 * A connection counts only if the echo server's byte came back through it; every other outcome
 * (refused, reset, closed without the echo, timed out after 10 s) is a failure, counted by
 * reason and left out of the rate. A connection's life, as the Node one had it:
 *   non-blocking connect() → writable: write "x" → the echoed "x" read → shutdown(SHUT_WR)
 *   → the server's FIN read (EOF) → close(): ok. An error at any step (even after the echo)
 *   fails it with the errno's name (ECONNREFUSED, ECONNRESET, EADDRNOTAVAIL…).
 *
 *   connload rate HOST PORT TOTAL CONCURRENCY  → {"rate": ok conns/s, "ok": n, "failed": n, "errors": {…}, "cpuS": s}
 *        (cpuS: this process's own CPU, user + system, so a bench can say what the generator cost)
 *   connload latency HOST PORT COUNT           → {"medianMs": …, "meanMs": …, "failed": n}
 *        (sequential; ms from connect() to the echoed byte; stops after 3 failures)
 *   connload hold HOST PORT COUNT              → opens COUNT idle connections (200 in flight),
 *        prints {"open": n}, waits for SIGTERM
 *   connload echo PORT [HOST]                  → an echo server on HOST (127.0.0.1):PORT, prints
 *        {"listening": PORT}; on EOF it closes (FIN) after echoing what it had
 * One thread, one epoll set, edge-triggered, every socket registered once for in and out: per
 * client connection socket, setsockopt(TCP_NODELAY), connect, epoll_ctl, write, read, shutdown,
 * read, close. One thread is enough: at 64 in flight it spends ~10 µs per connection of which
 * most is the kernel's work for its own socket, a fraction of the proxy's cost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_NS (10LL * 1000000000LL)
#define MAX_REASONS 32

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "connload: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr,
          "usage: connload rate HOST PORT TOTAL CONCURRENCY | latency HOST PORT COUNT | hold HOST PORT COUNT | echo PORT [HOST]\n");
  exit(2);
}

static long num(const char *s, long min) {
  char *end;
  long v = s == NULL ? -1 : strtol(s, &end, 10);
  if (s == NULL || *end != '\0' || v < min) usage();
  return v;
}

/* Each socket may hold 2 descriptors' worth of the open-file limit in the callers (hold 10,000). */
static void raise_nofile(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

static struct sockaddr_storage target;
static socklen_t target_len;

static void resolve(const char *host, const char *port, int passive) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
  struct addrinfo *res;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "connload: %s:%s: %s\n", host, port, gai_strerror(rc));
    exit(2);
  }
  memcpy(&target, res->ai_addr, res->ai_addrlen);
  target_len = res->ai_addrlen;
  freeaddrinfo(res);
}

/* ---- failures by reason ---- */

static struct {
  const char *name;
  long n;
} reasons[MAX_REASONS];
static int nreasons;

static void count_reason(const char *name) {
  for (int i = 0; i < nreasons; i++)
    if (strcmp(reasons[i].name, name) == 0) {
      reasons[i].n++;
      return;
    }
  if (nreasons < MAX_REASONS) reasons[nreasons++] = (typeof(reasons[0])){name, 1};
}

static const char *errno_reason(int e) {
  const char *n = strerrorname_np(e);
  return n != NULL ? n : "error";
}

/* ---- the client: slots of connections in flight ---- */

enum state { FREE, CONNECTING, SENT, DRAIN };

struct conn {
  int fd;
  enum state st;
  uint32_t gen;
  int64_t t0, deadline, echoed;
};

static int ep;
static struct conn *slots;
static int nslots;
static long started, ok, failed, total;
static int64_t *times; /* latency mode: ns to the echoed byte, one per ok connection */

static void finish(struct conn *c, const char *why) {
  close(c->fd);
  c->fd = -1;
  c->st = FREE;
  c->gen++;
  if (why == NULL) {
    if (times != NULL) times[ok] = c->echoed - c->t0;
    ok++;
  } else {
    failed++;
    count_reason(why);
  }
}

/* Start a connection in slot i; a connect() that fails at once is a failure of its own. */
static void start(int i) {
  struct conn *c = &slots[i];
  started++;
  c->t0 = now_ns();
  c->deadline = c->t0 + TIMEOUT_NS;
  c->fd = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    failed++;
    count_reason(errno_reason(errno));
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->st = CONNECTING;
  if (connect(c->fd, (struct sockaddr *)&target, target_len) < 0 && errno != EINPROGRESS) {
    finish(c, errno_reason(errno));
    return;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = ((uint64_t)c->gen << 32) | (uint32_t)i};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) finish(c, errno_reason(errno));
}

/* Advance a connection on an event; edge-triggered, so read until EAGAIN. */
static void step(struct conn *c, uint32_t evs) {
  char buf[512];
  if (c->st == CONNECTING) {
    if (evs & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t l = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
      finish(c, err != 0 ? errno_reason(err) : "closed without the echo");
      return;
    }
    if (!(evs & EPOLLOUT)) return;
    if (write(c->fd, "x", 1) != 1) {
      finish(c, errno_reason(errno));
      return;
    }
    c->st = SENT;
  }
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EAGAIN) return;
      finish(c, errno_reason(errno));
      return;
    }
    if (n == 0) {
      finish(c, c->st == DRAIN ? NULL : "closed without the echo");
      return;
    }
    if (c->st == SENT) {
      if (buf[0] != 'x') {
        /* not the echo: end it and fail it when it closes, as a missing echo */
        c->st = DRAIN;
        c->echoed = -1;
      } else {
        c->echoed = now_ns();
        c->st = DRAIN;
      }
      shutdown(c->fd, SHUT_WR);
      if (c->echoed < 0) {
        finish(c, "closed without the echo");
        return;
      }
    }
  }
}

/* Run `count` connections, `conc` at a time; stop starting after `max_failed` failures. */
static void run(long count, int conc, long max_failed) {
  total = count;
  nslots = conc;
  slots = calloc((size_t)conc, sizeof *slots);
  if (slots == NULL) die("calloc");
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event evs[256];
  int active = 0;
  for (int i = 0; i < conc; i++) slots[i].fd = -1;
  for (;;) {
    /* fill every free slot while connections remain to be started */
    active = 0;
    for (int i = 0; i < nslots; i++) {
      while (slots[i].st == FREE && started < total && failed < max_failed) start(i);
      if (slots[i].st != FREE) active++;
    }
    if (active == 0) break;
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      uint32_t i = (uint32_t)evs[k].data.u64;
      struct conn *c = &slots[i];
      if (c->st == FREE || c->gen != (uint32_t)(evs[k].data.u64 >> 32)) continue;
      step(c, evs[k].events);
      if (c->st == FREE && started < total && failed < max_failed) start((int)i);
    }
    int64_t t = now_ns();
    for (int i = 0; i < nslots; i++)
      if (slots[i].st != FREE && t > slots[i].deadline) finish(&slots[i], "timeout");
  }
}

static void print_errors(void) {
  printf("\"errors\":{");
  for (int i = 0; i < nreasons; i++) printf("%s\"%s\":%ld", i ? "," : "", reasons[i].name, reasons[i].n);
  printf("}");
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void mode_rate(long count, int conc) {
  int64_t t0 = now_ns();
  run(count, conc, count + 1);
  double s = (double)(now_ns() - t0) / 1e9;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  printf("{\"rate\":%.3f,\"ok\":%ld,\"failed\":%ld,", (double)ok / s, ok, failed);
  print_errors();
  printf(",\"cpuS\":%.6f}\n", cpu);
}

static void mode_latency(long count) {
  times = calloc((size_t)count + 1, sizeof *times);
  if (times == NULL) die("calloc");
  run(count, 1, 3); /* a path that does not work: say so after 3 failures */
  qsort(times, (size_t)ok, sizeof *times, cmp_i64);
  double sum = 0;
  for (long i = 0; i < ok; i++) sum += (double)times[i] / 1e6;
  printf("{");
  if (ok > 0) {
    long m = ok / 2;
    double med = ok % 2 ? (double)times[m] / 1e6 : ((double)times[m - 1] + (double)times[m]) / 2e6;
    printf("\"medianMs\":%.6f,", med);
  }
  printf("\"meanMs\":%.6f,\"failed\":%ld}\n", sum / (double)(ok > 0 ? ok : 1), failed);
}

static volatile sig_atomic_t stopping;
static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

/* Open `count` connections, 200 in flight, keep the ones that connected; wait for SIGTERM. */
static void mode_hold(long count) {
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  long open = 0, next = 0, pending = 0;
  struct epoll_event evs[256];
  int64_t deadline = 0;
  while (next < count || pending > 0) {
    while (next < count && pending < 200) {
      next++;
      int fd = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      if (connect(fd, (struct sockaddr *)&target, target_len) < 0 && errno != EINPROGRESS) {
        close(fd);
        continue;
      }
      struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        continue;
      }
      pending++;
      deadline = now_ns() + TIMEOUT_NS;
    }
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      int fd = evs[k].data.fd;
      int err = 0;
      socklen_t l = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      pending--;
      if (err == 0 && !(evs[k].events & (EPOLLERR | EPOLLHUP))) open++;
      else close(fd);
    }
    if (pending > 0 && now_ns() > deadline) break; /* the stragglers are not counted */
  }
  printf("{\"open\":%ld}\n", open);
  fflush(stdout);
  while (!stopping) pause();
}

/* ---- the echo server ---- */

static void mode_echo(const char *port, const char *host) {
  resolve(host, port, 1);
  int ls = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ls < 0) die("socket");
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&target, target_len) < 0) die("bind");
  if (listen(ls, 65535) < 0) die("listen");
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev) < 0) die("epoll_ctl");
  printf("{\"listening\":%s}\n", port);
  fflush(stdout);
  static char buf[65536];
  struct epoll_event evs[256];
  while (!stopping) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; k++) {
      int fd = evs[k].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0) close(c);
        }
        continue;
      }
      /* Level-triggered reads; the echoes are small and the socket buffer takes them. A write
       * that would block (a client that sends more than it reads) blocks this connection's
       * echo (and the server) until it drains, up to 1 s, then closes it: bytes are never dropped or reordered. */
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        close(fd); /* EOF: nothing pending (written in full below), so this sends the FIN */
        continue;
      }
      for (ssize_t off = 0; off < r;) {
        ssize_t w = write(fd, buf + off, (size_t)(r - off));
        if (w > 0) {
          off += w;
        } else if (w < 0 && errno == EAGAIN) {
          struct pollfd pfd = {.fd = fd, .events = POLLOUT};
          if (poll(&pfd, 1, 1000) <= 0) {
            close(fd);
            break;
          }
        } else {
          close(fd);
          break;
        }
      }
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 3) usage();
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  raise_nofile();
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *mode = argv[1];
  if (strcmp(mode, "echo") == 0) {
    num(argv[2], 0);
    mode_echo(argv[2], argc > 3 ? argv[3] : "127.0.0.1");
    return 0;
  }
  if (argc < 5) usage();
  resolve(argv[2], argv[3], 0);
  if (strcmp(mode, "rate") == 0 && argc == 6) mode_rate(num(argv[4], 1), (int)num(argv[5], 1));
  else if (strcmp(mode, "latency") == 0) mode_latency(num(argv[4], 1));
  else if (strcmp(mode, "hold") == 0) mode_hold(num(argv[4], 0));
  else usage();
  return 0;
}
