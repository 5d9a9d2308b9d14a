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
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* countFds() -> number of open descriptors of this process (leak checks) */
static napi_value js_count_fds(napi_env env, napi_callback_info info) {
  int n = 0;
  for (int fd = 0; fd < 65536; fd++)
    if (fcntl(fd, F_GETFD) != -1) n++;
  return ret_i32(env, n);
}

#define EXPORT(name, fn)                                                   \
  do {                                                                     \
    napi_value f;                                                          \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);       \
    napi_set_named_property(env, exports, name, f);                        \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
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
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
