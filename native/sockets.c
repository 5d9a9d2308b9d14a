/*
 * duocell_sockets: the few socket calls Node cannot make by itself.
 *
 * Node's net module cannot ask for IPPROTO_MPTCP, set IP_TRANSPARENT before bind,
 * or read SOL_MPTCP options. This addon creates and prepares sockets and hands the
 * file descriptor back; Node's own libuv handles (net.Server.listen({fd}),
 * new net.Socket({fd})) do all the I/O afterwards.
 *
 * Every function throws a JS Error carrying `errno` and `syscall` on failure, so the
 * TypeScript face (src/drivers/sockets/) can turn it into a DuocellError.
 *
 * Structures read from the kernel (mptcp_info, tcp_info, mptcp_full_info) are
 * returned as raw Buffers and decoded by offset in TypeScript: Debian's uapi headers
 * are older than the running kernel.
 *
 * The one exception to "libuv does the I/O" is the spliced relay (bottom of this file):
 * once a session is set up, the bytes between its two sockets move socket -> pipe ->
 * socket with splice(2) on one relay thread, and never enter JavaScript. Its design is
 * drawn above splice_init().
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef SOL_MPTCP
#define SOL_MPTCP 284
#endif
#define DC_MPTCP_FULL_INFO 4
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Layout of the kernel's struct mptcp_full_info (uapi/linux/mptcp.h, >= 6.5). */
struct dc_mptcp_full_info {
  uint32_t size_tcpinfo_kernel;
  uint32_t size_tcpinfo_user;
  uint32_t size_sfinfo_kernel;
  uint32_t size_sfinfo_user;
  uint32_t num_subflows;
  uint32_t size_arrays_user;
  uint64_t subflow_info __attribute__((aligned(8)));
  uint64_t tcp_info __attribute__((aligned(8)));
  uint8_t mptcp_info[96];
};

/* struct mptcp_subflow_info: u32 id, then two sockaddr_storage (8-aligned). */
#define DC_SFINFO_SIZE (8 + 2 * 128)
#define DC_TCPINFO_SIZE 256
#define DC_MAX_SUBFLOWS 16

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value m, e, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_int32(env, err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "DC_NATIVE_ARGS", "missing arguments");
    return -1;
  }
  return 0;
}

static int32_t arg_i32(napi_env env, napi_value v) {
  int32_t x = 0;
  napi_get_value_int32(env, v, &x);
  return x;
}

static napi_value ret_i32(napi_env env, int32_t x) {
  napi_value r;
  napi_create_int32(env, x, &r);
  return r;
}

static napi_value undef(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

/*
 * The upstream FIN hold (issue 17, docs/relay.md "The half-closed stall"). Linux opens MPTCP
 * joins only while the connection is TCP_ESTABLISHED at the MPTCP level: a FIN sent before the
 * joins are up freezes the connection on its initial subflow, and the download stalls for good
 * when that subflow's path dies. So a FIN towards an MPTCP upstream waits until the connection
 * has `joins` extra subflows and every subflow is established at both ends (it has received
 * bytes: the peer schedules data only on a subflow it accepted), or until the cap.
 *
 *   fin_hold_check(fd, joins) ->  1  send the FIN now: not MPTCP, fallen back to TCP, no join
 *                                    expected, or every expected join established and carrying
 *                                 0  keep holding (fewer subflows than expected, or one of them
 *                                    has not received a byte yet)
 */
#define DC_MPTCP_INFO 1
#define DC_MPTCP_TCPINFO 2
#define DC_HOLD_TICK_MS 10
#define DC_TI_BYTES_RECEIVED 128

struct dc_subflow_data {
  uint32_t size_subflow_data, num_subflows, size_kernel, size_user; /* uapi struct mptcp_subflow_data */
};

/* The connection speaks MPTCP: MPTCP_INFO answers (it fails on plain TCP and after a fallback,
 * the same rule as the JS isMptcp). */
static int is_mptcp_fd(int fd) {
  uint8_t mi[96];
  socklen_t len = sizeof mi;
  return getsockopt(fd, SOL_MPTCP, DC_MPTCP_INFO, mi, &len) == 0;
}

static int fin_hold_check(int fd, int joins) {
  if (joins <= 0) return 1;
  uint8_t mi[96];
  socklen_t len = sizeof mi;
  memset(mi, 0, sizeof mi);
  if (getsockopt(fd, SOL_MPTCP, DC_MPTCP_INFO, mi, &len) < 0) return 1; /* plain TCP (EOPNOTSUPP) */
  uint32_t flags;
  memcpy(&flags, mi + 8, sizeof flags); /* mptcpi_flags; bit 0: fallback to TCP */
  if (len >= 12 && (flags & 1)) return 1;
  static __thread uint8_t b[sizeof(struct dc_subflow_data) + DC_MAX_SUBFLOWS * DC_TCPINFO_SIZE];
  struct dc_subflow_data h = {.size_subflow_data = sizeof h, .size_user = DC_TCPINFO_SIZE};
  memcpy(b, &h, sizeof h);
  len = sizeof b;
  if (getsockopt(fd, SOL_MPTCP, DC_MPTCP_TCPINFO, b, &len) < 0) return 1;
  memcpy(&h, b, sizeof h);
  uint32_t n = h.num_subflows;
  if (n < (uint32_t)joins + 1) return 0;
  if (n > DC_MAX_SUBFLOWS) n = DC_MAX_SUBFLOWS;
  /* struct tcp_info: tcpi_state is byte 0, tcpi_bytes_received the u64 at 128 (>= 4.1) */
  if (h.size_user < DC_TI_BYTES_RECEIVED + 8) return 1; /* an old kernel: no way to tell */
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *t = b + sizeof h + (size_t)i * h.size_user;
    uint64_t rx;
    memcpy(&rx, t + DC_TI_BYTES_RECEIVED, sizeof rx);
    if (t[0] != 1 /* TCP_ESTABLISHED */ || rx == 0) return 0;
  }
  return 1;
}

/* finHoldReady(fd, joins) -> bool: the JS relay's question (same rule as the relay thread's) */
static napi_value js_fin_hold_ready(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  napi_value r;
  napi_get_boolean(env, fin_hold_check(arg_i32(env, argv[0]), arg_i32(env, argv[1])) != 0, &r);
  return r;
}

/* socket(family 4|6, mptcp bool) -> fd (non-blocking, close-on-exec) */
static napi_value js_socket(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  int fam = arg_i32(env, argv[0]) == 6 ? AF_INET6 : AF_INET;
  bool mptcp = false;
  napi_get_value_bool(env, argv[1], &mptcp);
  int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, mptcp ? IPPROTO_MPTCP : 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  return ret_i32(env, fd);
}

/* setInt(fd, level, optname, value) */
static napi_value js_set_int(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv)) return NULL;
  int fd = arg_i32(env, argv[0]), level = arg_i32(env, argv[1]), name = arg_i32(env, argv[2]);
  int val = arg_i32(env, argv[3]);
  if (setsockopt(fd, level, name, &val, sizeof val) < 0) return throw_errno(env, "setsockopt", errno);
  return undef(env);
}

/* getInt(fd, level, optname) -> int */
static napi_value js_get_int(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv)) return NULL;
  int fd = arg_i32(env, argv[0]), level = arg_i32(env, argv[1]), name = arg_i32(env, argv[2]);
  int val = 0;
  socklen_t len = sizeof val;
  if (getsockopt(fd, level, name, &val, &len) < 0) return throw_errno(env, "getsockopt", errno);
  return ret_i32(env, val);
}

/* bindToDevice(fd, ifname) */
static napi_value js_bind_to_device(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  char name[64];
  size_t len = 0;
  napi_get_value_string_utf8(env, argv[1], name, sizeof name, &len);
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)len) < 0)
    return throw_errno(env, "setsockopt(SO_BINDTODEVICE)", errno);
  return undef(env);
}

static int fill_addr(napi_env env, napi_value host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  char buf[INET6_ADDRSTRLEN + 1];
  size_t n = 0;
  napi_get_value_string_utf8(env, host, buf, sizeof buf, &n);
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *len = sizeof *s4;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    *len = sizeof *s6;
    return AF_INET6;
  }
  return -1;
}

/* bind(fd, host, port) — host is a numeric IPv4/IPv6 address */
static napi_value js_bind(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  struct sockaddr_storage ss;
  socklen_t len;
  if (fill_addr(env, argv[1], arg_i32(env, argv[2]), &ss, &len) < 0) return throw_errno(env, "bind", EINVAL);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) return throw_errno(env, "bind", errno);
  return undef(env);
}

/* listen(fd, backlog) */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  if (listen(arg_i32(env, argv[0]), arg_i32(env, argv[1])) < 0) return throw_errno(env, "listen", errno);
  return undef(env);
}

/* close(fd) — only for sockets never handed to libuv */
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  close(arg_i32(env, argv[0]));
  return undef(env);
}

/* getBuf(fd, level, optname, size) -> Buffer (trimmed to what the kernel wrote) */
static napi_value js_get_buf(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv)) return NULL;
  int fd = arg_i32(env, argv[0]), level = arg_i32(env, argv[1]), name = arg_i32(env, argv[2]);
  int size = arg_i32(env, argv[3]);
  if (size <= 0 || size > 4096) return throw_errno(env, "getsockopt", EINVAL);
  uint8_t tmp[4096];
  memset(tmp, 0, (size_t)size);
  socklen_t len = (socklen_t)size;
  if (getsockopt(fd, level, name, tmp, &len) < 0) return throw_errno(env, "getsockopt", errno);
  napi_value out;
  void *data;
  napi_create_buffer_copy(env, len, tmp, &data, &out);
  return out;
}

/*
 * fullInfo(fd) -> { info: Buffer(96), subflows: Buffer, tcp: Buffer, count, sfSize, tcpSize }
 * MPTCP_FULL_INFO: one call returns mptcp_info plus, per subflow, its id/addresses and tcp_info.
 */
static napi_value js_full_info(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  static uint8_t sf[DC_MAX_SUBFLOWS * DC_SFINFO_SIZE];
  static uint8_t ti[DC_MAX_SUBFLOWS * DC_TCPINFO_SIZE];
  struct dc_mptcp_full_info fi;
  memset(&fi, 0, sizeof fi);
  memset(sf, 0, sizeof sf);
  memset(ti, 0, sizeof ti);
  fi.size_tcpinfo_user = DC_TCPINFO_SIZE;
  fi.size_sfinfo_user = DC_SFINFO_SIZE;
  fi.size_arrays_user = DC_MAX_SUBFLOWS;
  fi.subflow_info = (uint64_t)(uintptr_t)sf;
  fi.tcp_info = (uint64_t)(uintptr_t)ti;
  socklen_t len = sizeof fi;
  if (getsockopt(fd, SOL_MPTCP, DC_MPTCP_FULL_INFO, &fi, &len) < 0)
    return throw_errno(env, "getsockopt(MPTCP_FULL_INFO)", errno);
  uint32_t n = fi.num_subflows < DC_MAX_SUBFLOWS ? fi.num_subflows : DC_MAX_SUBFLOWS;
  uint32_t sfsz = fi.size_sfinfo_kernel < DC_SFINFO_SIZE ? fi.size_sfinfo_kernel : DC_SFINFO_SIZE;
  uint32_t tisz = fi.size_tcpinfo_kernel < DC_TCPINFO_SIZE ? fi.size_tcpinfo_kernel : DC_TCPINFO_SIZE;
  napi_value out, v;
  void *data;
  napi_create_object(env, &out);
  napi_create_buffer_copy(env, sizeof fi.mptcp_info, fi.mptcp_info, &data, &v);
  napi_set_named_property(env, out, "info", v);
  napi_create_buffer_copy(env, (size_t)n * DC_SFINFO_SIZE, sf, &data, &v);
  napi_set_named_property(env, out, "subflows", v);
  napi_create_buffer_copy(env, (size_t)n * DC_TCPINFO_SIZE, ti, &data, &v);
  napi_set_named_property(env, out, "tcp", v);
  napi_set_named_property(env, out, "count", ret_i32(env, (int32_t)n));
  napi_set_named_property(env, out, "total", ret_i32(env, (int32_t)fi.num_subflows));
  napi_set_named_property(env, out, "sfStride", ret_i32(env, DC_SFINFO_SIZE));
  napi_set_named_property(env, out, "sfSize", ret_i32(env, (int32_t)sfsz));
  napi_set_named_property(env, out, "tcpStride", ret_i32(env, DC_TCPINFO_SIZE));
  napi_set_named_property(env, out, "tcpSize", ret_i32(env, (int32_t)tisz));
  return out;
}

/* sdNotify(socketPath, message) — one datagram to systemd's NOTIFY_SOCKET */
static napi_value js_sd_notify(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t plen = 0;
  napi_get_value_string_utf8(env, argv[0], sa.sun_path, sizeof sa.sun_path, &plen);
  if (plen == 0) return throw_errno(env, "sd_notify", EINVAL);
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = 0; /* abstract namespace */
  char msg[1024];
  size_t mlen = 0;
  napi_get_value_string_utf8(env, argv[1], msg, sizeof msg, &mlen);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  ssize_t r = sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int err = errno;
  close(fd);
  if (r < 0) return throw_errno(env, "sendto", err);
  return undef(env);
}

/* unixDgram(localPath, remotePath) -> fd: a non-blocking AF_UNIX datagram socket bound to
 * localPath and connected to remotePath (a request/reply control socket such as
 * wpa_supplicant's). A path starting with '@' is in the abstract namespace. */
static int fill_un(napi_env env, napi_value v, struct sockaddr_un *sa, socklen_t *salen) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  size_t plen = 0;
  if (napi_get_value_string_utf8(env, v, sa->sun_path, sizeof sa->sun_path, &plen) != napi_ok) return -1;
  if (plen == 0 || plen >= sizeof sa->sun_path - 1) return -1;
  *salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (sa->sun_path[0] == '@' ? 0 : 1));
  if (sa->sun_path[0] == '@') sa->sun_path[0] = 0;
  return 0;
}

static napi_value js_unix_dgram(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  struct sockaddr_un local, remote;
  socklen_t llen, rlen;
  if (fill_un(env, argv[0], &local, &llen) < 0 || fill_un(env, argv[1], &remote, &rlen) < 0) return throw_errno(env, "unixDgram", EINVAL);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (local.sun_path[0] != 0) unlink(local.sun_path);
  if (bind(fd, (struct sockaddr *)&local, llen) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  if (connect(fd, (struct sockaddr *)&remote, rlen) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "connect", e);
  }
  return ret_i32(env, fd);
}

/*
 * Ping sockets (the ICMP echo path probes, src/drivers/probe/icmp.ts):
 *   pingSocket(family 4|6)            -> fd: socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) or
 *                                        AF_INET6 + IPPROTO_ICMPV6, non-blocking, close-on-exec.
 *                                        The kernel allows it only to a group inside
 *                                        net.ipv4.ping_group_range (EACCES otherwise, even for root).
 *   sendTo(fd, buf, host, port[, scopeId]) -> bytes sent (one datagram; EAGAIN is thrown)
 *   localPort(fd)                     -> the bound port (for a ping socket: the echo identifier)
 * Reads go through fdWatch(fd, cb, true): each read() is one ICMP message without IP header.
 */
static napi_value js_ping_socket(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  int v6 = arg_i32(env, argv[0]) == 6;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
  if (fd < 0) return throw_errno(env, "socket(SOCK_DGRAM, IPPROTO_ICMP)", errno);
  return ret_i32(env, fd);
}

static napi_value js_send_to(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t argc = 5;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, "DC_NATIVE_ARGS", "missing arguments");
    return NULL;
  }
  int fd = arg_i32(env, argv[0]);
  void *data = NULL;
  size_t len = 0;
  bool isbuf = false;
  napi_is_buffer(env, argv[1], &isbuf);
  if (!isbuf || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return throw_errno(env, "sendto", EINVAL);
  struct sockaddr_storage ss;
  socklen_t sl;
  int fam = fill_addr(env, argv[2], arg_i32(env, argv[3]), &ss, &sl);
  if (fam < 0) return throw_errno(env, "sendto", EINVAL);
  if (fam == AF_INET6 && argc > 4) ((struct sockaddr_in6 *)&ss)->sin6_scope_id = (uint32_t)arg_i32(env, argv[4]);
  ssize_t n = sendto(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&ss, sl);
  if (n < 0) return throw_errno(env, "sendto", errno);
  return ret_i32(env, (int32_t)n);
}

static napi_value js_local_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(arg_i32(env, argv[0]), (struct sockaddr *)&ss, &sl) < 0) return throw_errno(env, "getsockname", errno);
  int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ret_i32(env, port);
}

/* countFds() -> number of open descriptors of this process (leak checks) */
static napi_value js_count_fds(napi_env env, napi_callback_info info) {
  int n = 0;
  for (int fd = 0; fd < 65536; fd++)
    if (fcntl(fd, F_GETFD) != -1) n++;
  return ret_i32(env, n);
}

/* ======================================================================================
 * Spliced relay: the bulk path of the proxy, socket -> pipe -> socket, off the JS thread.
 *
 *   main thread (JS)                               relay thread (one per Node environment)
 *   ----------------                               ----------------------------------------
 *   spliceInit(onDone) ─── creates ───►  epoll (edge-triggered) + eventfd + thread + tsfn
 *
 *   spliceStart(cfd, sfd, earlyUp, earlyDown) → id
 *     dup both fds (the session's own),
 *     table[slot] = session ── start list ──►  EPOLL_CTL_ADD both, then
 *                              + eventfd       epoll_wait ──► on_event(side, mask)
 *   JS then closes its own handles                 pump(direction src → dst), until it would block:
 *   (uv_close: no shutdown, no RST)                  1. early bytes      send(dst)
 *                                                    2. pipe → dst       splice
 *                                                    3. src → pipe       splice, at most the pipe's
 *                                                                        room: backpressure
 *                                                    4. EOF, all out  →  shutdown(dst, SHUT_WR)
 *   spliceStats(id, out) reads live counters       an error on either side → SO_LINGER {1,0} on
 *                         (relaxed atomics)          both (reset), stop
 *   spliceAbort(id) ─── abort list + eventfd ───►  abort list → reset both
 *                                                  both directions shut → done
 *   onBatch(records) ◄──── tsfn ──── finished: EPOLL_CTL_DEL, pipes closed; posted
 *     close both fds (a RST if lingered),            at the end of each epoll batch
 *     free the slot
 *
 * Ownership. While a session is live only the relay thread does I/O on its fds. The fds stay
 * open until the main thread closes them in the completion callback, so the main thread may
 * getsockopt them (MPTCP_FULL_INFO for the session API) at any time before that, and an fd
 * number is never reused under the thread. A session is freed only in the completion callback,
 * and the thread posts completions only after a whole batch, when it holds no pointer to it.
 * The table of live sessions is main-thread only; the start and abort lists are the structures
 * both threads touch (mutex), and a session leaves them before its completion is posted. The
 * thread registers a new session's two fds itself, so it never sees one side without the other.
 *
 * Pipes are made lazily on a direction's first read (idle sessions hold none), start at the
 * kernel's default size and grow to DC_PIPE_BIG once the direction has carried
 * DC_PIPE_GROW_AT bytes, so bulk flows take fewer, larger splices; a finished direction
 * gives its pipe back at once: an empty default-size one to a small pool that the next
 * sessions take from (closed after DC_POOL_IDLE_MS without events), any other is closed.
 * Epoll is edge-triggered: pump() goes on until it would block on the destination (EPOLLOUT
 * will come: it is armed on an fd the first time a write to it would block, so short sessions
 * cost no wake-up for writability) or the source is dry with the pipe empty (EPOLLIN will
 * come); a direction that spends its byte budget goes on a ready list and resumes after the
 * rest of the batch, so one bulk flow cannot starve the other sessions.
 * MPTCP sockets splice like TCP ones (the kernel copies where it has no zero-copy path).
 * ==================================================================================== */

#define DC_PIPE_DEFAULT (64 * 1024)
#define DC_PIPE_BIG (256 * 1024)
#define DC_PIPE_GROW_AT (256 * 1024)
#define DC_PUMP_BUDGET (1024 * 1024)
#define DC_SLOT_BITS 20
#define DC_MAX_SLOTS (1u << DC_SLOT_BITS)
#define DC_EVENTS 256
#define DC_POOL 64            /* empty pipes kept for the next sessions */
#define DC_POOL_IDLE_MS 2000  /* ... and closed after this long without any event */
#define DC_COPY_UNTIL (64 * 1024) /* a direction's first bytes are copied (recv/send), not spliced */
#define DC_COPY_BUF (16 * 1024)
#define DC_START_CONNECTING 1 /* spliceStart flag: the server fd's connect is in flight (fast path) */
#define DC_START_ADOPT 2      /* spliceStart flag: take the fds themselves, no duplicates */
#define DC_BULK_PIPE (1024 * 1024) /* a bulk worker's pipe, once its direction carried DC_PIPE_GROW_AT */
#define DC_BULK_TIMEO_MS 100    /* a bulk worker's blocking calls return at least this often */
#define DC_BULK_STACK (256 * 1024)
#define DC_BULK_IDLE_MS 1000    /* a bulk session that moved no byte either way this long goes back
                                 * to the epoll thread (bulk_resume) */
#define DC_START_KEEP_CLIENT 4 /* with CONNECTING: if the upstream fails or abort comes before the
                                * connect completes, the client fd is handed back open (no RST):
                                * JS may try another way (proxy selection's next candidate) */
#define DC_START_PLAIN 8       /* with CONNECTING: the server fd is a plain TCP socket (not
                                * IPPROTO_MPTCP): no MPTCP_INFO question when it connects */

struct dc_sess;

struct dc_dir {
  struct dc_sess *s;
  int src, dst;       /* borrowed from the session */
  int pr, pw;         /* the pipe; -1 until the first read */
  size_t inpipe;      /* bytes in the pipe */
  size_t cap;         /* the pipe's size */
  uint8_t *early;     /* bytes JS had already read from src: sent before anything else */
  size_t early_len, early_off;
  uint8_t eof;        /* src returned 0 */
  uint8_t shut;       /* shutdown(dst, SHUT_WR) done: this direction is finished */
  uint8_t queued;     /* on the ready list */
  uint8_t grown;
  uint8_t hold;       /* the FIN hold (up only): 0 not decided, 1 holding, 2 FIN may go */
  int64_t hold_until; /* wall clock (ms) when a held FIN goes regardless */
  uint64_t bytes;     /* delivered to dst (relaxed atomic: read by the main thread) */
  uint64_t bulk_from; /* bytes when the session last came back from the bulk workers */
  struct dc_dir *next;
  struct dc_dir *next_held;
};

struct dc_end {
  struct dc_sess *s;
  int side;
  int out;            /* EPOLLOUT armed (only once a write to this fd would block) */
  int fin_seen;       /* an event for this fd said EPOLLRDHUP/HUP/ERR: read it until 0 or EAGAIN */
};

struct dc_sess {
  uint32_t slot, gen;
  int fd[2];          /* 0: client, 1: server */
  struct dc_dir d[2]; /* d[0]: client → server ("up"), d[1]: server → client ("down") */
  struct dc_end end[2];
  int64_t last_ms;    /* wall clock of the last byte moved (relaxed atomic) */
  uint8_t done;       /* written under the relay's mutex */
  uint8_t abort_queued;
  uint8_t reset;
  uint8_t connecting;  /* fast path: the server side's non-blocking connect is in flight */
  uint8_t fail_side;   /* which side ended a connecting session: 0 client, 1 server, 2 abort */
  uint8_t server_mptcp;/* set when the connect completed: MPTCP_INFO answered (not fallen back) */
  uint8_t keep_client; /* DC_START_KEEP_CLIENT */
  uint8_t plain;       /* DC_START_PLAIN */
  uint8_t client_edge; /* fast path: the client's fd reported bytes or a FIN while connecting */
  int err;
  /* bulk hand-off (see "Bulk sessions" below): set by the relay thread when the session moves to
   * its two blocking workers; the rest is shared with them */
  uint8_t bulk;
  int bulk_stop;       /* atomic: workers stop (abort, error, exit) */
  int bulk_abort;      /* atomic: the stop is an abort (ECONNABORTED, unless an error came first) */
  int bulk_err;        /* atomic: the first error a worker met (0: none) */
  int bulk_left;       /* under mu: workers still running */
  int bulk_probing;    /* atomic: workers inside bulk_side_error (reading SO_ERROR clears it) */
  int bulk_yield;      /* atomic: idle, the workers leave and the relay thread takes it back */
  int64_t bulk_active; /* atomic: monotonic ms of the workers' last byte or EOF */
  struct dc_relay *r;
  struct dc_sess *next_bulk;      /* under mu: r->bulk_live_list */
  struct dc_sess *next_bulk_done; /* under mu: r->bulk_done */
  struct dc_sess *next_abort;
  struct dc_sess *next_connected;
  struct dc_sess *next_start;
  struct dc_sess *next_done;
};

struct dc_relay {
  int ep, ev;
  pthread_t thread;
  int stop;                    /* atomic */
  int wake_pending;            /* atomic: an eventfd wake-up is on its way, no need for another */
  pthread_mutex_t mu;
  struct dc_sess *starts;      /* under mu: handed over, not yet in the epoll set */
  struct dc_sess *aborts;      /* under mu */
  napi_threadsafe_function tsfn;
  int hold_joins, hold_ms;     /* atomics: the FIN hold's setting (spliceFinHold) */
  int64_t bulk_at;             /* atomic: bytes one direction carries before the session moves to
                                * the bulk workers; < 0: never (spliceBulk) */
  int bulk_max;                /* atomic: at most this many sessions with workers at once */
  uint64_t bulk_moved;         /* atomic: sessions moved so far */
  uint64_t bulk_idled;         /* atomic: idle bulk sessions taken back by the relay thread */
  struct dc_sess *bulk_live_list; /* under mu: sessions whose workers may still run */
  struct dc_sess *bulk_done;   /* under mu: sessions whose workers have all finished */
  int workers;                 /* under mu: live worker threads */
  pthread_cond_t bulk_cv;      /* workers == 0 (for the cleanup hook) */
  uint32_t bulk_live;          /* relay thread only: sessions moved and not yet completed or taken back */
  /* relay thread only */
  struct dc_dir *ready;
  struct dc_dir *held;         /* directions whose FIN waits for the upstream's joins */
  int64_t next_hold_check;
  struct dc_sess *finished;
  struct dc_sess *connected;   /* fast path: connects completed in this batch (posted first) */
  int pool[DC_POOL][2];
  uint8_t copy[DC_COPY_BUF];   /* a direction's first bytes go through here (see pump) */
  uint32_t npool;
  /* main thread only */
  struct dc_sess **slots;
  uint32_t *freelist;
  uint32_t nslots, used, nfree, active, gen;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A direction is done with its pipe: an empty pipe of the default size goes back to the pool
 * (short sessions then cost no pipe2/close pair), anything else is closed. */
static void dir_close_pipe(struct dc_relay *r, struct dc_dir *d) {
  if (d->pr >= 0) {
    if (d->inpipe == 0 && !d->grown && r->npool < DC_POOL) {
      r->pool[r->npool][0] = d->pr;
      r->pool[r->npool][1] = d->pw;
      r->npool++;
    } else {
      close(d->pr);
      close(d->pw);
    }
  }
  d->pr = d->pw = -1;
  d->inpipe = 0;
}

static void pool_flush(struct dc_relay *r) {
  while (r->npool > 0) {
    r->npool--;
    close(r->pool[r->npool][0]);
    close(r->pool[r->npool][1]);
  }
}

static void moved(struct dc_dir *d, size_t n, size_t *budget) {
  __atomic_store_n(&d->bytes, d->bytes + n, __ATOMIC_RELAXED);
  *budget = n >= *budget ? 0 : *budget - n;
}

/* The client's EOF is due on the upstream (d is "up"): hold the FIN while fin_hold_check says
 * so, at most hold_ms; the relay thread re-checks held directions every DC_HOLD_TICK_MS. */
static int fin_held(struct dc_relay *r, struct dc_dir *d) {
  if (d->hold == 1) return 1;
  int joins = __atomic_load_n(&r->hold_joins, __ATOMIC_RELAXED);
  int ms = __atomic_load_n(&r->hold_ms, __ATOMIC_RELAXED);
  /* only "up"; and once the upstream has finished sending there is no download to protect */
  if (d != &d->s->d[0] || joins <= 0 || ms <= 0 || d->s->d[1].eof || fin_hold_check(d->dst, joins)) {
    d->hold = 2;
    return 0;
  }
  d->hold = 1;
  d->hold_until = now_ms() + ms;
  d->next_held = r->held;
  r->held = d;
  return 1;
}

/* Move what can move in one direction. 0: src dry (EPOLLIN will come), 1: budget spent
 * (requeue), 2: dst full (arm EPOLLOUT on dst), <0: -errno (reset the session). */
static int pump(struct dc_relay *r, struct dc_dir *d, size_t *budget) {
  int dry = 0; /* src is empty (EAGAIN into an empty pipe): its next bytes bring a new edge */
  for (;;) {
    int progress = 0;
    while (d->early != NULL) {
      ssize_t n = send(d->dst, d->early + d->early_off, d->early_len - d->early_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 2;
        return -errno;
      }
      d->early_off += (size_t)n;
      moved(d, (size_t)n, budget);
      progress = 1;
      if (d->early_off >= d->early_len) {
        free(d->early);
        d->early = NULL;
      }
    }
    if (d->inpipe > 0) {
      ssize_t n = splice(d->pr, NULL, d->dst, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 2;
        return -errno;
      }
      d->inpipe -= (size_t)n;
      moved(d, (size_t)n, budget);
      progress = 1;
    }
    if (!d->eof && !dry && d->pr < 0 && d->early == NULL && d->bytes < DC_COPY_UNTIL) {
      /* A direction's first DC_COPY_UNTIL bytes: recv into the thread's buffer and send. For
       * the short exchanges most connections are, this is cheaper than splice (no pipe to take
       * or make, no page references), and a short read ends the pump without an EAGAIN call:
       * the receive queue was empty then, and whatever comes later brings a new edge. A FIN
       * that came before this event is in its mask (fin_seen): then src is read to 0. What dst
       * does not take waits as early bytes (at most DC_COPY_BUF) until EPOLLOUT. */
      ssize_t n = recv(d->src, r->copy, sizeof r->copy, MSG_DONTWAIT);
      if (n > 0) {
        ssize_t w = send(d->dst, r->copy, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -errno;
          w = 0;
        }
        if (w > 0) moved(d, (size_t)w, budget);
        progress = 1;
        if (w < n) {
          d->early = malloc((size_t)(n - w));
          if (d->early == NULL) return -ENOMEM;
          memcpy(d->early, r->copy + w, (size_t)(n - w));
          d->early_len = (size_t)(n - w);
          d->early_off = 0;
          return 2;
        }
        if ((size_t)n < sizeof r->copy && !d->s->end[d == &d->s->d[0] ? 0 : 1].fin_seen) dry = 1;
      } else if (n == 0) {
        d->eof = 1;
        progress = 1;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        dry = 1;
      } else {
        return -errno;
      }
    } else if (!d->eof && !dry && d->inpipe < d->cap) {
      if (d->pr < 0) {
        if (r->npool > 0) {
          r->npool--;
          d->pr = r->pool[r->npool][0];
          d->pw = r->pool[r->npool][1];
        } else {
          int p[2];
          if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
          d->pr = p[0];
          d->pw = p[1];
        }
        d->cap = DC_PIPE_DEFAULT;
      } else if (!d->grown && d->bytes >= DC_PIPE_GROW_AT) {
        d->grown = 1;
        int sz = fcntl(d->pw, F_SETPIPE_SZ, DC_PIPE_BIG); /* EPERM past the user's soft limit: keep */
        if (sz > 0) d->cap = (size_t)sz;
      }
      ssize_t n = splice(d->src, NULL, d->pw, NULL, d->cap - d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d->inpipe += (size_t)n;
        progress = 1;
      } else if (n == 0) {
        d->eof = 1;
        progress = 1;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN) {
        /* With the pipe empty the EAGAIN is src's own. A pipe that holds bytes may be out of
         * slots instead (small buffers, e.g. a NIC's segments): try again once it drained. */
        if (d->inpipe == 0) dry = 1;
      } else {
        return -errno;
      }
    }
    if (d->eof && d->inpipe == 0 && d->early == NULL) {
      if (d->hold != 2 && fin_held(r, d)) return 0;
      /* ENOTCONN: dst is already gone (reset); its own events report that. */
      if (shutdown(d->dst, SHUT_WR) < 0 && errno != ENOTCONN) return -errno;
      d->shut = 1;
      dir_close_pipe(r, d);
      return 0;
    }
    if (!progress) return 0;
    if (*budget == 0) return 1;
  }
}

/* Relay thread: the session is over. Stop polling its fds; on reset, make their close send RST. */
/* The client fd goes back to JS open: kept, and the session ends before its connect completed
 * because of the server side or an abort (never the client's own going). */
static int sess_gives_back(const struct dc_sess *s) {
  return s->keep_client && s->connecting && s->fail_side != 0;
}

static void sess_done(struct dc_relay *r, struct dc_sess *s, int reset, int err) {
  if (s->done) return;
  for (int k = 0; k < 2; k++) {
    epoll_ctl(r->ep, EPOLL_CTL_DEL, s->fd[k], NULL);
    if (reset && !(k == 0 && sess_gives_back(s))) {
      struct linger l = {1, 0};
      setsockopt(s->fd[k], SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    dir_close_pipe(r, &s->d[k]);
  }
  s->reset = (uint8_t)(reset != 0);
  s->err = err;
  pthread_mutex_lock(&r->mu);
  s->done = 1;
  pthread_mutex_unlock(&r->mu);
  s->next_done = r->finished;
  r->finished = s;
}

/* ======================================================================================
 * Bulk sessions: a session one of whose directions has carried bulk_at bytes moves from the
 * epoll thread to two blocking worker threads of its own, one per direction, at most bulk_max
 * such sessions at a time (the rest stay on the epoll thread).
 *
 *   relay thread, run(): direction carried >= bulk_at, room in the pool, nothing special
 *   pending (early bytes, a connect, a held FIN)
 *     └► bulk_move: EPOLL_CTL_DEL both fds, O_NONBLOCK off (fds and pipes: the flag belongs to
 *        the open file, so both directions move together), SO_RCVTIMEO/SO_SNDTIMEO
 *        DC_BULK_TIMEO_MS, one thread per direction not yet shut
 *   worker (one direction): loop { pipe → dst (blocking splice); src → pipe (blocking splice,
 *        up to 1 MiB once the direction carried 256 KiB); EOF → FIN hold → shutdown(SHUT_WR) }
 *        counters and last activity as on the epoll thread (relaxed atomics)
 *   error on a side → bulk_err, stop: shutdown(SHUT_RD) on both fds wakes a blocked reader
 *        (nothing is sent: SHUT_WR would send a FIN before the RST), a blocked writer returns
 *        within DC_BULK_TIMEO_MS and sees the stop
 *   spliceAbort → relay thread (abort list): bulk_abort + the same stop
 *   last worker out → r->bulk_done + eventfd → relay thread: sess_done (SO_LINGER {1,0} if
 *        reset) → completion to JS as for any session → JS closes the fds
 *   no byte either way for DC_BULK_IDLE_MS → bulk_yield: both workers leave (a pipe holding
 *        bytes stays) → last out, as above → relay thread: bulk_resume (O_NONBLOCK and no
 *        timeouts again, EPOLL_CTL_ADD both): the epoll thread's again, slot free; it moves
 *        again after another bulk_at bytes
 *
 * Why blocking: a blocking splice from a socket keeps taking what arrives (it drops and retakes
 * the socket lock between passes instead of returning), one into a socket sleeps until the
 * send buffer has room instead of returning EAGAIN; for a bulk flow that is fewer wake-ups and
 * calls on both ends of the connection (docs/relay.md, "Per-byte cost").
 * Ownership: the workers are the only ones doing I/O on the fds while they run; the relay
 * thread only calls shutdown(SHUT_RD) on them (abort), the main thread getsockopt. The fds stay
 * open until the completion, which comes after the last worker let go of the session.
 * ==================================================================================== */

static void relay_wake(struct dc_relay *r);
static void bulk_resume(struct dc_relay *r, struct dc_sess *s);
static void bulk_close_pipe(struct dc_dir *d);

static void bulk_stop(struct dc_sess *s) {
  if (__atomic_exchange_n(&s->bulk_stop, 1, __ATOMIC_SEQ_CST)) return;
  shutdown(s->fd[0], SHUT_RD);
  shutdown(s->fd[1], SHUT_RD);
}

static void bulk_fail(struct dc_sess *s, int err) {
  int none = 0;
  __atomic_compare_exchange_n(&s->bulk_err, &none, err, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  bulk_stop(s);
}

static int bulk_stopped(struct dc_sess *s) {
  return __atomic_load_n(&s->bulk_stop, __ATOMIC_ACQUIRE);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* a tick's resolution is plenty against DC_BULK_IDLE_MS */
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int bulk_yielding(struct dc_sess *s) {
  return __atomic_load_n(&s->bulk_yield, __ATOMIC_ACQUIRE);
}

static void bulk_active(struct dc_sess *s) {
  __atomic_store_n(&s->bulk_active, mono_ms(), __ATOMIC_RELAXED);
}

static void bulk_moved(struct dc_dir *d, size_t n) {
  __atomic_store_n(&d->bytes, d->bytes + n, __ATOMIC_RELAXED);
  __atomic_store_n(&d->s->last_ms, now_ms(), __ATOMIC_RELAXED);
  bulk_active(d->s);
}

/* A worker's blocking call timed out and neither side failed: if the session moved no byte in
 * either direction for DC_BULK_IDLE_MS (bulk_active is shared: a byte of the other worker counts,
 * and a direction whose worker has finished moves none), both workers leave (bulk_yield). */
static void bulk_idle_check(struct dc_sess *s) {
  if (mono_ms() - __atomic_load_n(&s->bulk_active, __ATOMIC_RELAXED) >= DC_BULK_IDLE_MS)
    __atomic_store_n(&s->bulk_yield, 1, __ATOMIC_RELEASE);
}

/* The FIN hold (fin_held's rule) in a worker: poll every DC_HOLD_TICK_MS. 0: the FIN may go,
 * 1: stopped meanwhile. */
static int bulk_hold(struct dc_relay *r, struct dc_dir *d) {
  struct dc_sess *s = d->s;
  if (d != &s->d[0] || d->hold == 2) return 0;
  int joins = __atomic_load_n(&r->hold_joins, __ATOMIC_RELAXED);
  int ms = __atomic_load_n(&r->hold_ms, __ATOMIC_RELAXED);
  int64_t until = now_ms() + ms;
  while (joins > 0 && ms > 0 && !__atomic_load_n(&s->d[1].eof, __ATOMIC_ACQUIRE) && !fin_hold_check(d->dst, joins) && now_ms() < until) {
    if (bulk_stopped(s)) return 1;
    bulk_active(s); /* a held FIN is activity: the other worker must not hand the session back meanwhile */
    struct timespec ts = {0, DC_HOLD_TICK_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
  d->hold = 2;
  return bulk_stopped(s);
}

/* A worker's blocking call timed out: did either side fail meanwhile? A worker only notices an
 * error on the fd it is blocked on, so an RST on the other fd (the client resets while the
 * upload worker waits for the server to read, say) is found here, within DC_BULK_TIMEO_MS. */
static int bulk_side_error(struct dc_sess *s) {
  struct pollfd p[2] = {{.fd = s->fd[0]}, {.fd = s->fd[1]}};
  if (poll(p, 2, 0) <= 0) return 0;
  /* Reading SO_ERROR clears it: a worker blocked reading that socket then sees a plain end (0)
   * and would forward the peer's RST as a FIN. So the failure is recorded (bulk_fail) before
   * bulk_probing drops, and a worker that reads 0 waits for bulk_probing == 0 (bulk_eof_real). */
  __atomic_add_fetch(&s->bulk_probing, 1, __ATOMIC_SEQ_CST);
  int found = 0;
  for (int k = 0; k < 2 && found == 0; k++) {
    if (!(p[k].revents & POLLERR)) continue;
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(s->fd[k], SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e != 0) found = e;
  }
  if (found != 0) bulk_fail(s, found);
  __atomic_sub_fetch(&s->bulk_probing, 1, __ATOMIC_SEQ_CST);
  return found;
}

/* A worker's read gave 0: the peer's FIN, unless the other worker took a reset's error from
 * this socket meanwhile (bulk_side_error), or the stop's SHUT_RD. 1: a real FIN. */
static int bulk_eof_real(struct dc_sess *s) {
  while (__atomic_load_n(&s->bulk_probing, __ATOMIC_SEQ_CST) != 0) sched_yield();
  return !bulk_stopped(s);
}

/* One direction, blocking, until it is shut (0), stopped (0) or fails (errno). */
static int bulk_pump(struct dc_relay *r, struct dc_dir *d) {
  struct dc_sess *s = d->s;
  int big = 0;
  for (;;) {
    /* stopped, or idle: what the pipe holds stays there for the relay thread */
    if (bulk_stopped(s) || bulk_yielding(s)) return 0;
    if (d->inpipe > 0) {
      ssize_t n = splice(d->pr, NULL, d->dst, NULL, d->inpipe, SPLICE_F_MOVE);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return errno;
        int e = bulk_side_error(s); /* SO_SNDTIMEO: look at the other side and the stop */
        if (e != 0) return e;
        bulk_idle_check(s);
        continue;
      }
      d->inpipe -= (size_t)n;
      bulk_moved(d, (size_t)n);
      continue;
    }
    if (d->eof) {
      if (bulk_hold(r, d)) return 0;
      if (shutdown(d->dst, SHUT_WR) < 0 && errno != ENOTCONN) return errno;
      d->shut = 1;
      return 0;
    }
    if (d->pr < 0) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) < 0) return errno;
      d->pr = p[0];
      d->pw = p[1];
      d->cap = DC_PIPE_DEFAULT;
      d->grown = 0;
    }
    if (!big && d->bytes >= DC_PIPE_GROW_AT) {
      big = 1;
      int sz = fcntl(d->pw, F_SETPIPE_SZ, DC_BULK_PIPE); /* EPERM past the user's soft limit: keep */
      if (sz > 0) d->cap = (size_t)sz;
    }
    ssize_t n = splice(d->src, NULL, d->pw, NULL, d->cap, SPLICE_F_MOVE);
    if (n > 0) {
      d->inpipe = (size_t)n;
    } else if (n == 0) {
      if (!bulk_eof_real(s)) return 0; /* the stop's SHUT_RD or a reset, not the peer's FIN */
      __atomic_store_n(&d->eof, 1, __ATOMIC_RELEASE);
      bulk_active(s);
    } else if (errno == EAGAIN) {
      int e = bulk_side_error(s); /* SO_RCVTIMEO: look at the other side and the stop */
      if (e != 0) return e;
      bulk_idle_check(s);
    } else if (errno != EINTR) {
      return errno;
    }
  }
}

static void *bulk_main(void *arg) {
  struct dc_dir *d = arg;
  struct dc_sess *s = d->s;
  struct dc_relay *r = s->r;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  int err = bulk_pump(r, d);
  if (err != 0) bulk_fail(s, err);
  /* Leaving because the session is idle: a pipe that holds bytes stays with the session (the
   * relay thread sends them on); an empty one goes (the next bytes take one from the pool). On a
   * stop the relay thread closes a kept one (take_work). */
  int keep = !bulk_stopped(s) && d->inpipe > 0;
  if (d->pr >= 0 && !keep) {
    close(d->pr);
    close(d->pw);
    d->pr = d->pw = -1;
  }
  if (!keep) d->inpipe = 0;
  /* Under mu, the wake-up included: after workers-- the cleanup hook may close the eventfd. */
  pthread_mutex_lock(&r->mu);
  if (--s->bulk_left == 0) {
    s->next_bulk_done = r->bulk_done;
    r->bulk_done = s;
    relay_wake(r);
  }
  r->workers--;
  pthread_cond_broadcast(&r->bulk_cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static int set_blocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? -1 : 0;
}

/* Relay thread: may s move to the bulk workers now (d just ran)? */
static int bulk_due(struct dc_relay *r, struct dc_sess *s, struct dc_dir *d) {
  int64_t at = __atomic_load_n(&r->bulk_at, __ATOMIC_RELAXED);
  if (at < 0 || (int64_t)(d->bytes - d->bulk_from) < at || s->bulk || s->done || s->connecting) return 0;
  if (s->d[0].early != NULL || s->d[1].early != NULL || s->d[0].hold == 1) return 0;
  return r->bulk_live < (uint32_t)__atomic_load_n(&r->bulk_max, __ATOMIC_RELAXED);
}

/* Relay thread: hand s to two workers. 0: moved (or failed and reset: the workers see the
 * stop); -1: not moved, s stays on the epoll thread as it was. */
static int bulk_move(struct dc_relay *r, struct dc_sess *s) {
  struct timeval tv = {0, DC_BULK_TIMEO_MS * 1000};
  for (int k = 0; k < 2; k++) {
    if (setsockopt(s->fd[k], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 || setsockopt(s->fd[k], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
      return -1;
  }
  for (int k = 0; k < 2; k++) epoll_ctl(r->ep, EPOLL_CTL_DEL, s->fd[k], NULL);
  int ok = set_blocking(s->fd[0]) == 0 && set_blocking(s->fd[1]) == 0;
  for (int k = 0; k < 2 && ok; k++) {
    if (s->d[k].pr >= 0 && (set_blocking(s->d[k].pr) < 0 || set_blocking(s->d[k].pw) < 0)) ok = 0;
  }
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, DC_BULK_STACK);
  int want = !s->d[0].shut + !s->d[1].shut;
  s->r = r;
  s->bulk = 1;
  s->bulk_left = want;
  __atomic_store_n(&s->bulk_yield, 0, __ATOMIC_RELAXED);
  bulk_active(s);
  pthread_mutex_lock(&r->mu);
  r->workers += want;
  s->next_bulk = r->bulk_live_list;
  r->bulk_live_list = s;
  pthread_mutex_unlock(&r->mu);
  r->bulk_live++;
  __atomic_add_fetch(&r->bulk_moved, 1, __ATOMIC_RELAXED);
  int started = 0, err = ok ? 0 : errno;
  for (int k = 0; k < 2; k++) {
    if (s->d[k].shut) continue;
    pthread_t t;
    int rc = err != 0 ? err : pthread_create(&t, &at, bulk_main, &s->d[k]);
    if (rc == 0) {
      started++;
      continue;
    }
    /* Could not start this direction's worker: the session is reset (a worker already running
     * sees the stop; with none, the session is handed back here). */
    if (err == 0) err = rc;
    bulk_fail(s, err);
    pthread_mutex_lock(&r->mu);
    r->workers--;
    if (--s->bulk_left == 0) {
      s->next_bulk_done = r->bulk_done;
      r->bulk_done = s;
      relay_wake(r);
    }
    pthread_mutex_unlock(&r->mu);
  }
  (void)started;
  pthread_attr_destroy(&at);
  return 0;
}

/* A pipe a worker kept (it held bytes when the session went idle), closed: the session ends. */
static void bulk_close_pipe(struct dc_dir *d) {
  if (d->pr < 0) return;
  close(d->pr);
  close(d->pw);
  d->pr = d->pw = -1;
  d->inpipe = 0;
}

static int set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

/* Relay thread: the workers of an idle session have left (bulk_yield); the session is the epoll
 * thread's again, as bulk_move found it: O_NONBLOCK back on the fds and on a kept pipe (its
 * bytes go out from here), no socket timeouts, both fds in the epoll set. EPOLLOUT where a pipe
 * holds bytes for that fd. An edge-triggered EPOLL_CTL_ADD polls the fd and queues what is
 * ready already (bytes or a FIN that came while the workers left, a reset, room for the kept
 * bytes), so no edge is lost; take_work relies on the same for new sessions. Its byte count
 * towards the next move starts here (bulk_from). */
static void bulk_resume(struct dc_relay *r, struct dc_sess *s) {
  struct timeval tv = {0, 0};
  int err = 0;
  for (int k = 0; k < 2 && err == 0; k++) {
    if (setsockopt(s->fd[k], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 || setsockopt(s->fd[k], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
        set_nonblocking(s->fd[k]) < 0)
      err = errno;
  }
  for (int k = 0; k < 2; k++) {
    struct dc_dir *d = &s->d[k];
    d->bulk_from = d->bytes;
    if (d->pr < 0) {
      d->grown = 0; /* its next pipe comes from the pool and may grow */
      continue;
    }
    d->grown = 1; /* its size is the worker's: closed when done, never pooled */
    int sz = fcntl(d->pw, F_GETPIPE_SZ);
    if (sz > 0) d->cap = (size_t)sz;
    if (err == 0 && (set_nonblocking(d->pr) < 0 || set_nonblocking(d->pw) < 0)) err = errno;
  }
  s->bulk = 0;
  __atomic_store_n(&s->bulk_yield, 0, __ATOMIC_RELAXED);
  for (int k = 0; k < 2 && err == 0; k++) {
    s->end[k].out = s->d[1 - k].inpipe > 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (s->end[k].out ? EPOLLOUT : 0), .data = {.ptr = &s->end[k]}};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, s->fd[k], &ev) < 0) err = errno;
  }
  if (err != 0) sess_done(r, s, 1, err);
  else __atomic_add_fetch(&r->bulk_idled, 1, __ATOMIC_RELAXED);
}

static void run(struct dc_relay *r, struct dc_dir *d, int64_t now) {
  struct dc_sess *s = d->s;
  if (s->done || s->bulk || d->shut) return;
  size_t budget = DC_PUMP_BUDGET;
  int rc = pump(r, d, &budget);
  if (budget != DC_PUMP_BUDGET) __atomic_store_n(&s->last_ms, now, __ATOMIC_RELAXED);
  if (rc < 0) {
    sess_done(r, s, 1, -rc);
    return;
  }
  if (rc == 1 && !d->queued) {
    d->queued = 1;
    d->next = r->ready;
    r->ready = d;
  }
  if (rc == 2) {
    /* Sockets start without EPOLLOUT (a fresh socket is writable: that event would only cost
     * a wake-up per session). Armed the first time dst fills; with EPOLLET it stays. If dst
     * drained meanwhile, EPOLL_CTL_MOD reports it at once, so no edge is lost. */
    struct dc_end *e = &s->end[d == &s->d[0] ? 1 : 0];
    if (!e->out) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data = {.ptr = e}};
      if (epoll_ctl(r->ep, EPOLL_CTL_MOD, s->fd[e->side], &ev) < 0) {
        sess_done(r, s, 1, errno);
        return;
      }
      e->out = 1;
    }
  }
  if (s->d[0].shut && s->d[1].shut) sess_done(r, s, 0, 0);
  else if (bulk_due(r, s, d)) bulk_move(r, s);
}

static void on_event(struct dc_relay *r, struct dc_end *e, uint32_t m, int64_t now) {
  struct dc_sess *s = e->s;
  if (s->done || s->bulk) return; /* bulk: an event of the batch in which it moved */
  int k = e->side;
  if (m & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e->fin_seen = 1;
  if (s->connecting) {
    /* Fast path: nothing moves until the upstream connect completes; an edge of the client's
     * (bytes or a FIN that came meanwhile) is remembered and its direction run then. */
    if (!(m & (EPOLLERR | EPOLLHUP | (k == 1 ? EPOLLOUT : 0)))) {
      if (k == 0 && (m & (EPOLLIN | EPOLLRDHUP))) s->client_edge = 1;
      return;
    }
    int err = 0;
    /* EPOLLOUT without an error or hang-up: the connect completed (a socket in SYN_SENT is not
     * writable), so SO_ERROR is asked only when the kernel reported trouble. */
    if (m & (EPOLLERR | EPOLLHUP)) {
      socklen_t len = sizeof err;
      if (getsockopt(s->fd[k], SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
      if (err == 0) err = ECONNRESET;
    }
    if (err != 0) {
      s->fail_side = (uint8_t)k;
      sess_done(r, s, 1, err);
      return;
    }
    s->connecting = 0;
    s->server_mptcp = s->plain ? 0 : (uint8_t)is_mptcp_fd(s->fd[1]);
    s->next_connected = r->connected;
    r->connected = s;
    /* The client's fd stays armed as registered (edge-triggered, EPOLLIN | EPOLLRDHUP): an
     * edge that came while connecting was remembered and its direction runs now; without one
     * there is nothing to read yet (running it blindly would make a pipe for a client that sent
     * nothing), and its next bytes bring a new edge. No EPOLL_CTL_MOD per session. */
    if (s->client_edge) run(r, &s->d[0], now);
    if (s->done) return;
    if (m & (EPOLLIN | EPOLLRDHUP)) run(r, &s->d[1], now);
    return;
  }
  if (m & EPOLLERR) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd[k], SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
      sess_done(r, s, 1, err);
      return;
    }
  }
  /* fd[k] readable (or at EOF/error): the direction reading it */
  if (m & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) run(r, &s->d[k], now);
  /* fd[k] writable: the direction writing into it, if it holds bytes */
  struct dc_dir *w = &s->d[1 - k];
  if ((m & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (w->inpipe > 0 || w->early != NULL)) run(r, w, now);
}

/* Held FINs whose joins are up, or whose cap passed, go out now. */
static void held_sweep(struct dc_relay *r, int64_t now) {
  int joins = __atomic_load_n(&r->hold_joins, __ATOMIC_RELAXED);
  struct dc_dir *go = NULL;
  for (struct dc_dir **pp = &r->held; *pp != NULL;) {
    struct dc_dir *d = *pp;
    if (d->s->done || now >= d->hold_until || d->s->d[1].eof || fin_hold_check(d->dst, joins)) {
      *pp = d->next_held;
      d->hold = 2;
      d->next_held = go;
      go = d;
    } else {
      pp = &d->next_held;
    }
  }
  while (go != NULL) {
    struct dc_dir *next = go->next_held;
    go->next_held = NULL;
    run(r, go, now);
    go = next;
  }
}

/* Main thread: wake the relay thread for new work, unless a wake-up is already pending
 * (a burst of new sessions costs one eventfd write and one wake-up, not one each). */
static void relay_wake(struct dc_relay *r) {
  if (__atomic_exchange_n(&r->wake_pending, 1, __ATOMIC_SEQ_CST)) return;
  uint64_t one = 1;
  ssize_t w = write(r->ev, &one, sizeof one);
  (void)w;
}

/* Work from the main thread: new sessions, then aborts. Both lists are taken in one critical
 * section: a session's start is pushed before any abort of it, so an abort taken here never
 * refers to a session still waiting on the start list.
 * New sessions: the thread registers both fds itself, so no event for one side is handled
 * before the other side is in the epoll set. EPOLLOUT only where early bytes wait (see run());
 * an edge-triggered ADD reports what is already readable. */
static void take_work(struct dc_relay *r) {
  pthread_mutex_lock(&r->mu);
  struct dc_sess *st = r->starts, *ab = r->aborts, *bd = r->bulk_done;
  r->starts = NULL;
  r->aborts = NULL;
  r->bulk_done = NULL;
  for (struct dc_sess *x = ab; x != NULL; x = x->next_abort) x->abort_queued = 0;
  for (struct dc_sess *x = bd; x != NULL; x = x->next_bulk_done) {
    for (struct dc_sess **pp = &r->bulk_live_list; *pp != NULL; pp = &(*pp)->next_bulk) {
      if (*pp == x) {
        *pp = x->next_bulk;
        break;
      }
    }
  }
  pthread_mutex_unlock(&r->mu);
  while (st != NULL) {
    struct dc_sess *next = st->next_start;
    st->end[0].out = st->d[1].early != NULL;
    st->end[1].out = st->d[0].early != NULL || st->connecting;
    for (int k = 0; k < 2 && !st->done; k++) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (st->end[k].out ? EPOLLOUT : 0), .data = {.ptr = &st->end[k]}};
      if (epoll_ctl(r->ep, EPOLL_CTL_ADD, st->fd[k], &ev) < 0) sess_done(r, st, 1, errno);
    }
    st = next;
  }
  while (ab != NULL) {
    struct dc_sess *next = ab->next_abort;
    if (ab->bulk) {
      /* its workers stop; the completion comes when the last one is out (bulk_done) */
      if (!ab->done) {
        __atomic_store_n(&ab->bulk_abort, 1, __ATOMIC_SEQ_CST);
        bulk_stop(ab);
      }
    } else {
      if (ab->connecting && !ab->done) ab->fail_side = 2;
      sess_done(r, ab, 1, ECONNABORTED);
    }
    ab = next;
  }
  /* Bulk sessions whose workers have all let go: idle ones come back to the epoll thread (an
   * abort taken above came first: it ends them), the others complete as any session. */
  while (bd != NULL) {
    struct dc_sess *next = bd->next_bulk_done;
    int err = __atomic_load_n(&bd->bulk_err, __ATOMIC_SEQ_CST);
    if (err == 0 && __atomic_load_n(&bd->bulk_abort, __ATOMIC_SEQ_CST)) err = ECONNABORTED;
    int both = bd->d[0].shut && bd->d[1].shut;
    r->bulk_live--;
    if (err == 0 && !both && !bulk_stopped(bd) && bulk_yielding(bd)) {
      bulk_resume(r, bd);
    } else {
      if (err == 0 && !both) err = ECONNABORTED; /* stopped otherwise (cannot happen) */
      for (int k = 0; k < 2; k++) bulk_close_pipe(&bd->d[k]); /* kept by an idle worker */
      sess_done(r, bd, err != 0, err);
    }
    bd = next;
  }
}

/* What the relay thread posts once per batch: sessions whose connect completed (pointer | 1)
 * and finished sessions (pointer), in that order. */
struct dc_post {
  uint32_t n;
  uintptr_t item[];
};

/* End of a batch: hand finished sessions to the main thread (which frees them). */
static void post_finished(struct dc_relay *r) {
  /* Connects first (a session that connected and finished in one batch: in that order; the
   * tsfn's queue is FIFO, so a connect item is always handled before the session is freed). */
  if (r->connected == NULL && r->finished == NULL) return;
  /* One tsfn item (one JS call) per batch: connects first, then ends. */
  uint32_t n = 0;
  for (struct dc_sess *x = r->connected; x != NULL; x = x->next_connected) n++;
  for (struct dc_sess *x = r->finished; x != NULL; x = x->next_done) n++;
  struct dc_post *post = malloc(sizeof *post + n * sizeof post->item[0]);
  if (post == NULL) return; /* keep both lists: posted after the next batch */
  post->n = 0;
  struct dc_sess *c = r->connected;
  r->connected = NULL;
  while (c != NULL) {
    post->item[post->n++] = (uintptr_t)c | 1u;
    c = c->next_connected;
  }
  if (r->finished == NULL) {
    napi_call_threadsafe_function(r->tsfn, post, napi_tsfn_nonblocking);
    return;
  }
  pthread_mutex_lock(&r->mu);
  for (struct dc_sess **pp = &r->aborts; *pp != NULL;) {
    if ((*pp)->done) {
      (*pp)->abort_queued = 0;
      *pp = (*pp)->next_abort;
    } else {
      pp = &(*pp)->next_abort;
    }
  }
  pthread_mutex_unlock(&r->mu);
  for (struct dc_dir **pp = &r->ready; *pp != NULL;) {
    if ((*pp)->s->done) {
      (*pp)->queued = 0;
      *pp = (*pp)->next;
    } else {
      pp = &(*pp)->next;
    }
  }
  for (struct dc_dir **pp = &r->held; *pp != NULL;) {
    if ((*pp)->s->done) *pp = (*pp)->next_held;
    else pp = &(*pp)->next_held;
  }
  struct dc_sess *s = r->finished;
  r->finished = NULL;
  while (s != NULL) {
    post->item[post->n++] = (uintptr_t)s;
    s = s->next_done;
  }
  napi_call_threadsafe_function(r->tsfn, post, napi_tsfn_nonblocking);
}

static void *relay_main(void *arg) {
  struct dc_relay *r = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  struct epoll_event ev[DC_EVENTS];
  for (;;) {
    int timeout = r->ready != NULL ? 0 : r->held != NULL ? DC_HOLD_TICK_MS : r->npool > 0 ? DC_POOL_IDLE_MS : -1;
    int n = epoll_wait(r->ep, ev, DC_EVENTS, timeout);
    if (n == 0 && r->ready == NULL && r->held == NULL) pool_flush(r); /* idle: give the pooled pipes back */
    if (n < 0) n = 0;                              /* EINTR */
    int64_t now = now_ms();
    for (int i = 0; i < n; i++) {
      if (ev[i].data.ptr == NULL) {
        uint64_t x;
        ssize_t rd = read(r->ev, &x, sizeof x);
        (void)rd;
        if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) return NULL;
        /* Cleared before the lists are taken: whatever is pushed after this wakes us again. */
        __atomic_store_n(&r->wake_pending, 0, __ATOMIC_SEQ_CST);
        take_work(r);
      } else {
        on_event(r, ev[i].data.ptr, ev[i].events, now);
      }
    }
    struct dc_dir *q = r->ready;
    r->ready = NULL;
    while (q != NULL) {
      struct dc_dir *next = q->next;
      q->queued = 0;
      run(r, q, now);
      q = next;
    }
    if (r->held != NULL && now >= r->next_hold_check) {
      r->next_hold_check = now + DC_HOLD_TICK_MS;
      held_sweep(r, now);
    }
    post_finished(r);
  }
}

/* Main thread, from the tsfn: one batch of the relay thread. A finished session's fds are
 * closed and it is freed here, after JS's one call with a Float64Array of DC_REC numbers per item:
 * [id, kind, up, down, reset, errno, keptClientFd]. kind 0: relayed to the end; 1: the upstream
 * connect completed (up: 1 when MPTCP); 2: the upstream connect failed; 3: the client went
 * first; 4: aborted while connecting. */
#define DC_REC 7
static void splice_done_js(napi_env env, napi_value cb, void *context, void *data) {
  struct dc_relay *r = context;
  struct dc_post *post = data;
  int call = env != NULL && cb != NULL;
  double *rec = NULL;
  napi_value arr = NULL;
  if (call) {
    napi_value ab;
    void *p = NULL;
    if (napi_create_arraybuffer(env, (size_t)post->n * DC_REC * sizeof(double), &p, &ab) != napi_ok ||
        napi_create_typedarray(env, napi_float64_array, (size_t)post->n * DC_REC, ab, 0, &arr) != napi_ok)
      call = 0;
    else
      rec = p;
  }
  for (uint32_t i = 0; i < post->n; i++) {
    if (post->item[i] & 1u) {
      /* fast path: the upstream connect completed (the session lives on) */
      struct dc_sess *cs = (struct dc_sess *)(post->item[i] & ~(uintptr_t)1u);
      if (!call) continue;
      double *o = rec + (size_t)i * DC_REC;
      o[0] = (double)cs->gen * (double)DC_MAX_SLOTS + (double)cs->slot;
      o[1] = 1;
      o[2] = cs->server_mptcp ? 1 : 0;
      o[3] = o[4] = o[5] = 0;
      o[6] = -1;
      continue;
    }
    struct dc_sess *s = (struct dc_sess *)post->item[i];
    if (!call) continue;
    double *o = rec + (size_t)i * DC_REC;
    o[0] = (double)s->gen * (double)DC_MAX_SLOTS + (double)s->slot;
    o[1] = !s->connecting ? 0 : s->fail_side == 1 ? 2 : s->fail_side == 0 ? 3 : 4;
    o[2] = (double)s->d[0].bytes;
    o[3] = (double)s->d[1].bytes;
    o[4] = s->reset != 0;
    o[5] = s->err;
    o[6] = sess_gives_back(s) ? s->fd[0] : -1;
  }
  if (call) {
    /* JS before the frees: a session that connected and ended in this batch is still there
     * (spliceStats, its fds' MPTCP_FULL_INFO) while JS handles its connect record. */
    napi_value u;
    napi_get_undefined(env, &u);
    napi_call_function(env, u, cb, 1, &arr, NULL);
  }
  for (uint32_t i = 0; i < post->n; i++) {
    if (post->item[i] & 1u) continue;
    struct dc_sess *s = (struct dc_sess *)post->item[i];
    int kept = sess_gives_back(s) ? s->fd[0] : -1;
    if (kept < 0 || !call) close(s->fd[0]); /* a kept client fd is JS's now, unless JS was not called */
    close(s->fd[1]);
    free(s->d[0].early);
    free(s->d[1].early);
    r->slots[s->slot] = NULL;
    r->freelist[r->nfree++] = s->slot;
    free(s);
    if (r->active > 0 && --r->active == 0 && env != NULL) napi_unref_threadsafe_function(env, r->tsfn);
  }
  free(post);
}

static void splice_cleanup(void *arg) {
  struct dc_relay *r = arg;
  __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  ssize_t w = write(r->ev, &one, sizeof one);
  (void)w;
  pthread_join(r->thread, NULL);
  /* Bulk workers: stop them and wait until every one has let go (a blocked writer within
   * DC_BULK_TIMEO_MS); their sessions are left as the relay thread's are. */
  pthread_mutex_lock(&r->mu);
  for (struct dc_sess *x = r->bulk_live_list; x != NULL; x = x->next_bulk) {
    __atomic_store_n(&x->bulk_abort, 1, __ATOMIC_SEQ_CST);
    bulk_stop(x);
  }
  while (r->workers > 0) pthread_cond_wait(&r->bulk_cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
  close(r->ep);
  close(r->ev);
  /* r stays allocated: the tsfn may still be finalised after this hook. */
}

static struct dc_relay *relay_of(napi_env env) {
  void *p = NULL;
  napi_get_instance_data(env, &p);
  return p;
}

/* spliceInit(onBatch(records: Float64Array)) — once per environment (records: see splice_done_js) */
static napi_value js_splice_init(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  if (relay_of(env) != NULL) return undef(env);
  struct dc_relay *r = calloc(1, sizeof *r);
  if (r == NULL) return throw_errno(env, "spliceInit", ENOMEM);
  r->ep = epoll_create1(EPOLL_CLOEXEC);
  if (r->ep < 0) {
    int e = errno;
    free(r);
    return throw_errno(env, "epoll_create1", e);
  }
  r->ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN, .data = {.ptr = NULL}};
  if (r->ev < 0 || epoll_ctl(r->ep, EPOLL_CTL_ADD, r->ev, &e) < 0) {
    int er = errno;
    if (r->ev >= 0) close(r->ev);
    close(r->ep);
    free(r);
    return throw_errno(env, "eventfd", er);
  }
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->bulk_cv, NULL);
  r->bulk_at = -1; /* off until spliceBulk (the product sets it from DUOCELL_RELAY_BULK_MIB) */
  r->bulk_max = 0;
  napi_value name;
  napi_create_string_utf8(env, "duocell:splice", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, r, splice_done_js, &r->tsfn) != napi_ok) {
    close(r->ev);
    close(r->ep);
    free(r);
    return throw_errno(env, "spliceInit", EINVAL);
  }
  napi_unref_threadsafe_function(env, r->tsfn);
  int rc = pthread_create(&r->thread, NULL, relay_main, r);
  if (rc != 0) {
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
    close(r->ev);
    close(r->ep);
    free(r);
    return throw_errno(env, "pthread_create", rc);
  }
  napi_set_instance_data(env, r, NULL, NULL);
  /* Added after the tsfn: cleanup hooks run last-in first-out, so the thread stops first. */
  napi_add_env_cleanup_hook(env, splice_cleanup, r);
  return undef(env);
}

static struct dc_sess *table_get(struct dc_relay *r, napi_env env, napi_value v) {
  double id = -1;
  napi_get_value_double(env, v, &id);
  if (!(id >= 0) || id > 9007199254740991.0) return NULL;
  uint64_t x = (uint64_t)id;
  uint32_t slot = (uint32_t)(x & (DC_MAX_SLOTS - 1));
  uint32_t gen = (uint32_t)(x >> DC_SLOT_BITS);
  if (slot >= r->used) return NULL;
  struct dc_sess *s = r->slots[slot];
  return s != NULL && s->gen == gen ? s : NULL;
}

static int table_put(struct dc_relay *r, struct dc_sess *s) {
  uint32_t slot;
  if (r->nfree > 0) {
    slot = r->freelist[--r->nfree];
  } else {
    if (r->used == r->nslots) {
      if (r->nslots >= DC_MAX_SLOTS) return -1;
      uint32_t n = r->nslots == 0 ? 1024 : r->nslots * 2;
      struct dc_sess **ns = realloc(r->slots, n * sizeof *ns);
      if (ns == NULL) return -1;
      r->slots = ns;
      uint32_t *nf = realloc(r->freelist, n * sizeof *nf);
      if (nf == NULL) return -1;
      r->freelist = nf;
      r->nslots = n;
    }
    slot = r->used++;
  }
  r->gen = (r->gen + 1) & 0x7fffffffu;
  s->slot = slot;
  s->gen = r->gen;
  r->slots[slot] = s;
  return 0;
}

static int copy_early(napi_env env, napi_value v, struct dc_dir *d) {
  bool isbuf = false;
  napi_is_buffer(env, v, &isbuf);
  if (!isbuf) return 0;
  void *data = NULL;
  size_t len = 0;
  napi_get_buffer_info(env, v, &data, &len);
  if (len == 0) return 0;
  d->early = malloc(len);
  if (d->early == NULL) return -1;
  memcpy(d->early, data, len);
  d->early_len = len;
  return 0;
}

/*
 * spliceStart(clientFd, serverFd, earlyUp?, earlyDown?) -> id
 * Relays between duplicates of the two fds from now on; the caller closes its own handles
 * (without shutdown) right after. earlyUp/earlyDown: bytes already read from the client/server
 * by JS, sent to the other side before anything else.
 */
static napi_value js_splice_start(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t argc = 5;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t flags = argc > 4 ? arg_i32(env, argv[4]) : 0;
  if (argc < 2) {
    napi_throw_type_error(env, "DC_NATIVE_ARGS", "missing arguments");
    return NULL;
  }
  struct dc_relay *r = relay_of(env);
  if (r == NULL) return throw_errno(env, "spliceStart (spliceInit first)", EINVAL);
  int cfd = arg_i32(env, argv[0]), sfd = arg_i32(env, argv[1]);
  if (cfd < 0 || sfd < 0 || cfd == sfd) return throw_errno(env, "spliceStart", EBADF);
  struct dc_sess *s = calloc(1, sizeof *s);
  if (s == NULL) return throw_errno(env, "spliceStart", ENOMEM);
  for (int k = 0; k < 2; k++) {
    struct dc_dir *d = &s->d[k];
    d->s = s;
    d->pr = d->pw = -1;
    d->cap = DC_PIPE_DEFAULT;
    s->end[k].s = s;
    s->end[k].side = k;
    s->fd[k] = -1;
  }
  if ((argc > 2 && copy_early(env, argv[2], &s->d[0]) < 0) || (argc > 3 && copy_early(env, argv[3], &s->d[1]) < 0)) {
    free(s->d[0].early);
    free(s);
    return throw_errno(env, "spliceStart", ENOMEM);
  }
  int err = 0;
  const char *what = "dup";
  int adopt = (flags & DC_START_ADOPT) != 0;
  s->connecting = (flags & DC_START_CONNECTING) != 0;
  s->keep_client = s->connecting && (flags & DC_START_KEEP_CLIENT) != 0;
  s->plain = s->connecting && (flags & DC_START_PLAIN) != 0;
  if (adopt) {
    s->fd[0] = cfd;
    s->fd[1] = sfd;
  } else {
    s->fd[0] = fcntl(cfd, F_DUPFD_CLOEXEC, 3);
    if (s->fd[0] < 0) err = errno;
    if (err == 0) {
      s->fd[1] = fcntl(sfd, F_DUPFD_CLOEXEC, 3);
      if (s->fd[1] < 0) err = errno;
    }
  }
  if (err == 0 && table_put(r, s) < 0) {
    err = ENFILE;
    what = "spliceStart (session table)";
  }
  if (err != 0) {
    if (!adopt && s->fd[0] >= 0) close(s->fd[0]);
    if (!adopt && s->fd[1] >= 0) close(s->fd[1]);
    free(s->d[0].early);
    free(s->d[1].early);
    free(s);
    return throw_errno(env, what, err);
  }
  s->d[0].src = s->fd[0];
  s->d[0].dst = s->fd[1];
  s->d[1].src = s->fd[1];
  s->d[1].dst = s->fd[0];
  s->last_ms = now_ms();
  double id = (double)s->gen * (double)DC_MAX_SLOTS + (double)s->slot;
  if (r->active++ == 0) napi_ref_threadsafe_function(env, r->tsfn);
  pthread_mutex_lock(&r->mu);
  s->next_start = r->starts;
  r->starts = s;
  pthread_mutex_unlock(&r->mu);
  relay_wake(r);
  napi_value out;
  napi_create_double(env, id, &out);
  return out;
}

/* spliceStats(id, out: Float64Array(5)) -> bool: [up, down, lastActivityMs, clientFd, serverFd] */
static napi_value js_splice_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  struct dc_relay *r = relay_of(env);
  struct dc_sess *s = r == NULL ? NULL : table_get(r, env, argv[0]);
  napi_value res;
  if (s == NULL) {
    napi_get_boolean(env, false, &res);
    return res;
  }
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  bool is = false;
  napi_is_typedarray(env, argv[1], &is);
  if (!is || napi_get_typedarray_info(env, argv[1], &type, &len, &data, NULL, NULL) != napi_ok || type != napi_float64_array || len < 5)
    return throw_errno(env, "spliceStats", EINVAL);
  double *o = data;
  o[0] = (double)__atomic_load_n(&s->d[0].bytes, __ATOMIC_RELAXED);
  o[1] = (double)__atomic_load_n(&s->d[1].bytes, __ATOMIC_RELAXED);
  o[2] = (double)__atomic_load_n(&s->last_ms, __ATOMIC_RELAXED);
  o[3] = s->fd[0];
  o[4] = s->fd[1];
  napi_get_boolean(env, true, &res);
  return res;
}

/* spliceAbort(id) -> bool: reset both sides of a live spliced session (completion follows) */
static napi_value js_splice_abort(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  struct dc_relay *r = relay_of(env);
  struct dc_sess *s = r == NULL ? NULL : table_get(r, env, argv[0]);
  napi_value res;
  bool ok = false;
  if (s != NULL) {
    int wake = 0;
    pthread_mutex_lock(&r->mu);
    if (!s->done) {
      ok = true;
      if (!s->abort_queued) {
        s->abort_queued = 1;
        s->next_abort = r->aborts;
        r->aborts = s;
        wake = 1;
      }
    }
    pthread_mutex_unlock(&r->mu);
    if (wake) relay_wake(r);
  }
  napi_get_boolean(env, ok, &res);
  return res;
}

/* spliceFinHold(joins, capMs): from now on a client's FIN towards an MPTCP upstream waits until
 * the upstream has `joins` extra subflows, all established and carrying, at most capMs
 * (joins 0 or capMs 0: no hold). */
static napi_value js_splice_fin_hold(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  struct dc_relay *r = relay_of(env);
  if (r == NULL) return throw_errno(env, "spliceFinHold (spliceInit first)", EINVAL);
  int joins = arg_i32(env, argv[0]), ms = arg_i32(env, argv[1]);
  __atomic_store_n(&r->hold_joins, joins < 0 ? 0 : joins > DC_MAX_SUBFLOWS - 1 ? DC_MAX_SUBFLOWS - 1 : joins, __ATOMIC_RELAXED);
  __atomic_store_n(&r->hold_ms, ms < 0 ? 0 : ms, __ATOMIC_RELAXED);
  return undef(env);
}

/* spliceBulk(atBytes, maxSessions): from now on a session one of whose directions has carried
 * atBytes (0: any byte; < 0: never) moves to two blocking workers of its own, at most
 * maxSessions such sessions at a time. */
static napi_value js_splice_bulk(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  struct dc_relay *r = relay_of(env);
  if (r == NULL) return throw_errno(env, "spliceBulk (spliceInit first)", EINVAL);
  double at = -1;
  napi_get_value_double(env, argv[0], &at);
  int max = arg_i32(env, argv[1]);
  __atomic_store_n(&r->bulk_at, at != at || at < 0 ? (int64_t)-1 : (int64_t)at, __ATOMIC_RELAXED);
  __atomic_store_n(&r->bulk_max, max < 0 ? 0 : max > 4096 ? 4096 : max, __ATOMIC_RELAXED);
  return undef(env);
}

/* spliceBulkStats() -> [sessions moved so far, worker threads running, idle sessions taken back] */
static napi_value js_splice_bulk_stats(napi_env env, napi_callback_info info) {
  (void)info;
  struct dc_relay *r = relay_of(env);
  double moved = 0, workers = 0, idled = 0;
  if (r != NULL) {
    moved = (double)__atomic_load_n(&r->bulk_moved, __ATOMIC_RELAXED);
    idled = (double)__atomic_load_n(&r->bulk_idled, __ATOMIC_RELAXED);
    pthread_mutex_lock(&r->mu);
    workers = r->workers;
    pthread_mutex_unlock(&r->mu);
  }
  napi_value arr, v;
  napi_create_array_with_length(env, 3, &arr);
  napi_create_double(env, moved, &v);
  napi_set_element(env, arr, 0, v);
  napi_create_double(env, workers, &v);
  napi_set_element(env, arr, 1, v);
  napi_create_double(env, idled, &v);
  napi_set_element(env, arr, 2, v);
  return arr;
}

/* spliceActive() -> live spliced sessions (completion not yet delivered) */
static napi_value js_splice_active(napi_env env, napi_callback_info info) {
  struct dc_relay *r = relay_of(env);
  return ret_i32(env, r == NULL ? 0 : (int32_t)r->active);
}

/* ======================================================================================
 * Readiness-driven reads of a character device (the modem's cdc-wdm QMI port, or a pty).
 *
 *   fdWatch(fd, onData(buf | null, errno)) -> handle      fd must be O_NONBLOCK
 *     uv_poll(fd, READABLE) ──► read() until EAGAIN ──► onData(buf, 0) per read
 *                                └ 0 bytes / error ──► onData(null, errno or 0), watch stops
 *   fdUnwatch(handle)  stops the poll and frees the watcher (uv_close); the caller then closes fd
 *
 * Nothing is ever blocked in the thread pool: after fdUnwatch no read of this fd is pending, so
 * closing and reopening the device cannot leave a reader that steals the next reply. Each read()
 * of a cdc-wdm device returns one whole QMUX message. Main thread only.
 */
struct dc_watch {
  uv_poll_t h;
  napi_env env;
  napi_ref cb;
  int fd;
  int stopped;
  int dgram; /* a datagram socket: a read of 0 is an empty datagram, not the end */
};

static void watch_closed(uv_handle_t *h) {
  struct dc_watch *w = h->data;
  napi_delete_reference(w->env, w->cb);
  free(w);
}

static void watch_call(struct dc_watch *w, const char *data, size_t len, int err) {
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, argv[2], global, res;
  napi_get_reference_value(env, w->cb, &cb);
  napi_get_global(env, &global);
  if (data != NULL) napi_create_buffer_copy(env, len, data, NULL, &argv[0]);
  else napi_get_null(env, &argv[0]);
  napi_create_int32(env, err, &argv[1]);
  if (cb != NULL && napi_call_function(env, global, cb, 2, argv, &res) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void watch_cb(uv_poll_t *h, int status, int events) {
  struct dc_watch *w = h->data;
  if (w->stopped) return;
  if (status < 0) {
    w->stopped = 1;
    uv_poll_stop(h);
    watch_call(w, NULL, 0, -status);
    return;
  }
  static char buf[65536];
  /* bounded: at most 64 reads per wake-up, so a babbling device cannot starve the loop */
  for (int i = 0; i < 64 && !w->stopped; i++) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n > 0 || (n == 0 && w->dgram)) {
      watch_call(w, buf, (size_t)n, 0);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    int e = n == 0 ? 0 : errno;
    w->stopped = 1;
    uv_poll_stop(h);
    watch_call(w, NULL, 0, e);
    return;
  }
}

/* fdWatch(fd, onData[, dgram]) -> external handle */
static napi_value js_fd_watch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, "DC_NATIVE_ARGS", "missing arguments");
    return NULL;
  }
  bool dgram = false;
  if (argc > 2) napi_get_value_bool(env, argv[2], &dgram);
  int fd = arg_i32(env, argv[0]);
  if (fd < 0) return throw_errno(env, "fdWatch", EBADF);
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL) return throw_errno(env, "fdWatch (event loop)", EINVAL);
  struct dc_watch *w = calloc(1, sizeof *w);
  if (w == NULL) return throw_errno(env, "fdWatch", ENOMEM);
  w->env = env;
  w->fd = fd;
  w->dgram = dgram ? 1 : 0;
  int rc = uv_poll_init(loop, &w->h, fd);
  if (rc < 0) {
    free(w);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  w->h.data = w;
  napi_create_reference(env, argv[1], 1, &w->cb);
  rc = uv_poll_start(&w->h, UV_READABLE, watch_cb);
  if (rc < 0) {
    w->stopped = 1;
    uv_close((uv_handle_t *)&w->h, watch_closed);
    return throw_errno(env, "uv_poll_start", -rc);
  }
  napi_value ext;
  napi_create_external(env, w, NULL, NULL, &ext);
  return ext;
}

/* fdUnwatch(handle): stop and free; call exactly once per handle */
static napi_value js_fd_unwatch(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  void *p = NULL;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) return throw_errno(env, "fdUnwatch", EINVAL);
  struct dc_watch *w = p;
  w->stopped = 1;
  uv_poll_stop(&w->h);
  uv_close((uv_handle_t *)&w->h, watch_closed);
  return undef(env);
}

/* ======================================================================================
 * The fast path's native socket calls (services/proxy/fast.ts): a listener accepted in batches
 * without a Node socket per connection, a non-blocking connect, and a reset close.
 *
 *   acceptWatch(listenFd, onBatch(list, errno)) -> handle     uv_poll(READABLE) on the listen fd
 *     accept4 until EAGAIN, at most DC_ACCEPT_BATCH ──► onBatch([fd, remote, rport, local,
 *     lport, ...], 0): one JS call per wake-up. EMFILE/ENFILE (or any other accept error):
 *     the poll stops and onBatch(list so far, errno); the caller resumes with acceptResume()
 *     after a pause (the connections wait in the backlog).
 *   acceptUnwatch(handle)  stops and frees (uv_close); the caller closes the listen fd after.
 * Main thread only.
 * ==================================================================================== */
#define DC_ACCEPT_BATCH 128

struct dc_accept {
  uv_poll_t h;
  napi_env env;
  napi_ref cb;
  int fd;
  int stopped; /* the poll is stopped (error or unwatch) */
  int no_local; /* the caller knows the local address (a listener bound to one address, not
                 * transparent): no getsockname per connection, null in its place */
  int closed;
};

static void accept_closed(uv_handle_t *h) {
  struct dc_accept *a = h->data;
  napi_delete_reference(a->env, a->cb);
  free(a);
}

/* Dotted IPv4 text of 4 bytes into buf (at least 16 bytes): glibc's inet_ntop goes through
 * sprintf, which showed in the fast path's profile. */
static size_t ipv4_text(const uint8_t *b, char *buf) {
  size_t n = 0;
  for (int i = 0; i < 4; i++) {
    unsigned v = b[i];
    if (v >= 100) buf[n++] = (char)('0' + v / 100);
    if (v >= 10) buf[n++] = (char)('0' + v / 10 % 10);
    buf[n++] = (char)('0' + v % 10);
    if (i < 3) buf[n++] = '.';
  }
  buf[n] = 0;
  return n;
}

static napi_value addr_string(napi_env env, const struct sockaddr_storage *ss, int *port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const void *)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    *port = ntohs(a->sin6_port);
  } else if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const void *)ss;
    ipv4_text((const uint8_t *)&a->sin_addr, buf);
    *port = ntohs(a->sin_port);
  } else {
    *port = 0;
  }
  napi_value v;
  napi_create_string_latin1(env, buf, NAPI_AUTO_LENGTH, &v);
  return v;
}

static void accept_cb(uv_poll_t *h, int status, int events) {
  (void)events;
  struct dc_accept *a = h->data;
  if (a->stopped) return;
  napi_env env = a->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value list;
  napi_create_array(env, &list);
  uint32_t n = 0;
  int err = status < 0 ? -status : 0;
  for (int i = 0; i < DC_ACCEPT_BATCH && err == 0; i++) {
    struct sockaddr_storage rs, ls;
    socklen_t rl = sizeof rs, ll = sizeof ls;
    int fd = accept4(a->fd, (struct sockaddr *)&rs, &rl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      err = errno;
      break;
    }
    int rport = 0, lport = 0;
    napi_value v[5];
    napi_create_int32(env, fd, &v[0]);
    v[1] = addr_string(env, &rs, &rport);
    napi_create_int32(env, rport, &v[2]);
    if (a->no_local) {
      napi_get_null(env, &v[3]);
    } else {
      /* the local address: a TPROXY'd connection's original destination */
      if (getsockname(fd, (struct sockaddr *)&ls, &ll) < 0) memset(&ls, 0, sizeof ls);
      v[3] = addr_string(env, &ls, &lport);
    }
    napi_create_int32(env, lport, &v[4]);
    for (int k = 0; k < 5; k++) napi_set_element(env, list, n++, v[k]);
  }
  if (err != 0) {
    a->stopped = 1;
    uv_poll_stop(h);
  }
  if (n > 0 || err != 0) {
    napi_value cb, argv[2], global, res;
    napi_get_reference_value(env, a->cb, &cb);
    napi_get_global(env, &global);
    argv[0] = list;
    napi_create_int32(env, err, &argv[1]);
    if (cb != NULL && napi_call_function(env, global, cb, 2, argv, &res) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value exc;
        napi_get_and_clear_last_exception(env, &exc);
        napi_fatal_exception(env, exc);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static struct dc_accept *accept_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* acceptWatch(listenFd, onBatch[, noLocal]) -> external handle. noLocal: the caller knows every
 * connection's local address (no getsockname; null in the list instead) */
static napi_value js_accept_watch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    napi_throw_type_error(env, "DC_NATIVE_ARGS", "missing arguments");
    return NULL;
  }
  bool no_local = false;
  if (argc > 2) napi_get_value_bool(env, argv[2], &no_local);
  int fd = arg_i32(env, argv[0]);
  if (fd < 0) return throw_errno(env, "acceptWatch", EBADF);
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL) return throw_errno(env, "acceptWatch (event loop)", EINVAL);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return throw_errno(env, "fcntl(O_NONBLOCK)", errno);
  struct dc_accept *a = calloc(1, sizeof *a);
  if (a == NULL) return throw_errno(env, "acceptWatch", ENOMEM);
  a->env = env;
  a->fd = fd;
  a->no_local = no_local;
  int rc = uv_poll_init(loop, &a->h, fd);
  if (rc < 0) {
    free(a);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  a->h.data = a;
  napi_create_reference(env, argv[1], 1, &a->cb);
  rc = uv_poll_start(&a->h, UV_READABLE, accept_cb);
  if (rc < 0) {
    a->stopped = a->closed = 1;
    uv_close((uv_handle_t *)&a->h, accept_closed);
    return throw_errno(env, "uv_poll_start", -rc);
  }
  napi_value ext;
  napi_create_external(env, a, NULL, NULL, &ext);
  return ext;
}

/* acceptResume(handle): poll again after an accept error stopped it */
static napi_value js_accept_resume(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  struct dc_accept *a = accept_of(env, argv[0]);
  if (a == NULL) return throw_errno(env, "acceptResume", EINVAL);
  if (a->closed || !a->stopped) return undef(env);
  int rc = uv_poll_start(&a->h, UV_READABLE, accept_cb);
  if (rc < 0) return throw_errno(env, "uv_poll_start", -rc);
  a->stopped = 0;
  return undef(env);
}

/* acceptUnwatch(handle): stop and free; call exactly once per handle */
static napi_value js_accept_unwatch(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  struct dc_accept *a = accept_of(env, argv[0]);
  if (a == NULL || a->closed) return throw_errno(env, "acceptUnwatch", EINVAL);
  a->stopped = a->closed = 1;
  uv_poll_stop(&a->h);
  uv_close((uv_handle_t *)&a->h, accept_closed);
  return undef(env);
}

/* connectStart(fd, host, port): a non-blocking connect; returns once it is in flight (or done).
 * Throws the errno of a connect that failed at once. */
static napi_value js_connect_start(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  struct sockaddr_storage ss;
  socklen_t len;
  if (fill_addr(env, argv[1], arg_i32(env, argv[2]), &ss, &len) < 0) return throw_errno(env, "connect (not a numeric address)", EINVAL);
  if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS && errno != EINTR) return throw_errno(env, "connect", errno);
  return undef(env);
}

/* sockName(fd) -> [address, port] */
static napi_value js_sock_name(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(arg_i32(env, argv[0]), (struct sockaddr *)&ss, &len) < 0) return throw_errno(env, "getsockname", errno);
  int port = 0;
  napi_value out, a = addr_string(env, &ss, &port), p;
  napi_create_int32(env, port, &p);
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, a);
  napi_set_element(env, out, 1, p);
  return out;
}

/* isMptcp(fd) -> bool: MPTCP_INFO answers (no JS exception for a plain TCP socket) */
static napi_value js_is_mptcp(napi_env env, napi_callback_info info) {
  napi_value argv[1], res;
  if (get_args(env, info, 1, argv)) return NULL;
  napi_get_boolean(env, is_mptcp_fd(arg_i32(env, argv[0])) != 0, &res);
  return res;
}

/* closeReset(fd): close with SO_LINGER {1, 0}, so the peer gets a RST */
static napi_value js_close_reset(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return undef(env);
}

/* ======================================================================================
 * Peeking at a client's first bytes without taking them (the transparent front's SNI rules,
 * docs/proxies.md "Matching by TLS SNI"). The bytes stay queued in the kernel for whoever reads
 * next (the spliced relay), exactly as if nobody had looked.
 *
 *   peek(fd, max) -> Buffer | null     recv(MSG_PEEK | MSG_DONTWAIT) of up to `max` octets;
 *                                      null when nothing is queued yet (EAGAIN); an empty Buffer
 *                                      at the end of the stream; throws on an error (ECONNRESET)
 *   whenReadable(fd, lowat, cb(errno)) -> handle
 *       SO_RCVLOWAT = lowat (so poll says readable only once that many octets are queued, or at
 *       FIN/error), then a one-shot uv_poll: the first readiness stops and closes the poll,
 *       puts SO_RCVLOWAT back to 1 and calls cb(0) (or cb(errno) when polling failed).
 *       The fd must be a socket no libuv handle is polling (a paused net.Socket is not): else
 *       it throws EEXIST.
 *   cancelReadable(handle)             before cb ran: the same stop and close, no call
 *
 * The TypeScript face polls and peeks a duplicate of the socket's fd (dupFd), never Node's own
 * number: its epoll registration and number stay the poll's even if Node closes its fd
 * meanwhile (shutdown), and the duplicate is closed only after the poll is stopped (which
 * removes the registration synchronously). Main thread only.
 */
struct dc_readable {
  uv_poll_t h;
  napi_env env;
  napi_ref cb;
  int fd;
  int done;
};

static void readable_closed(uv_handle_t *h) {
  struct dc_readable *w = h->data;
  napi_delete_reference(w->env, w->cb);
  free(w);
}

static void readable_finish(struct dc_readable *w) {
  int one = 1;
  w->done = 1;
  uv_poll_stop(&w->h);
  setsockopt(w->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
  uv_close((uv_handle_t *)&w->h, readable_closed);
}

static void readable_cb(uv_poll_t *h, int status, int events) {
  (void)events;
  struct dc_readable *w = h->data;
  if (w->done) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb = NULL, global, arg, res;
  napi_get_reference_value(env, w->cb, &cb);
  readable_finish(w); /* the reference stays valid until the close callback */
  napi_get_global(env, &global);
  napi_create_int32(env, status < 0 ? -status : 0, &arg);
  if (cb != NULL && napi_call_function(env, global, cb, 1, &arg, &res) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* whenReadable(fd, lowat, cb) -> external handle */
static napi_value js_when_readable(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  int lowat = arg_i32(env, argv[1]);
  if (fd < 0) return throw_errno(env, "whenReadable", EBADF);
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL) return throw_errno(env, "whenReadable (event loop)", EINVAL);
  if (lowat < 1) lowat = 1;
  /* Best effort: a socket without SO_RCVLOWAT support wakes on every segment (the caller copes). */
  setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
  struct dc_readable *w = calloc(1, sizeof *w);
  if (w == NULL) return throw_errno(env, "whenReadable", ENOMEM);
  w->env = env;
  w->fd = fd;
  int rc = uv_poll_init(loop, &w->h, fd);
  if (rc < 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    free(w);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  w->h.data = w;
  napi_create_reference(env, argv[2], 1, &w->cb);
  rc = uv_poll_start(&w->h, UV_READABLE | UV_DISCONNECT, readable_cb);
  if (rc < 0) {
    readable_finish(w);
    return throw_errno(env, "uv_poll_start", -rc);
  }
  napi_value ext;
  napi_create_external(env, w, NULL, NULL, &ext);
  return ext;
}

/* cancelReadable(handle): only before its callback ran (the TypeScript face keeps track) */
static napi_value js_cancel_readable(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  void *p = NULL;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) return throw_errno(env, "cancelReadable", EINVAL);
  struct dc_readable *w = p;
  if (!w->done) readable_finish(w);
  return undef(env);
}

/* dupFd(fd) -> a new close-on-exec descriptor of the same socket (the peek works on its own
 * descriptor: Node closing its fd during a peek can then neither reuse the number under the poll
 * nor drop the poll's epoll registration; the caller closes the duplicate with close()) */
static napi_value js_dup_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  int fd = fcntl(arg_i32(env, argv[0]), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "dup", errno);
  return ret_i32(env, fd);
}

/* peek(fd, max) -> Buffer | null */
static napi_value js_peek(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  int max = arg_i32(env, argv[1]);
  if (max < 1 || max > (1 << 20)) return throw_errno(env, "peek", EINVAL);
  void *data = NULL;
  napi_value buf;
  if (napi_create_buffer(env, (size_t)max, &data, &buf) != napi_ok) return throw_errno(env, "peek", ENOMEM);
  ssize_t n;
  do n = recv(fd, data, (size_t)max, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return throw_errno(env, "recv(MSG_PEEK)", errno);
  }
  napi_value out, fn, global, args[2];
  /* buf.subarray(0, n): a view, no copy */
  napi_get_named_property(env, buf, "subarray", &fn);
  napi_create_int32(env, 0, &args[0]);
  napi_create_int32(env, (int32_t)n, &args[1]);
  (void)global;
  if (napi_call_function(env, buf, fn, 2, args, &out) != napi_ok) return NULL;
  return out;
}

#define EXPORT(name, fn)                                                   \
  do {                                                                     \
    napi_value f;                                                          \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);       \
    napi_set_named_property(env, exports, name, f);                        \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  /* the SNI peek (below fdWatch) */
  EXPORT("whenReadable", js_when_readable);
  EXPORT("cancelReadable", js_cancel_readable);
  EXPORT("peek", js_peek);
  EXPORT("dupFd", js_dup_fd);
  EXPORT("socket", js_socket);
  EXPORT("setInt", js_set_int);
  EXPORT("getInt", js_get_int);
  EXPORT("bindToDevice", js_bind_to_device);
  EXPORT("bind", js_bind);
  EXPORT("listen", js_listen);
  EXPORT("close", js_close);
  EXPORT("getBuf", js_get_buf);
  EXPORT("fullInfo", js_full_info);
  EXPORT("sdNotify", js_sd_notify);
  EXPORT("countFds", js_count_fds);
  EXPORT("unixDgram", js_unix_dgram);
  EXPORT("spliceInit", js_splice_init);
  EXPORT("spliceStart", js_splice_start);
  EXPORT("spliceStats", js_splice_stats);
  EXPORT("spliceAbort", js_splice_abort);
  EXPORT("spliceActive", js_splice_active);
  EXPORT("spliceFinHold", js_splice_fin_hold);
  EXPORT("spliceBulk", js_splice_bulk);
  EXPORT("spliceBulkStats", js_splice_bulk_stats);
  EXPORT("finHoldReady", js_fin_hold_ready);
  EXPORT("fdWatch", js_fd_watch);
  EXPORT("fdUnwatch", js_fd_unwatch);
  EXPORT("acceptWatch", js_accept_watch);
  EXPORT("acceptResume", js_accept_resume);
  EXPORT("acceptUnwatch", js_accept_unwatch);
  EXPORT("connectStart", js_connect_start);
  EXPORT("sockName", js_sock_name);
  EXPORT("closeReset", js_close_reset);
  EXPORT("isMptcp", js_is_mptcp);
  EXPORT("pingSocket", js_ping_socket);
  EXPORT("sendTo", js_send_to);
  EXPORT("localPort", js_local_port);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
