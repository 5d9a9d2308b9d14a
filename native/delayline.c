/*
 * delayline: a link emulator for network namespaces on kernels without sch_netem.
 *
 *   host a                 wire namespace                   host b
 *   [aIf]====veth====[ifa] --ab--> delayline --ab--> [ifb]====veth====[bIf]
 *                          <--ba--           <--ba--
 *
 * It forwards Ethernet frames between two interfaces (AF_PACKET raw sockets bound per
 * ifindex) and, per direction, adds:
 *   - a fixed one-way delay and uniform jitter in [-jitter, +jitter] without reordering:
 *       release = max(previous release, arrival + delay + jitter sample)
 *   - random (Bernoulli) loss of data frames (ARP and IPv6 neighbour discovery are spared);
 *   - optionally a rate: a frame's serialisation ends at
 *       max(arrival, previous end) + len * 8 / rate
 *     and the frame is tail-dropped when it would wait longer than `queue` ms for its turn.
 * Timing: CLOCK_MONOTONIC in nanoseconds, ppoll() with a nanosecond timeout and a timer slack
 * of 1 ns.
 *
 * Carrier is mirrored as a veth pair does it: when one outer interface loses carrier (the
 * host set its end down), the other outer interface is set down, so the far host sees
 * NO-CARRIER too; it comes back up when the carrier returns. Changes are noticed through
 * rtnetlink link events, with a periodic check as a safety net.
 *
 * Signals: SIGTERM/SIGINT end it cleanly; SIGUSR1 prints the counters as one JSON line on
 * stdout (they are printed at exit too).
 *
 * Usage: delayline --a IFA --b IFB [--ab SPEC] [--ba SPEC] [--both SPEC] [--seed N]
 *                  [--slots N] [--die-with-parent] [--realtime]
 *   SPEC = comma-separated key=value: delay=MS jitter=MS loss=PCT rate=MBIT queue=MS
 * Exit codes: 0 clean exit, 1 run-time failure (interface missing, socket error),
 *             2 bad arguments (impossible settings, unknown keys).
 *
 * Frames must carry complete checksums: set `ethtool -K IF tx off` on the hosts' veth ends
 * (frames with CHECKSUM_PARTIAL are counted as `csum_partial` and forwarded unchanged).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <math.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define NS_PER_MS 1000000.0
#define CARRIER_CHECK_NS (50 * 1000000LL) /* safety-net check of the carrier */
#ifndef COALESCE_NS
#define COALESCE_NS 20000LL /* release frames due within 20 us in one batch */
#endif
#define DRAIN_NS (5 * 1000000LL)          /* read a socket we do not poll at least this often */
#define MIN_READ_NS (100 * 1000LL)        /* ... and at most this often (no busy loop at zero delay) */
/* Real-time guard: RLIMIT_RTTIME makes the kernel send SIGXCPU once the process has run this long
 * at real-time priority without sleeping. The loop sleeps in ppoll between frames, so only a busy
 * loop reaches it; then it goes back to normal priority instead of starving the machine. */
#define RT_GUARD_US 1000000UL

struct params {
  double delay_ms, jitter_ms, loss_pct, rate_mbit, queue_ms;
};

struct dir {
  const char *name;
  int rx_fd, tx_fd;
  struct params p;
  int64_t delay_ns, jitter_ns, queue_ns;
  int64_t read_every_ns; /* with frames queued, read the socket this often (see the main loop) */
  double ns_per_byte; /* 0: no rate */
  /* ring of frames waiting for their release time */
  uint8_t *buf;
  uint32_t *len;
  int64_t *rel;
  uint32_t cap, head, count, slot;
  int64_t last_release, ser_end, last_read;
  bool tx_blocked;
  uint64_t rx, forwarded, bytes, lost, queue_drops, oversize, tx_errors, csum_partial, socket_drops;
};

static uint64_t rng_state;

static uint64_t rng_next(void) {
  /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double rng_unit(void) { return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0); }

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage_exit(const char *fmt, const char *arg) {
  fprintf(stderr, "delayline: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr,
          "\nusage: delayline --a IFA --b IFB [--ab SPEC] [--ba SPEC] [--both SPEC] [--seed N] [--slots N] "
          "[--die-with-parent] [--realtime]\n"
          "  SPEC: comma-separated delay=MS,jitter=MS,loss=PERCENT,rate=MBIT,queue=MS\n");
  exit(2);
}

static double parse_num(const char *key, const char *v) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno != 0 || end == v || *end != '\0' || !isfinite(d)) usage_exit("not a number for %s", key);
  return d;
}

static void parse_spec(const char *spec, struct params *p) {
  char *copy = strdup(spec), *save = NULL;
  if (copy == NULL) exit(1);
  for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (eq == NULL) usage_exit("expected key=value, got '%s'", tok);
    *eq = '\0';
    const char *v = eq + 1;
    if (strcmp(tok, "delay") != 0 && strcmp(tok, "jitter") != 0 && strcmp(tok, "loss") != 0 && strcmp(tok, "rate") != 0 &&
        strcmp(tok, "queue") != 0)
      usage_exit("unknown key '%s' (known: delay, jitter, loss, rate, queue)", tok);
    double d = parse_num(tok, v);
    if (strcmp(tok, "delay") == 0) {
      if (d < 0) usage_exit("delay must be >= 0 ms, got %s", v);
      if (d > 60000) usage_exit("delay must be <= 60000 ms, got %s", v);
      p->delay_ms = d;
    } else if (strcmp(tok, "jitter") == 0) {
      if (d < 0) usage_exit("jitter must be >= 0 ms, got %s", v);
      if (d > 60000) usage_exit("jitter must be <= 60000 ms, got %s", v);
      p->jitter_ms = d;
    } else if (strcmp(tok, "loss") == 0) {
      if (d < 0 || d > 100) usage_exit("loss must be within 0..100 percent, got %s", v);
      p->loss_pct = d;
    } else if (strcmp(tok, "rate") == 0) {
      if (d <= 0) usage_exit("rate must be > 0 Mbit/s (omit it for no rate limit), got %s", v);
      if (d > 100000) usage_exit("rate must be <= 100000 Mbit/s, got %s", v);
      p->rate_mbit = d;
    } else if (strcmp(tok, "queue") == 0) {
      if (d <= 0) usage_exit("queue must be > 0 ms, got %s", v);
      if (d > 60000) usage_exit("queue must be <= 60000 ms, got %s", v);
      p->queue_ms = d;
    } else {
      usage_exit("unknown key '%s' (known: delay, jitter, loss, rate, queue)", tok);
    }
  }
  free(copy);
}

/* ---- interfaces ---------------------------------------------------------------------- */

static int ctl_fd = -1;

static int rtnl_req = -1;
static uint32_t rtnl_seq;

/*
 * The interface's state from RTM_GETLINK: bit 0 = admin up, bit 1 = carrier (IFLA_CARRIER, the
 * driver's own carrier, not the operstate that linkwatch updates later); -1 when it is gone.
 */
static int if_state(const char *name) {
  struct {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
    char attrs[64];
  } req;
  memset(&req, 0, sizeof req);
  size_t nlen = strlen(name) + 1;
  struct rtattr *rta = (struct rtattr *)req.attrs;
  rta->rta_type = IFLA_IFNAME;
  rta->rta_len = (unsigned short)RTA_LENGTH(nlen);
  memcpy(RTA_DATA(rta), name, nlen);
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.ifi) + RTA_ALIGN(rta->rta_len);
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = ++rtnl_seq;
  req.ifi.ifi_family = AF_UNSPEC;
  if (send(rtnl_req, &req, req.nh.nlmsg_len, 0) < 0) return -1;
  char buf[16384];
  for (;;) {
    ssize_t got = recv(rtnl_req, buf, sizeof buf, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)got); nh = NLMSG_NEXT(nh, got)) {
      if (nh->nlmsg_seq != rtnl_seq) continue;
      if (nh->nlmsg_type == NLMSG_ERROR) return -1;
      if (nh->nlmsg_type != RTM_NEWLINK) continue;
      struct ifinfomsg *ifi = NLMSG_DATA(nh);
      int st = (ifi->ifi_flags & IFF_UP) ? 1 : 0;
      int alen = (int)IFLA_PAYLOAD(nh);
      for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type == IFLA_CARRIER && *(uint8_t *)RTA_DATA(a) != 0) st |= 2;
      }
      return st;
    }
  }
}

static int if_set_up(const char *name, bool up) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(ctl_fd, SIOCGIFFLAGS, &ifr) < 0) return -1;
  if (up)
    ifr.ifr_flags |= IFF_UP;
  else
    ifr.ifr_flags &= ~IFF_UP;
  return ioctl(ctl_fd, SIOCSIFFLAGS, &ifr);
}

static int if_mtu(const char *name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(ctl_fd, SIOCGIFMTU, &ifr) < 0) return -1;
  return ifr.ifr_mtu;
}

static int open_packet(const char *name) {
  unsigned idx = if_nametoindex(name);
  if (idx == 0) {
    fprintf(stderr, "delayline: no interface %s: %s\n", name, strerror(errno));
    exit(1);
  }
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) {
    fprintf(stderr, "delayline: AF_PACKET socket: %s\n", strerror(errno));
    exit(1);
  }
  int one = 1, big = 16 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
    fprintf(stderr, "delayline: PACKET_IGNORE_OUTGOING: %s\n", strerror(errno));
    exit(1);
  }
  (void)setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one);
  /* Kernel receive time stamps: the arrival time does not include our own wake-up latency. */
  (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)idx;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    fprintf(stderr, "delayline: bind to %s: %s\n", name, strerror(errno));
    exit(1);
  }
  struct packet_mreq mr;
  memset(&mr, 0, sizeof mr);
  mr.mr_ifindex = (int)idx;
  mr.mr_type = PACKET_MR_PROMISC;
  (void)setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr);
  return fd;
}

/* ---- carrier mirroring ----------------------------------------------------------------- */

enum mirror { BOTH_UP, A_LOST, B_LOST };
static const char *if_a, *if_b;
static enum mirror mirror_state = BOTH_UP;
static uint64_t mirror_changes;
static bool gone;

/*
 * BOTH_UP: both outer ends up. If one has no carrier (its host end is down), set the other down.
 * A_LOST / B_LOST: the named end had no carrier and the other end was set down by us; when the
 * carrier comes back, set the other end up again and re-check (its own host end may be down).
 */
static void check_carrier(void) {
  for (int round = 0; round < 4; round++) {
    int sa = if_state(if_a), sb = if_state(if_b);
    if (sa < 0 || sb < 0) {
      gone = true;
      return;
    }
    int fa = (sa & 1) ? IFF_UP : 0, fb = (sb & 1) ? IFF_UP : 0;
    bool ca = sa == 3, cb = sb == 3;
    switch (mirror_state) {
    case BOTH_UP:
      if (!ca && (fa & IFF_UP)) {
        if_set_up(if_b, false);
        mirror_state = A_LOST;
        mirror_changes++;
        return;
      }
      if (!cb && (fb & IFF_UP)) {
        if_set_up(if_a, false);
        mirror_state = B_LOST;
        mirror_changes++;
        return;
      }
      if (!(fa & IFF_UP)) if_set_up(if_a, true);
      if (!(fb & IFF_UP)) if_set_up(if_b, true);
      if ((fa & IFF_UP) && (fb & IFF_UP)) return;
      break;
    case A_LOST:
      if (!ca) return;
      if_set_up(if_b, true);
      mirror_state = BOTH_UP;
      mirror_changes++;
      break;
    case B_LOST:
      if (!cb) return;
      if_set_up(if_a, true);
      mirror_state = BOTH_UP;
      mirror_changes++;
      break;
    }
  }
}

static int open_rtnl(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* ---- the delay line ---------------------------------------------------------------------- */

/* Non-negative milliseconds to nanoseconds, rounded (no libm). */
static int64_t ms_to_ns(double ms) { return (int64_t)(ms * NS_PER_MS + 0.5); }

static void dir_init(struct dir *d, const char *name, int rx, int tx, uint32_t slots, uint32_t slot) {
  d->name = name;
  d->rx_fd = rx;
  d->tx_fd = tx;
  d->delay_ns = ms_to_ns(d->p.delay_ms);
  d->jitter_ns = ms_to_ns(d->p.jitter_ms);
  d->queue_ns = ms_to_ns((d->p.queue_ms > 0 ? d->p.queue_ms : 50.0));
  d->read_every_ns = d->delay_ns - d->jitter_ns; /* the least delay a frame can get */
  /* At zero least delay (no delay, or jitter as large as the delay) a queue that waits for the
   * rate would otherwise be re-read on every pass: a busy loop at real-time priority. A frame
   * read up to MIN_READ_NS late keeps its kernel arrival stamp, so only its release can slip. */
  if (d->read_every_ns < MIN_READ_NS) d->read_every_ns = MIN_READ_NS;
  if (d->read_every_ns > DRAIN_NS) d->read_every_ns = DRAIN_NS;
  d->ns_per_byte = d->p.rate_mbit > 0 ? 8.0 * 1000.0 / d->p.rate_mbit : 0.0;
  d->cap = slots;
  d->slot = slot;
  d->buf = malloc((size_t)slots * slot);
  d->len = calloc(slots, sizeof *d->len);
  d->rel = calloc(slots, sizeof *d->rel);
  if (d->buf == NULL || d->len == NULL || d->rel == NULL) {
    fprintf(stderr, "delayline: out of memory\n");
    exit(1);
  }
}

/*
 * Link control that random loss spares: ARP and IPv6 neighbour discovery (ICMPv6 133..137).
 * A cellular link has no ARP at all and a WLAN retransmits such frames; losing one here would
 * stall a flow for the kernel's 1 s retry, which neither radio does. They are delayed as usual.
 */
static bool link_control(const uint8_t *f, uint32_t len) {
  if (len < 14) return false;
  uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
  if (type == 0x0806) return true;
  if (type == 0x86dd && len >= 14 + 40 + 1 && f[14 + 6] == 58) {
    uint8_t icmp = f[14 + 40];
    return icmp >= 133 && icmp <= 137;
  }
  return false;
}

/* Decide the fate of one received frame already stored in slot `idx`; true = keep it. */
static bool admit(struct dir *d, uint32_t idx, uint32_t len, int64_t arrival) {
  d->rx++;
  if (len > d->slot) {
    d->oversize++;
    return false;
  }
  int64_t base = arrival;
  if (d->ns_per_byte > 0) {
    int64_t start = d->ser_end > arrival ? d->ser_end : arrival;
    if (start - arrival > d->queue_ns) {
      d->queue_drops++;
      return false;
    }
    d->ser_end = start + (int64_t)((double)len * d->ns_per_byte);
    base = d->ser_end;
  }
  /* Lost on the air: the frame still took its airtime. */
  if (d->p.loss_pct > 0 && rng_unit() * 100.0 < d->p.loss_pct && !link_control(d->buf + (size_t)idx * d->slot, len)) {
    d->lost++;
    return false;
  }
  int64_t delay = d->delay_ns;
  if (d->jitter_ns > 0) delay += (int64_t)((2.0 * rng_unit() - 1.0) * (double)d->jitter_ns);
  if (delay < 0) delay = 0;
  int64_t rel = base + delay;
  if (rel < d->last_release) rel = d->last_release; /* no reordering */
  d->last_release = rel;
  d->len[idx] = len;
  d->rel[idx] = rel;
  return true;
}

static uint8_t scratch[65536 + 64];

static void dir_receive(struct dir *d) {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  char cmsg[BATCH][CMSG_SPACE(sizeof(struct tpacket_auxdata)) + CMSG_SPACE(sizeof(struct timespec))];
  for (int loops = 0; loops < 16; loops++) {
    uint32_t tail = (d->head + d->count) % d->cap;
    uint32_t n = d->cap - d->count;
    if (n > d->cap - tail) n = d->cap - tail;
    if (n > BATCH) n = BATCH;
    bool full = n == 0;
    if (full) n = 1;
    memset(msgs, 0, sizeof(struct mmsghdr) * n);
    for (uint32_t i = 0; i < n; i++) {
      iov[i].iov_base = full ? scratch : d->buf + (size_t)(tail + i) * d->slot;
      iov[i].iov_len = full ? sizeof scratch : d->slot;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = cmsg[i];
      msgs[i].msg_hdr.msg_controllen = sizeof cmsg[i];
    }
    int r = recvmmsg(d->rx_fd, msgs, n, MSG_TRUNC | MSG_DONTWAIT, NULL);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (errno == ENETDOWN) continue; /* reported once when the interface went down */
      gone = errno == ENXIO || errno == ENODEV;
      return;
    }
    int64_t mono = now_ns();
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t real_minus_mono = (int64_t)rt.tv_sec * 1000000000LL + rt.tv_nsec - mono;
    for (int i = 0; i < r; i++) {
      int64_t arrival = mono;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
        if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
          struct tpacket_auxdata aux;
          memcpy(&aux, CMSG_DATA(c), sizeof aux);
          if (aux.tp_status & TP_STATUS_CSUMNOTREADY) d->csum_partial++;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          struct timespec ts;
          memcpy(&ts, CMSG_DATA(c), sizeof ts);
          int64_t t = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - real_minus_mono;
          if (t <= mono && mono - t < 1000000000LL) arrival = t;
        }
      }
      if (full) {
        d->rx++;
        d->queue_drops++;
        continue;
      }
      uint32_t idx = (tail + (uint32_t)i) % d->cap;
      if (admit(d, idx, msgs[i].msg_len, arrival)) {
        if (idx != (d->head + d->count) % d->cap) /* compact over dropped frames */
          memmove(d->buf + (size_t)((d->head + d->count) % d->cap) * d->slot, d->buf + (size_t)idx * d->slot, msgs[i].msg_len);
        uint32_t dst = (d->head + d->count) % d->cap;
        d->len[dst] = d->len[idx];
        d->rel[dst] = d->rel[idx];
        d->count++;
      }
    }
    if ((uint32_t)r < n) return;
  }
}

/* Send every frame whose release time has come. */
static void dir_release(struct dir *d, int64_t now) {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  while (d->count > 0 && !d->tx_blocked) {
    uint32_t n = 0;
    while (n < BATCH && n < d->count && d->head + n < d->cap) {
      uint32_t idx = d->head + n;
      if (d->rel[idx] > now + COALESCE_NS) break;
      iov[n].iov_base = d->buf + (size_t)idx * d->slot;
      iov[n].iov_len = d->len[idx];
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      n++;
    }
    if (n == 0) return;
    int r = sendmmsg(d->tx_fd, msgs, n, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        d->tx_blocked = errno == EAGAIN;
        return;
      }
      /* ENETDOWN/ENXIO/ENOBUFS/EMSGSIZE: the frame is lost, as on a dead link */
      d->tx_errors++;
      r = 1;
    } else {
      for (int i = 0; i < r; i++) {
        d->forwarded++;
        d->bytes += d->len[d->head + (uint32_t)i];
      }
    }
    d->head = (d->head + (uint32_t)r) % d->cap;
    d->count -= (uint32_t)r;
  }
}

static struct dir ab, ba;

static void print_dir(struct dir *d) {
  struct tpacket_stats st;
  socklen_t sl = sizeof st;
  if (getsockopt(d->rx_fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0) d->socket_drops += st.tp_drops; /* reset by each read */
  printf("\"%s\":{\"rx\":%llu,\"forwarded\":%llu,\"bytes\":%llu,\"lost\":%llu,\"queue_drops\":%llu,"
         "\"oversize\":%llu,\"tx_errors\":%llu,\"csum_partial\":%llu,\"socket_drops\":%llu,\"queued\":%u}",
         d->name, (unsigned long long)d->rx, (unsigned long long)d->forwarded, (unsigned long long)d->bytes,
         (unsigned long long)d->lost, (unsigned long long)d->queue_drops, (unsigned long long)d->oversize,
         (unsigned long long)d->tx_errors, (unsigned long long)d->csum_partial, (unsigned long long)d->socket_drops, d->count);
}

static void print_counters(const char *event) {
  printf("{\"event\":\"%s\",\"a\":\"%s\",\"b\":\"%s\",", event, if_a, if_b);
  print_dir(&ab);
  printf(",");
  print_dir(&ba);
  printf(",\"carrier_changes\":%llu}\n", (unsigned long long)mirror_changes);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *spec_ab = NULL, *spec_ba = NULL, *spec_both = NULL;
  long slots = 0;
  bool die_with_parent = false, realtime = false;
  rng_state = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--die-with-parent") == 0) {
      die_with_parent = true;
      continue;
    }
    if (strcmp(a, "--realtime") == 0) {
      realtime = true;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      printf("usage: delayline --a IFA --b IFB [--ab SPEC] [--ba SPEC] [--both SPEC] [--seed N] [--slots N] "
             "[--die-with-parent] [--realtime]\n  SPEC: comma-separated delay=MS,jitter=MS,loss=PERCENT,rate=MBIT,queue=MS\n");
      return 0;
    }
    static const char *const with_value[] = {"--a", "--b", "--ab", "--ba", "--both", "--seed", "--slots"};
    bool known = false;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known = known || strcmp(a, with_value[k]) == 0;
    if (!known) usage_exit("unknown option %s", a);
    if (i + 1 >= argc) usage_exit("%s needs a value", a);
    const char *v = argv[++i];
    if (strcmp(a, "--a") == 0)
      if_a = v;
    else if (strcmp(a, "--b") == 0)
      if_b = v;
    else if (strcmp(a, "--ab") == 0)
      spec_ab = v;
    else if (strcmp(a, "--ba") == 0)
      spec_ba = v;
    else if (strcmp(a, "--both") == 0)
      spec_both = v;
    else if (strcmp(a, "--seed") == 0) {
      char *end;
      errno = 0;
      unsigned long long s = strtoull(v, &end, 10);
      if (errno != 0 || *end != '\0' || end == v) usage_exit("--seed needs an unsigned integer, got %s", v);
      rng_state = s;
    } else if (strcmp(a, "--slots") == 0) {
      char *end;
      slots = strtol(v, &end, 10);
      if (*end != '\0' || slots < 16 || slots > 1 << 20) usage_exit("--slots must be 16..1048576, got %s", v);
    } else
      usage_exit("unknown option %s", a);
  }
  if (spec_both != NULL) {
    parse_spec(spec_both, &ab.p);
    parse_spec(spec_both, &ba.p);
  }
  if (spec_ab != NULL) parse_spec(spec_ab, &ab.p);
  if (spec_ba != NULL) parse_spec(spec_ba, &ba.p);
  if (if_a == NULL || if_b == NULL) usage_exit("%s", "--a and --b are required");
  if (strlen(if_a) >= IFNAMSIZ || strlen(if_b) >= IFNAMSIZ) usage_exit("%s", "interface names are at most 15 characters");
  if (strcmp(if_a, if_b) == 0) usage_exit("--a and --b must differ (%s)", if_a);

  if (die_with_parent) prctl(PR_SET_PDEATHSIG, SIGTERM);
  prctl(PR_SET_TIMERSLACK, 1UL);
  if (realtime) {
    /* A wire should not wait behind other processes' time slices: FIFO priority, event-driven
     * (it sleeps in ppoll between frames), so it takes only the CPU the traffic needs. */
    struct sched_param sp = {.sched_priority = 10};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0) {
      fprintf(stderr, "delayline: SCHED_FIFO not available (%s): timing may be less precise\n", strerror(errno));
    } else {
      struct rlimit rl;
      if (getrlimit(RLIMIT_RTTIME, &rl) == 0) {
        rl.rlim_cur = RT_GUARD_US;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur) rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_RTTIME, &rl);
      }
    }
  }

  ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl_fd < 0) ctl_fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl_fd < 0) {
    fprintf(stderr, "delayline: control socket: %s\n", strerror(errno));
    return 1;
  }
  rtnl_req = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (rtnl_req < 0) {
    fprintf(stderr, "delayline: rtnetlink socket: %s\n", strerror(errno));
    return 1;
  }
  struct timeval rto = {.tv_sec = 1, .tv_usec = 0};
  (void)setsockopt(rtnl_req, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto);
  int fd_a = open_packet(if_a), fd_b = open_packet(if_b);
  int mtu = if_mtu(if_a), mtu_b = if_mtu(if_b);
  if (mtu_b > mtu) mtu = mtu_b;
  uint32_t slot = (uint32_t)(mtu + 64 + 63) & ~63u;
  if (slot < 2048) slot = 2048;
  /* 4096 frames in flight per direction by default (8 MiB at a 1500-byte MTU): 20 ms at
   * 2.4 Gbit/s of full frames; more frames than that are tail-dropped (queue_drops). */
  if (slots == 0) slots = 4096;
  dir_init(&ab, "ab", fd_a, fd_b, (uint32_t)slots, slot);
  dir_init(&ba, "ba", fd_b, fd_a, (uint32_t)slots, slot);

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGUSR1);
  sigaddset(&sigs, SIGHUP);
  sigaddset(&sigs, SIGXCPU);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
  int nl = open_rtnl();

  /* Both ends come up once the sockets are bound: the hosts see carrier when we are ready. */
  if_set_up(if_a, true);
  if_set_up(if_b, true);
  check_carrier();
  int64_t last_check = now_ns();

  /*
   * Wake-ups. A frame that arrives while its direction has frames queued is released no earlier
   * than every queued frame (release = max(previous release, ...)) and no earlier than its
   * arrival + delay - jitter (the least delay); its arrival time is the kernel's time stamp. So a
   * direction's socket is polled only while its queue is empty; with frames queued it is read
   * every read_every_ns = min(least delay, DRAIN_NS), which is before any unread frame is due
   * (and keeps the socket buffer from filling). At 50 Mbit/s and 20 ms this leaves about one
   * wake-up and one sendmmsg per release instead of a wake-up and a read per arrival too.
   */
  bool running = true;
  while (running && !gone) {
    int64_t now = now_ns();
    struct dir *dirs[2] = {&ab, &ba};
    for (int k = 0; k < 2; k++) {
      struct dir *d = dirs[k];
      if (d->count > 0 && now - d->last_read >= d->read_every_ns) {
        dir_receive(d);
        d->last_read = now;
      }
      dir_release(d, now);
    }
    if (now - last_check >= CARRIER_CHECK_NS) {
      check_carrier();
      last_check = now;
    }
    int64_t next = last_check + CARRIER_CHECK_NS;
    for (int k = 0; k < 2; k++) {
      struct dir *d = dirs[k];
      if (d->count == 0) continue;
      if (!d->tx_blocked && d->rel[d->head] < next) next = d->rel[d->head];
      if (d->last_read + d->read_every_ns < next) next = d->last_read + d->read_every_ns;
    }
    int64_t wait = next - now_ns();
    if (wait < 0) wait = 0;
    struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    struct pollfd pfd[4] = {
        {.fd = fd_a, .events = (short)((ab.count == 0 ? POLLIN : 0) | (ba.tx_blocked ? POLLOUT : 0))},
        {.fd = fd_b, .events = (short)((ba.count == 0 ? POLLIN : 0) | (ab.tx_blocked ? POLLOUT : 0))},
        {.fd = sfd, .events = POLLIN},
        {.fd = nl, .events = POLLIN},
    };
    int r = ppoll(pfd, nl >= 0 ? 4 : 3, &ts, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "delayline: ppoll: %s\n", strerror(errno));
      break;
    }
    if (r == 0) continue;
    if (pfd[0].revents & POLLOUT) ba.tx_blocked = false;
    if (pfd[1].revents & POLLOUT) ab.tx_blocked = false;
    if (pfd[0].revents & (POLLIN | POLLERR)) {
      dir_receive(&ab);
      ab.last_read = now_ns();
    }
    if (pfd[1].revents & (POLLIN | POLLERR)) {
      dir_receive(&ba);
      ba.last_read = now_ns();
    }
    if (pfd[2].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGUSR1) {
          print_counters("counters");
        } else if (si.ssi_signo == SIGXCPU) {
          /* the real-time guard: a busy loop, never a wire's normal work; say so, stop starving others */
          struct sched_param np = {.sched_priority = 0};
          if (sched_getscheduler(0) != SCHED_OTHER && sched_setscheduler(0, SCHED_OTHER, &np) == 0)
            fprintf(stderr, "delayline %s<->%s: ran %lu ms at real-time priority without sleeping (a busy loop: a bug); "
                    "now at normal priority\n", if_a, if_b, RT_GUARD_US / 1000UL);
        } else {
          running = false;
        }
      }
    }
    if (nl >= 0 && (pfd[3].revents & (POLLIN | POLLERR))) {
      char buf[16384];
      for (;;) {
        ssize_t got = recv(nl, buf, sizeof buf, MSG_DONTWAIT);
        if (got > 0 || (got < 0 && errno == ENOBUFS)) continue; /* ENOBUFS: missed events, check anyway */
        break;
      }
      check_carrier();
      last_check = now_ns();
    }
  }
  print_counters("exit");
  return 0;
}
