/* The TCP transport: ranks in separate processes or machines, joined in a
 * full mesh of TCP connections (IPv4).
 *
 * Setup.  lk_tcp_new_id opens a listening socket and starts a detached
 * rendezvous thread; the id carries the socket's address and port.  Each
 * rank (lk_tcp_join) connects to the rendezvous, opens its own listener on
 * the local address it reached the rendezvous from, and registers
 * {nonce, nranks, rank, listener}.  Once all nranks ranks have registered,
 * the rendezvous sends every rank the table of listeners and exits.  On a
 * bad registration (the ranks disagree on the group size, a rank joins
 * twice or is out of range), a rank that leaves early, or its timeout, it
 * sends every rank the reason instead (naming the ranks that never joined)
 * and keeps answering late ranks with it until the timeout.  Then for each
 * pair the higher rank connects to the lower one's listener and sends a
 * hello {nonce, rank}, which the lower rank acknowledges.
 *
 * Data.  A message is a 16-byte header {magic, sequence number of the
 * ordered pair of ranks, length} and the payload, written straight from and
 * read straight into the caller's buffers (sendmsg/recvmsg, several
 * messages per call).  exchange() drives all its peers' sockets together
 * with nonblocking I/O and poll(); an eventfd in the poll set lets abort()
 * wake it from another thread.
 *
 * Failure.  Any failure (a peer gone, a length mismatch, the deadline,
 * abort) fails the endpoint for good and resets its connections, so that the
 * peers' pending operations fail at once with "rank R is gone" and a
 * failure spreads through the group instead of waiting out every rank's
 * timeout.
 *
 * Wire integers are big-endian. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "comm/xport.h"
#include "core/error.h"
#include "core/util.h"

#define LK_TCP_VERSION 1u
#define LK_TCP_MAX_RANKS 65536u
#define LK_TCP_REG_MAGIC 0x4c4b5452u   /* "LKTR": registration */
#define LK_TCP_REPLY_MAGIC 0x4c4b5441u /* "LKTA": the rendezvous' answer */
#define LK_TCP_HELLO_MAGIC 0x4c4b5448u /* "LKTH" */
#define LK_TCP_ACK_MAGIC 0x4c4b544bu   /* "LKTK" */
#define LK_TCP_MSG_MAGIC 0x4c4b544du   /* "LKTM": data message header */
#define LK_TCP_GIVEUP 'T'              /* a registered rank's timeout passed */

enum {
  LK_TCP_REG_BYTES = 32,   /* magic, version, nonce(8), nranks, rank, ip, port(2), 0(2) */
  LK_TCP_REPLY_BYTES = 16, /* magic, status, nranks, payload length */
  LK_TCP_HELLO_BYTES = 24, /* magic, version, nonce(8), rank, nranks */
  LK_TCP_ACK_BYTES = 8,    /* magic, status */
  LK_TCP_HDR_BYTES = 16,   /* magic, sequence, length(8) */
  LK_TCP_ENTRY_BYTES = 8,  /* table entry: ip, port(2), 0(2) */
  LK_TCP_MSG_MAX = 1024,   /* error texts */
  LK_TCP_IOV = 64          /* iovecs per sendmsg/recvmsg */
};

/* How long the rendezvous keeps trying to deliver its answers after its
 * timeout, and how long a rank that gave up waits for the reason. */
#define LK_TCP_GRACE_NS 1000000000ull

/* ---- bytes, addresses, environment --------------------------------------- */

static void lk_tcp_put16(unsigned char* p, uint16_t v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}
static void lk_tcp_put32(unsigned char* p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}
static void lk_tcp_put64(unsigned char* p, uint64_t v) {
  lk_tcp_put32(p, (uint32_t)(v >> 32));
  lk_tcp_put32(p + 4, (uint32_t)v);
}
static uint16_t lk_tcp_get16(const unsigned char* p) {
  return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}
static uint32_t lk_tcp_get32(const unsigned char* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t lk_tcp_get64(const unsigned char* p) {
  return ((uint64_t)lk_tcp_get32(p) << 32) | lk_tcp_get32(p + 4);
}

typedef struct lk_tcp_addr {
  uint32_t ip;   /* host byte order */
  uint16_t port;
} lk_tcp_addr_t;

/* "a.b.c.d:port" in a struct, so it can be formatted inline. */
typedef struct lk_tcp_astr {
  char s[32];
} lk_tcp_astr_t;

static lk_tcp_astr_t lk_tcp_astr(lk_tcp_addr_t a) {
  lk_tcp_astr_t r;
  snprintf(r.s, sizeof r.s, "%u.%u.%u.%u:%u", a.ip >> 24, (a.ip >> 16) & 255u,
           (a.ip >> 8) & 255u, a.ip & 255u, (unsigned)a.port);
  return r;
}

static struct sockaddr_in lk_tcp_sin(lk_tcp_addr_t a) {
  struct sockaddr_in s;
  memset(&s, 0, sizeof s);
  s.sin_family = AF_INET;
  s.sin_port = htons(a.port);
  s.sin_addr.s_addr = htonl(a.ip);
  return s;
}

/* The id's data: ip(4), port(2), version(1). */
static void lk_tcp_id_put(lk_xport_id_t* id, lk_tcp_addr_t a) {
  lk_tcp_put32(id->data, a.ip);
  lk_tcp_put16(id->data + 4, a.port);
  id->data[6] = (unsigned char)LK_TCP_VERSION;
}

static double lk_tcp_secs(uint64_t ns) { return (double)ns / 1e9; }

/* LIGHTOS_COMM_TIMEOUT: seconds (> 0), default 300. */
static lightos_status_t lk_tcp_env_timeout(double* out) {
  const char* v = getenv("LIGHTOS_COMM_TIMEOUT");
  *out = 300.0;
  if (!v || !*v) return LIGHTOS_SUCCESS;
  char* end = NULL;
  errno = 0;
  double t = strtod(v, &end);
  while (end && *end && isspace((unsigned char)*end)) end++;
  if (errno || end == v || (end && *end) || !(t > 0) || !isfinite(t))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "LIGHTOS_COMM_TIMEOUT is \"%s\": expected a number of seconds > 0", v);
  *out = t > 1e9 ? 1e9 : t;
  return LIGHTOS_SUCCESS;
}

/* LIGHTOS_COMM_ADDR: an IPv4 address of this host, or unset. */
static lightos_status_t lk_tcp_env_addr(bool* set, uint32_t* ip) {
  const char* v = getenv("LIGHTOS_COMM_ADDR");
  *set = false;
  if (!v || !*v) return LIGHTOS_SUCCESS;
  struct in_addr a;
  if (inet_pton(AF_INET, v, &a) != 1 || a.s_addr == htonl(INADDR_ANY) ||
      a.s_addr == htonl(INADDR_BROADCAST) || IN_MULTICAST(ntohl(a.s_addr)))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "LIGHTOS_COMM_ADDR is \"%s\": expected an IPv4 address of this host "
                   "(a.b.c.d)",
                   v);
  *ip = ntohl(a.s_addr);
  *set = true;
  return LIGHTOS_SUCCESS;
}

/* LIGHTOS_COMM_PORT: the rendezvous port (1..65535), or 0 when unset. */
static lightos_status_t lk_tcp_env_port(uint16_t* port) {
  const char* v = getenv("LIGHTOS_COMM_PORT");
  *port = 0;
  if (!v || !*v) return LIGHTOS_SUCCESS;
  char* end = NULL;
  errno = 0;
  long p = strtol(v, &end, 10);
  while (end && *end && isspace((unsigned char)*end)) end++;
  if (errno || end == v || (end && *end) || p < 1 || p > 65535)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "LIGHTOS_COMM_PORT is \"%s\": expected a port number 1..65535", v);
  *port = (uint16_t)p;
  return LIGHTOS_SUCCESS;
}

/* The first non-loopback IPv4 address of an interface that is up, else
 * 127.0.0.1. */
static uint32_t lk_tcp_default_ip(void) {
  uint32_t ip = INADDR_LOOPBACK;
  struct ifaddrs* list = NULL;
  if (getifaddrs(&list) != 0) return ip;
  for (struct ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    struct sockaddr_in s;
    memcpy(&s, i->ifa_addr, sizeof s);
    uint32_t a = ntohl(s.sin_addr.s_addr);
    if (a == INADDR_ANY || (a >> 24) == 127) continue;
    ip = a;
    break;
  }
  freeifaddrs(list);
  return ip;
}

static uint64_t lk_tcp_nonce(void) {
  uint64_t v = 0;
  size_t got = 0;
  while (got < sizeof v) {
    ssize_t r = getrandom((unsigned char*)&v + got, sizeof v - got, 0);
    if (r > 0) got += (size_t)r;
    else if (r < 0 && errno == EINTR) continue;
    else break;
  }
  if (got < sizeof v) { /* no getrandom: mix what differs between processes */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^
         ((uint64_t)getpid() << 32) ^ lk_now_ns() ^ (uint64_t)(uintptr_t)&v;
  }
  return v ? v : 1;
}

/* ---- sockets --------------------------------------------------------------- */

static int lk_tcp_socket(void) {
  return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static void lk_tcp_close(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Closes with a reset (no lingering FIN handshake, unsent data dropped):
 * the peer's pending reads and writes fail at once. */
static void lk_tcp_reset(int* fd) {
  if (*fd < 0) return;
  struct linger l = {1, 0};
  (void)setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(*fd);
  *fd = -1;
}

/* A nonblocking listener on ip:port (0: the kernel picks); -1 with errno. */
static int lk_tcp_listen(uint32_t ip, uint16_t port, int backlog, lk_tcp_addr_t* out) {
  int fd = lk_tcp_socket();
  if (fd < 0) return -1;
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  lk_tcp_addr_t want = {ip, port};
  struct sockaddr_in s = lk_tcp_sin(want);
  socklen_t len = sizeof s;
  if (bind(fd, (struct sockaddr*)&s, sizeof s) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, (struct sockaddr*)&s, &len) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  out->ip = ip;
  out->port = ntohs(s.sin_port);
  return fd;
}

/* poll() until deadline_ns.  Returns the number of ready descriptors; 0
 * when the deadline passed or a signal interrupted (callers check the
 * clock); -1 on an error. */
static int lk_tcp_poll(struct pollfd* fds, nfds_t n, uint64_t deadline_ns) {
  uint64_t now = lk_now_ns();
  if (now >= deadline_ns) return 0;
  uint64_t left = deadline_ns - now;
  struct timespec ts;
  ts.tv_sec = (time_t)(left / 1000000000ull);
  ts.tv_nsec = (long)(left % 1000000000ull);
  int r = ppoll(fds, n, &ts, NULL);
  if (r < 0 && errno == EINTR) return 0;
  return r;
}

static void lk_tcp_nap(uint64_t ns, uint64_t deadline_ns) {
  uint64_t now = lk_now_ns();
  if (now >= deadline_ns) return;
  if (ns > deadline_ns - now) ns = deadline_ns - now;
  struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
  nanosleep(&ts, NULL);
}

enum { LK_IO_OK = 0, LK_IO_TIMEOUT = 1, LK_IO_EOF = 2, LK_IO_ERR = 3 };

/* Sends or receives exactly len bytes on a nonblocking socket by
 * deadline_ns.  LK_IO_ERR leaves the errno in *err. */
static int lk_tcp_io(int fd, void* buf, size_t len, bool out, uint64_t deadline_ns, int* err) {
  size_t done = 0;
  while (done < len) {
    ssize_t r = out ? send(fd, (char*)buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT)
                    : recv(fd, (char*)buf + done, len - done, MSG_DONTWAIT);
    if (r > 0) {
      done += (size_t)r;
      continue;
    }
    if (r == 0 && !out) return LK_IO_EOF;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      *err = errno;
      return LK_IO_ERR;
    }
    struct pollfd p = {fd, (short)(out ? POLLOUT : POLLIN), 0};
    int n = lk_tcp_poll(&p, 1, deadline_ns);
    if (n < 0) {
      *err = errno;
      return LK_IO_ERR;
    }
    if (n == 0 && lk_now_ns() >= deadline_ns) return LK_IO_TIMEOUT;
  }
  return LK_IO_OK;
}

/* Small nonblocking step for the setup handshakes: 1 done, 0 would block,
 * -1 end of stream, -2 error (errno). */
static int lk_tcp_step(int fd, unsigned char* buf, size_t* off, size_t len, bool out) {
  while (*off < len) {
    ssize_t r = out ? send(fd, buf + *off, len - *off, MSG_NOSIGNAL | MSG_DONTWAIT)
                    : recv(fd, buf + *off, len - *off, MSG_DONTWAIT);
    if (r > 0) {
      *off += (size_t)r;
      continue;
    }
    if (r == 0 && !out) return -1;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -2;
    return 0;
  }
  return 1;
}

/* "rank 3", "ranks 1, 4-7, 9" for the members of `set` that are false;
 * long lists end in "...". */
static void lk_tcp_fmt_missing(const bool* have, uint32_t n, char* buf, size_t cap) {
  size_t len = 0, count = 0;
  buf[0] = '\0';
  for (uint32_t i = 0; i < n; i++) count += !have[i];
  lk_sbprintf(buf, cap, &len, "%s", count == 1 ? "rank " : "ranks ");
  bool first = true;
  for (uint32_t i = 0; i < n; i++) {
    if (have[i]) continue;
    uint32_t j = i;
    while (j + 1 < n && !have[j + 1]) j++;
    if (len + 32 >= cap) {
      lk_sbprintf(buf, cap, &len, ", ...");
      break;
    }
    lk_sbprintf(buf, cap, &len, first ? "%u" : ", %u", i);
    if (j > i) lk_sbprintf(buf, cap, &len, "-%u", j);
    first = false;
    i = j;
  }
}

/* ---- the rendezvous ------------------------------------------------------- */

enum { LK_ROOT_GATHER, LK_ROOT_COMPLETE, LK_ROOT_FAILED };

typedef struct lk_tcp_rclient {
  int fd;
  int64_t rank;                          /* -1 until registered */
  unsigned char in[LK_TCP_REG_BYTES];
  size_t in_off;
  unsigned char* out;                    /* the answer being written, or NULL */
  size_t out_len, out_off;
  bool out_owned;
} lk_tcp_rclient_t;

typedef struct lk_tcp_root {
  int lfd;
  lk_tcp_addr_t addr;
  uint64_t nonce, deadline_ns;
  double timeout_s;
  int state;
  uint32_t nranks, joined, first_rank;   /* nranks 0 until the first registration */
  lk_tcp_addr_t* table;
  bool* have;
  lk_tcp_rclient_t* cl;
  size_t ncl, capcl;
  unsigned char* reply;                  /* the group's answer (table or failure) */
  size_t reply_len;
  struct pollfd* pf;
  size_t pfcap;
} lk_tcp_root_t;

static unsigned char* lk_tcp_make_reply(uint32_t status, uint32_t nranks, const void* payload,
                                        size_t len, size_t* out_len) {
  unsigned char* m = malloc(LK_TCP_REPLY_BYTES + len);
  if (!m) return NULL;
  lk_tcp_put32(m, LK_TCP_REPLY_MAGIC);
  lk_tcp_put32(m + 4, status);
  lk_tcp_put32(m + 8, nranks);
  lk_tcp_put32(m + 12, (uint32_t)len);
  if (len) memcpy(m + LK_TCP_REPLY_BYTES, payload, len);
  *out_len = LK_TCP_REPLY_BYTES + len;
  return m;
}

static void lk_tcp_rclient_drop(lk_tcp_rclient_t* c) {
  lk_tcp_close(&c->fd);
  if (c->out_owned) free(c->out);
  c->out = NULL;
  c->out_owned = false;
}

/* Gives one client the group's shared answer. */
static void lk_tcp_rclient_answer(lk_tcp_root_t* r, lk_tcp_rclient_t* c) {
  if (c->out || c->fd < 0) return;
  if (!r->reply) {
    lk_tcp_rclient_drop(c);
    return;
  }
  c->out = r->reply;
  c->out_len = r->reply_len;
  c->out_off = 0;
  c->out_owned = false;
}

/* Answers one client with its own error (a stranger or a late rank). */
static void lk_tcp_rclient_error(lk_tcp_rclient_t* c, lightos_status_t st, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lk_tcp_rclient_error(lk_tcp_rclient_t* c, lightos_status_t st, const char* fmt, ...) {
  char msg[LK_TCP_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t len = 0;
  unsigned char* m = lk_tcp_make_reply((uint32_t)st, 0, msg, strlen(msg), &len);
  if (!m) {
    lk_tcp_rclient_drop(c);
    return;
  }
  c->out = m;
  c->out_len = len;
  c->out_off = 0;
  c->out_owned = true;
}

/* Fails the group: every registered rank (and every later one) gets the
 * reason. */
static void lk_tcp_root_fail(lk_tcp_root_t* r, lightos_status_t st, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lk_tcp_root_fail(lk_tcp_root_t* r, lightos_status_t st, const char* fmt, ...) {
  if (r->state != LK_ROOT_GATHER) return;
  char msg[LK_TCP_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->state = LK_ROOT_FAILED;
  r->reply = lk_tcp_make_reply((uint32_t)st, r->nranks, msg, strlen(msg), &r->reply_len);
  for (size_t i = 0; i < r->ncl; i++)
    if (r->cl[i].rank >= 0) lk_tcp_rclient_answer(r, &r->cl[i]);
}

/* "2 of 4 ranks joined the rendezvous at A:P; never joined: ranks 1, 3". */
static void lk_tcp_root_missing(const lk_tcp_root_t* r, char* buf, size_t cap) {
  if (!r->nranks || !r->have) {
    snprintf(buf, cap, "no rank joined the rendezvous at %s", lk_tcp_astr(r->addr).s);
    return;
  }
  char miss[320];
  lk_tcp_fmt_missing(r->have, r->nranks, miss, sizeof miss);
  snprintf(buf, cap, "%u of %u ranks joined the rendezvous at %s; never joined: %s", r->joined,
           r->nranks, lk_tcp_astr(r->addr).s, miss);
}

static void lk_tcp_root_complete(lk_tcp_root_t* r) {
  size_t len = (size_t)r->nranks * LK_TCP_ENTRY_BYTES;
  unsigned char* t = calloc(1, len);
  if (!t) {
    lk_tcp_root_fail(r, LIGHTOS_OUT_OF_MEMORY, "the rendezvous at %s ran out of memory",
                     lk_tcp_astr(r->addr).s);
    return;
  }
  for (uint32_t i = 0; i < r->nranks; i++) {
    lk_tcp_put32(t + (size_t)i * LK_TCP_ENTRY_BYTES, r->table[i].ip);
    lk_tcp_put16(t + (size_t)i * LK_TCP_ENTRY_BYTES + 4, r->table[i].port);
  }
  r->reply = lk_tcp_make_reply(0, r->nranks, t, len, &r->reply_len);
  free(t);
  if (!r->reply) {
    lk_tcp_root_fail(r, LIGHTOS_OUT_OF_MEMORY, "the rendezvous at %s ran out of memory",
                     lk_tcp_astr(r->addr).s);
    return;
  }
  r->state = LK_ROOT_COMPLETE;
  lk_tcp_close(&r->lfd); /* nobody else may join */
  for (size_t i = 0; i < r->ncl; i++)
    if (r->cl[i].rank >= 0) lk_tcp_rclient_answer(r, &r->cl[i]);
}

static void lk_tcp_root_register(lk_tcp_root_t* r, lk_tcp_rclient_t* c) {
  const unsigned char* m = c->in;
  uint32_t magic = lk_tcp_get32(m), version = lk_tcp_get32(m + 4);
  uint64_t nonce = lk_tcp_get64(m + 8);
  uint32_t nranks = lk_tcp_get32(m + 16), rank = lk_tcp_get32(m + 20);
  lk_tcp_addr_t a = {lk_tcp_get32(m + 24), lk_tcp_get16(m + 28)};
  if (magic != LK_TCP_REG_MAGIC || version != LK_TCP_VERSION) {
    lk_tcp_rclient_error(c, LIGHTOS_INVALID_ARGUMENT,
                         "%s is a LightOS rendezvous, but the message was not a registration "
                         "of this version (%u)",
                         lk_tcp_astr(r->addr).s, LK_TCP_VERSION);
    return;
  }
  if (nonce != r->nonce) {
    lk_tcp_rclient_error(c, LIGHTOS_INVALID_ARGUMENT,
                         "the id does not match the group served at %s (a stale or foreign id: "
                         "its nonce differs)",
                         lk_tcp_astr(r->addr).s);
    return;
  }
  if (r->state == LK_ROOT_COMPLETE) {
    lk_tcp_rclient_error(c, LIGHTOS_INVALID_ARGUMENT,
                         "rank %u came too late: the group at %s is complete (all %u ranks "
                         "joined)",
                         rank, lk_tcp_astr(r->addr).s, r->nranks);
    return;
  }
  c->rank = rank;
  if (r->state == LK_ROOT_FAILED) {
    lk_tcp_rclient_answer(r, c);
    return;
  }
  if (nranks == 0 || nranks > LK_TCP_MAX_RANKS || rank >= nranks) {
    lk_tcp_root_fail(r, LIGHTOS_INVALID_ARGUMENT,
                     "rank %u joined the group at %s as one of %u ranks: out of range (a "
                     "group has 1..%u ranks, numbered from 0)",
                     rank, lk_tcp_astr(r->addr).s, nranks, LK_TCP_MAX_RANKS);
    return;
  }
  if (r->nranks && nranks != r->nranks) {
    lk_tcp_root_fail(r, LIGHTOS_INVALID_ARGUMENT,
                     "the ranks disagree on the group size: rank %u joined a group of %u "
                     "ranks, rank %u a group of %u",
                     r->first_rank, r->nranks, rank, nranks);
    return;
  }
  if (!r->nranks) {
    r->table = calloc(nranks, sizeof *r->table);
    r->have = calloc(nranks, sizeof *r->have);
    r->nranks = nranks;
    r->first_rank = rank;
    if (!r->table || !r->have) {
      lk_tcp_root_fail(r, LIGHTOS_OUT_OF_MEMORY, "the rendezvous at %s ran out of memory",
                       lk_tcp_astr(r->addr).s);
      return;
    }
  }
  if (r->have[rank]) {
    lk_tcp_root_fail(r, LIGHTOS_INVALID_ARGUMENT,
                     "rank %u joined the group twice (from %s and from %s)", rank,
                     lk_tcp_astr(r->table[rank]).s, lk_tcp_astr(a).s);
    return;
  }
  r->have[rank] = true;
  r->table[rank] = a;
  r->joined++;
  if (r->joined == r->nranks) lk_tcp_root_complete(r);
}

static void lk_tcp_root_client(lk_tcp_root_t* r, lk_tcp_rclient_t* c, short rev) {
  if (c->out) {
    if (!(rev & (POLLOUT | POLLERR | POLLHUP))) return;
    int s = lk_tcp_step(c->fd, c->out, &c->out_off, c->out_len, true);
    if (s != 0) lk_tcp_rclient_drop(c); /* sent (the rank closes its end) or failed */
    return;
  }
  if (!(rev & (POLLIN | POLLERR | POLLHUP))) return;
  if (c->rank < 0) {
    int s = lk_tcp_step(c->fd, c->in, &c->in_off, LK_TCP_REG_BYTES, false);
    if (s < 0) lk_tcp_rclient_drop(c);
    else if (s == 1) {
      lk_tcp_root_register(r, c);
      if (c->out) lk_tcp_root_client(r, c, POLLOUT);
    }
    return;
  }
  /* A registered rank speaks or leaves before the group is complete. */
  unsigned char b = 0;
  size_t off = 0;
  int s = lk_tcp_step(c->fd, &b, &off, 1, false);
  if (s == 0) return;
  uint32_t rank = (uint32_t)c->rank;
  char miss[LK_TCP_MSG_MAX / 2];
  lk_tcp_root_missing(r, miss, sizeof miss);
  if (s == 1 && b == LK_TCP_GIVEUP) {
    lk_tcp_root_fail(r, LIGHTOS_TIMEOUT, "rank %u gave up waiting (its timeout passed): %s",
                     rank, miss);
    if (c->out) lk_tcp_root_client(r, c, POLLOUT);
    return;
  }
  lk_tcp_root_fail(r, LIGHTOS_ABORTED,
                   "rank %u left the rendezvous before the group was complete (%s): %s", rank,
                   s == 1 ? "protocol error" : "connection closed", miss);
  lk_tcp_rclient_drop(c);
}

static void lk_tcp_root_accept(lk_tcp_root_t* r) {
  for (;;) {
    int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) /* out of descriptors: breathe */
        lk_tcp_nap(10000000ull, r->deadline_ns);
      return;
    }
    size_t limit = 2u * (r->nranks ? r->nranks : LK_TCP_MAX_RANKS) + 64u;
    if (r->ncl >= limit) {
      close(fd);
      continue;
    }
    if (r->ncl == r->capcl) {
      size_t cap = r->capcl ? 2 * r->capcl : 16;
      lk_tcp_rclient_t* cl = realloc(r->cl, cap * sizeof *cl);
      if (!cl) {
        close(fd);
        return;
      }
      r->cl = cl;
      r->capcl = cap;
    }
    lk_tcp_rclient_t* c = &r->cl[r->ncl++];
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->rank = -1;
  }
}

static void lk_tcp_root_free(lk_tcp_root_t* r) {
  lk_tcp_close(&r->lfd);
  for (size_t i = 0; i < r->ncl; i++) lk_tcp_rclient_drop(&r->cl[i]);
  free(r->cl);
  free(r->table);
  free(r->have);
  free(r->reply);
  free(r->pf);
  free(r);
}

static void* lk_tcp_root_main(void* arg) {
  lk_tcp_root_t* r = arg;
  for (;;) {
    uint64_t now = lk_now_ns();
    if (r->state == LK_ROOT_GATHER && now >= r->deadline_ns) {
      char miss[LK_TCP_MSG_MAX / 2];
      lk_tcp_root_missing(r, miss, sizeof miss);
      lk_tcp_root_fail(r, LIGHTOS_TIMEOUT, "timed out after %g s: %s", r->timeout_s, miss);
    }
    bool flushing = false;
    for (size_t i = 0; i < r->ncl; i++) flushing |= r->cl[i].out != NULL;
    if (r->state == LK_ROOT_COMPLETE && !flushing) break;
    if (r->state == LK_ROOT_FAILED && now >= r->deadline_ns && !flushing) break;
    if (now >= r->deadline_ns + LK_TCP_GRACE_NS) break;
    uint64_t wake = r->deadline_ns;
    if (r->state == LK_ROOT_COMPLETE || now >= r->deadline_ns) wake += LK_TCP_GRACE_NS;

    if (r->pfcap < r->ncl + 1) {
      size_t cap = r->ncl + 17;
      struct pollfd* pf = realloc(r->pf, cap * sizeof *pf);
      if (!pf) break;
      r->pf = pf;
      r->pfcap = cap;
    }
    size_t np = 0, ncl = r->ncl;
    bool listening = r->lfd >= 0 && now < r->deadline_ns;
    if (listening) r->pf[np++] = (struct pollfd){r->lfd, POLLIN, 0};
    for (size_t i = 0; i < ncl; i++) {
      lk_tcp_rclient_t* c = &r->cl[i];
      short ev = c->out ? POLLOUT : POLLIN;
      r->pf[np++] = (struct pollfd){c->fd, ev, 0};
    }
    int n = lk_tcp_poll(r->pf, np, wake);
    if (n < 0) break;
    if (n == 0) continue;
    size_t base = listening ? 1 : 0;
    for (size_t i = 0; i < ncl; i++) {
      short rev = r->pf[base + i].revents;
      if (rev && r->cl[i].fd >= 0) lk_tcp_root_client(r, &r->cl[i], rev);
    }
    if (listening && (r->pf[0].revents & POLLIN) && r->lfd >= 0) lk_tcp_root_accept(r);
    size_t k = 0; /* drop closed clients */
    for (size_t i = 0; i < r->ncl; i++)
      if (r->cl[i].fd >= 0) r->cl[k++] = r->cl[i];
    r->ncl = k;
  }
  lk_tcp_root_free(r);
  return NULL;
}

lightos_status_t lk_tcp_new_id(lk_xport_id_t* out_id) {
  if (!out_id) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "out_id is NULL");
  double timeout_s = 0;
  bool addr_set = false;
  uint32_t ip = 0;
  uint16_t port = 0;
  lightos_status_t st = lk_tcp_env_timeout(&timeout_s);
  if (!st) st = lk_tcp_env_addr(&addr_set, &ip);
  if (!st) st = lk_tcp_env_port(&port);
  if (st) return st;
  if (!addr_set) ip = lk_tcp_default_ip();

  lk_tcp_addr_t at = {ip, port};
  int lfd = lk_tcp_listen(ip, port, SOMAXCONN, &at);
  if (lfd < 0) {
    int e = errno;
    if (addr_set && e == EADDRNOTAVAIL)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "LIGHTOS_COMM_ADDR is \"%s\": no interface of this host has that address",
                     getenv("LIGHTOS_COMM_ADDR"));
    if (port && e == EADDRINUSE)
      return LK_FAIL(LIGHTOS_UNAVAILABLE, "LIGHTOS_COMM_PORT is %u: the port is in use",
                     (unsigned)port);
    return LK_FAIL(LIGHTOS_UNAVAILABLE, "cannot listen on %s for the rendezvous: %s",
                   lk_tcp_astr(at).s, strerror(e));
  }
  lk_tcp_root_t* r = calloc(1, sizeof *r);
  if (!r) {
    close(lfd);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for the rendezvous");
  }
  r->lfd = lfd;
  r->addr = at;
  r->nonce = lk_tcp_nonce();
  r->timeout_s = timeout_s;
  r->deadline_ns = lk_now_ns() + (uint64_t)(timeout_s * 1e9);
  r->state = LK_ROOT_GATHER;

  memset(out_id, 0, sizeof *out_id);
  out_id->magic = LK_XPORT_ID_MAGIC;
  out_id->kind = LK_XPORT_TCP;
  out_id->nonce = r->nonce;
  lk_tcp_id_put(out_id, at);

  /* The thread takes no signals: they stay with the application's threads. */
  pthread_attr_t attr;
  sigset_t all, old;
  pthread_t tid;
  sigfillset(&all);
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&tid, &attr, lk_tcp_root_main, r);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    lk_tcp_root_free(r);
    memset(out_id, 0, sizeof *out_id);
    return LK_FAIL(LIGHTOS_UNAVAILABLE, "cannot start the rendezvous thread: %s", strerror(rc));
  }
  return LIGHTOS_SUCCESS;
}

/* ---- the endpoint ---------------------------------------------------------- */

typedef struct lk_tcp_peer {
  int fd;
  uint32_t send_seq, recv_seq;  /* next sequence numbers */
  /* This batch: the current and last operation of each direction (indices
   * into the batch, -1 none), linked through lk_tcp_opst_t.next. */
  int64_t s_cur, s_tail, r_cur, r_tail;
  bool active;
} lk_tcp_peer_t;

typedef struct lk_tcp_opst {
  size_t off;                           /* bytes moved, header included */
  int64_t next;                         /* next op of the same peer and direction */
  uint32_t seq;                         /* receives: the sequence number expected */
  unsigned char hdr[LK_TCP_HDR_BYTES];  /* sends: built; receives: arriving */
} lk_tcp_opst_t;

typedef struct lk_tcp_xport {
  lk_xport_t base;
  lk_tcp_peer_t* peers;
  int wake_fd;
  pthread_mutex_t mu;           /* failure record and sockets vs. abort() */
  atomic_int failed;
  lightos_status_t fail_status;
  char fail_msg[LK_TCP_MSG_MAX];
  lk_tcp_opst_t* st;
  size_t st_cap;
  uint32_t* active;             /* peers of this batch */
  uint32_t nactive;
  struct pollfd* pf;
  uint32_t* pf_peer;
} lk_tcp_xport_t;

/* Records the first failure (later ones keep it), resets the connections,
 * and raises the recorded failure. */
static lightos_status_t lk_tcp_fail(lk_tcp_xport_t* x, lightos_status_t st, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static lightos_status_t lk_tcp_fail(lk_tcp_xport_t* x, lightos_status_t st, const char* fmt, ...) {
  char msg[LK_TCP_MSG_MAX];
  pthread_mutex_lock(&x->mu);
  if (!atomic_load(&x->failed)) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->fail_msg, sizeof x->fail_msg, fmt, ap);
    va_end(ap);
    x->fail_status = st;
    atomic_store(&x->failed, 1);
  }
  for (uint32_t p = 0; p < x->base.size; p++) lk_tcp_reset(&x->peers[p].fd);
  st = x->fail_status;
  memcpy(msg, x->fail_msg, sizeof msg);
  pthread_mutex_unlock(&x->mu);
  return LK_FAIL(st, "%s", msg);
}

static lightos_status_t lk_tcp_refail(lk_tcp_xport_t* x) {
  return lk_tcp_fail(x, LIGHTOS_INTERNAL, "(failed)");
}

static lightos_status_t lk_tcp_gone(lk_tcp_xport_t* x, uint32_t peer, int err) {
  const char* why = err == 0                                 ? "connection closed"
                    : (err == ECONNRESET || err == EPIPE)    ? "connection reset"
                                                             : strerror(err);
  return lk_tcp_fail(x, LIGHTOS_ABORTED, "rank %u is gone (%s), seen by rank %u", peer, why,
                     x->base.rank);
}

/* The iovecs of the queued messages from `cur` on (header, then payload,
 * each from where the transfer stands), at most LK_TCP_IOV. */
static int lk_tcp_fill_iov(const lk_tcp_opst_t* st, int64_t cur, const lk_xop_t* ops,
                           struct iovec* iov) {
  int niov = 0;
  for (int64_t i = cur; i >= 0 && niov + 2 <= LK_TCP_IOV; i = st[i].next) {
    size_t off = st[i].off;
    if (off < LK_TCP_HDR_BYTES) {
      iov[niov++] = (struct iovec){(void*)(st[i].hdr + off), LK_TCP_HDR_BYTES - off};
      off = LK_TCP_HDR_BYTES;
    }
    size_t done = off - LK_TCP_HDR_BYTES;
    if (ops[i].bytes > done)
      iov[niov++] = (struct iovec){(char*)ops[i].buf + done, ops[i].bytes - done};
  }
  return niov;
}

/* Writes as much of the peer's queued sends as the socket takes. */
static lightos_status_t lk_tcp_send_some(lk_tcp_xport_t* x, uint32_t q, const lk_xop_t* ops) {
  lk_tcp_peer_t* p = &x->peers[q];
  lk_tcp_opst_t* st = x->st;
  while (p->s_cur >= 0) {
    struct iovec iov[LK_TCP_IOV];
    int niov = lk_tcp_fill_iov(st, p->s_cur, ops, iov);
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)niov;
    ssize_t w = sendmsg(p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return LIGHTOS_SUCCESS;
      return lk_tcp_gone(x, q, errno);
    }
    size_t left = (size_t)w;
    while (left && p->s_cur >= 0) {
      lk_tcp_opst_t* s = &st[p->s_cur];
      size_t rem = LK_TCP_HDR_BYTES + ops[p->s_cur].bytes - s->off;
      if (left < rem) {
        s->off += left;
        left = 0;
      } else {
        s->off += rem;
        left -= rem;
        p->s_cur = s->next;
      }
    }
  }
  return LIGHTOS_SUCCESS;
}

/* Checks a receive's header once it has arrived. */
static lightos_status_t lk_tcp_check_hdr(lk_tcp_xport_t* x, uint32_t q, const lk_xop_t* op,
                                         const lk_tcp_opst_t* s) {
  uint32_t magic = lk_tcp_get32(s->hdr), seq = lk_tcp_get32(s->hdr + 4);
  uint64_t len = lk_tcp_get64(s->hdr + 8);
  if (magic != LK_TCP_MSG_MAGIC)
    return lk_tcp_fail(x, LIGHTOS_INTERNAL,
                       "rank %u received a corrupted message header from rank %u (magic "
                       "0x%08x)",
                       x->base.rank, q, magic);
  if (seq != s->seq)
    return lk_tcp_fail(x, LIGHTOS_INTERNAL,
                       "rank %u received message %u from rank %u, expected message %u: the "
                       "stream is out of step",
                       x->base.rank, seq, q, s->seq);
  if (len != op->bytes)
    return lk_tcp_fail(x, LIGHTOS_INVALID_ARGUMENT,
                       "rank %u expected %zu bytes from rank %u, got %llu: the ranks issued "
                       "different operations",
                       x->base.rank, op->bytes, q, (unsigned long long)len);
  return LIGHTOS_SUCCESS;
}

/* Reads as much of the peer's queued receives as has arrived.  A receive's
 * payload lands in its buffer together with its header (one call for many
 * messages); the header is checked before the receive counts as done, and a
 * wrong one fails the endpoint (writes never pass the posted length). */
static lightos_status_t lk_tcp_recv_some(lk_tcp_xport_t* x, uint32_t q, const lk_xop_t* ops) {
  lk_tcp_peer_t* p = &x->peers[q];
  lk_tcp_opst_t* st = x->st;
  while (p->r_cur >= 0) {
    struct iovec iov[LK_TCP_IOV];
    int niov = lk_tcp_fill_iov(st, p->r_cur, ops, iov);
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)niov;
    ssize_t got = recvmsg(p->fd, &mh, MSG_DONTWAIT);
    if (got == 0) return lk_tcp_gone(x, q, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return LIGHTOS_SUCCESS;
      return lk_tcp_gone(x, q, errno);
    }
    size_t left = (size_t)got;
    while (left && p->r_cur >= 0) {
      lk_tcp_opst_t* s = &st[p->r_cur];
      const lk_xop_t* op = &ops[p->r_cur];
      size_t rem = LK_TCP_HDR_BYTES + op->bytes - s->off;
      size_t take = left < rem ? left : rem;
      bool had_hdr = s->off >= LK_TCP_HDR_BYTES;
      s->off += take;
      left -= take;
      if (!had_hdr && s->off >= LK_TCP_HDR_BYTES) {
        lightos_status_t e = lk_tcp_check_hdr(x, q, op, s);
        if (e) return e;
      }
      if (take == rem) p->r_cur = s->next;
    }
  }
  return LIGHTOS_SUCCESS;
}

static lightos_status_t lk_tcp_timeout(lk_tcp_xport_t* x, const lk_xop_t* ops, uint64_t t0) {
  char list[LK_TCP_MSG_MAX];
  size_t len = 0;
  uint32_t shown = 0, pending = 0;
  list[0] = '\0';
  for (uint32_t k = 0; k < x->nactive; k++) {
    uint32_t q = x->active[k];
    lk_tcp_peer_t* p = &x->peers[q];
    if (p->s_cur < 0 && p->r_cur < 0) continue;
    pending++;
    if (shown == 8) continue;
    shown++;
    lk_sbprintf(list, sizeof list, &len, "%srank %u (", shown > 1 ? "; " : "", q);
    if (p->r_cur >= 0) {
      const lk_tcp_opst_t* s = &x->st[p->r_cur];
      size_t got = s->off > LK_TCP_HDR_BYTES ? s->off - LK_TCP_HDR_BYTES : 0;
      lk_sbprintf(list, sizeof list, &len, "receive: %zu of %zu bytes arrived", got,
                  ops[p->r_cur].bytes);
    }
    if (p->s_cur >= 0) {
      const lk_tcp_opst_t* s = &x->st[p->s_cur];
      size_t sent = s->off > LK_TCP_HDR_BYTES ? s->off - LK_TCP_HDR_BYTES : 0;
      lk_sbprintf(list, sizeof list, &len, "%ssend: %zu of %zu bytes taken",
                  p->r_cur >= 0 ? ", " : "", sent, ops[p->s_cur].bytes);
    }
    lk_sbprintf(list, sizeof list, &len, ")");
  }
  if (pending > shown) lk_sbprintf(list, sizeof list, &len, "; %u more", pending - shown);
  return lk_tcp_fail(x, LIGHTOS_TIMEOUT, "rank %u timed out after %.3g s waiting for %s",
                     x->base.rank, lk_tcp_secs(lk_now_ns() - t0), list);
}

static lightos_status_t lk_tcp_run(lk_tcp_xport_t* x, const lk_xop_t* ops, size_t n,
                                   uint64_t deadline_ns) {
  const uint32_t me = x->base.rank;
  uint64_t t0 = lk_now_ns();
  lk_tcp_opst_t* st = x->st;
  int64_t self_s = -1, self_s_tail = -1, self_r = -1, self_r_tail = -1;
  size_t nself_s = 0, nself_r = 0;
  for (size_t i = 0; i < n; i++) {
    const lk_xop_t* o = &ops[i];
    if (!o->bytes) continue;
    st[i].off = 0;
    st[i].next = -1;
    if (o->peer == me) {
      int64_t* head = o->is_send ? &self_s : &self_r;
      int64_t* tail = o->is_send ? &self_s_tail : &self_r_tail;
      if (*tail >= 0) st[*tail].next = (int64_t)i;
      else *head = (int64_t)i;
      *tail = (int64_t)i;
      *(o->is_send ? &nself_s : &nself_r) += 1;
      continue;
    }
    lk_tcp_peer_t* p = &x->peers[o->peer];
    if (!p->active) {
      p->active = true;
      p->s_cur = p->s_tail = p->r_cur = p->r_tail = -1;
      x->active[x->nactive++] = o->peer;
    }
    int64_t* head = o->is_send ? &p->s_cur : &p->r_cur;
    int64_t* tail = o->is_send ? &p->s_tail : &p->r_tail;
    if (*tail >= 0) st[*tail].next = (int64_t)i;
    else *head = (int64_t)i;
    *tail = (int64_t)i;
    if (o->is_send) {
      lk_tcp_put32(st[i].hdr, LK_TCP_MSG_MAGIC);
      lk_tcp_put32(st[i].hdr + 4, p->send_seq++);
      lk_tcp_put64(st[i].hdr + 8, (uint64_t)o->bytes);
    } else {
      st[i].seq = p->recv_seq++;
    }
  }

  /* Messages to self: the k-th send goes to the k-th receive. */
  if (nself_s != nself_r)
    return lk_tcp_fail(x, LIGHTOS_INVALID_ARGUMENT,
                       "rank %u posted %zu sends to itself and %zu receives from itself in one "
                       "exchange",
                       me, nself_s, nself_r);
  for (int64_t s = self_s, r = self_r; s >= 0 && r >= 0; s = st[s].next, r = st[r].next) {
    if (ops[s].bytes != ops[r].bytes)
      return lk_tcp_fail(x, LIGHTOS_INVALID_ARGUMENT,
                         "rank %u expected %zu bytes from rank %u, got %zu: the ranks issued "
                         "different operations",
                         me, ops[r].bytes, me, ops[s].bytes);
    memmove(ops[r].buf, ops[s].buf, ops[r].bytes);
  }

  bool first = true;
  for (;;) {
    size_t np = 0;
    for (uint32_t k = 0; k < x->nactive; k++) {
      uint32_t q = x->active[k];
      lk_tcp_peer_t* p = &x->peers[q];
      if (first) { /* try before waiting: most small messages go at once */
        lightos_status_t e = LIGHTOS_SUCCESS;
        if (p->s_cur >= 0) e = lk_tcp_send_some(x, q, ops);
        if (!e && p->r_cur >= 0) e = lk_tcp_recv_some(x, q, ops);
        if (e) return e;
      }
      if (p->s_cur < 0 && p->r_cur < 0) continue;
      short ev = (short)((p->s_cur >= 0 ? POLLOUT : 0) | (p->r_cur >= 0 ? POLLIN : 0));
      x->pf[np] = (struct pollfd){p->fd, ev, 0};
      x->pf_peer[np++] = q;
    }
    first = false;
    if (np == 0) return LIGHTOS_SUCCESS;
    if (atomic_load(&x->failed)) return lk_tcp_refail(x);
    if (lk_now_ns() >= deadline_ns) return lk_tcp_timeout(x, ops, t0);
    x->pf[np] = (struct pollfd){x->wake_fd, POLLIN, 0};
    int r = lk_tcp_poll(x->pf, np + 1, deadline_ns);
    if (r < 0)
      return lk_tcp_fail(x, LIGHTOS_INTERNAL, "rank %u: poll failed: %s", me, strerror(errno));
    if (r == 0) continue;
    if (x->pf[np].revents) continue; /* abort(): the failure is seen above */
    for (size_t k = 0; k < np; k++) {
      short rev = x->pf[k].revents;
      if (!rev) continue;
      uint32_t q = x->pf_peer[k];
      lk_tcp_peer_t* p = &x->peers[q];
      lightos_status_t e = LIGHTOS_SUCCESS;
      if (p->s_cur >= 0 && (rev & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)))
        e = lk_tcp_send_some(x, q, ops);
      if (!e && p->r_cur >= 0 && (rev & (POLLIN | POLLERR | POLLHUP | POLLNVAL)))
        e = lk_tcp_recv_some(x, q, ops);
      if (e) return e;
    }
  }
}

static lightos_status_t lk_tcp_exchange(lk_xport_t* base, const lk_xop_t* ops, size_t n,
                                        uint64_t deadline_ns) {
  lk_tcp_xport_t* x = (lk_tcp_xport_t*)base;
  const uint32_t me = x->base.rank;
  if (atomic_load(&x->failed)) return lk_tcp_refail(x);
  if (n == 0) return LIGHTOS_SUCCESS;
  if (!ops)
    return lk_tcp_fail(x, LIGHTOS_INVALID_ARGUMENT, "rank %u: ops is NULL (n = %zu)", me, n);
  for (size_t i = 0; i < n; i++) {
    if (ops[i].peer >= x->base.size)
      return lk_tcp_fail(x, LIGHTOS_INVALID_ARGUMENT,
                         "rank %u: operation %zu names peer %u in a group of %u ranks", me, i,
                         ops[i].peer, x->base.size);
    if (ops[i].bytes && !ops[i].buf)
      return lk_tcp_fail(x, LIGHTOS_INVALID_ARGUMENT,
                         "rank %u: operation %zu (%s rank %u, %zu bytes) has a NULL buffer", me,
                         i, ops[i].is_send ? "send to" : "receive from", ops[i].peer,
                         ops[i].bytes);
  }
  if (n > x->st_cap) {
    size_t cap = n < 64 ? 64 : n;
    lk_tcp_opst_t* s = realloc(x->st, cap * sizeof *s);
    if (!s)
      return lk_tcp_fail(x, LIGHTOS_OUT_OF_MEMORY,
                         "rank %u: out of host memory for %zu operations", me, n);
    x->st = s;
    x->st_cap = cap;
  }
  lightos_status_t st = lk_tcp_run(x, ops, n, deadline_ns);
  for (uint32_t k = 0; k < x->nactive; k++) x->peers[x->active[k]].active = false;
  x->nactive = 0;
  return st;
}

static void lk_tcp_abort(lk_xport_t* base, const char* why) {
  lk_tcp_xport_t* x = (lk_tcp_xport_t*)base;
  if (!x) return;
  pthread_mutex_lock(&x->mu);
  if (!atomic_load(&x->failed)) {
    snprintf(x->fail_msg, sizeof x->fail_msg, "rank %u's communicator was aborted%s%s",
             x->base.rank, why && *why ? ": " : "", why ? why : "");
    x->fail_status = LIGHTOS_ABORTED;
    atomic_store(&x->failed, 1);
  }
  /* Not closed here (exchange() may be polling them): shut down, so the
   * peers see the end of the stream; exchange() or destroy() closes. */
  for (uint32_t p = 0; p < x->base.size; p++)
    if (x->peers[p].fd >= 0) shutdown(x->peers[p].fd, SHUT_RDWR);
  pthread_mutex_unlock(&x->mu);
  uint64_t one = 1;
  ssize_t w;
  do w = write(x->wake_fd, &one, sizeof one);
  while (w < 0 && errno == EINTR);
}

static void lk_tcp_destroy(lk_xport_t* base) {
  lk_tcp_xport_t* x = (lk_tcp_xport_t*)base;
  if (!x) return;
  bool failed = atomic_load(&x->failed) != 0;
  for (uint32_t p = 0; p < x->base.size; p++) {
    if (failed) lk_tcp_reset(&x->peers[p].fd);
    else lk_tcp_close(&x->peers[p].fd);
  }
  lk_tcp_close(&x->wake_fd);
  pthread_mutex_destroy(&x->mu);
  free(x->peers);
  free(x->st);
  free(x->active);
  free(x->pf);
  free(x->pf_peer);
  free(x);
}

/* A peer's connection closed or reset, seen without reading: work that
 * does not use the sockets (collectives on a GPU library) learns of a dead
 * process this way instead of at its timeout. */
static bool lk_tcp_peer_lost(lk_xport_t* base, char* why, size_t cap) {
  lk_tcp_xport_t* x = (lk_tcp_xport_t*)base;
  bool lost = false;
  pthread_mutex_lock(&x->mu);
  if (atomic_load(&x->failed)) {
    snprintf(why, cap, "%s", x->fail_msg);
    lost = true;
  }
  for (uint32_t p = 0; p < x->base.size && !lost; p++) {
    if (p == x->base.rank || x->peers[p].fd < 0) continue;
    struct pollfd pf = {x->peers[p].fd, POLLRDHUP, 0};
    if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
      snprintf(why, cap, "rank %u closed its connection to rank %u (gone?)", p, x->base.rank);
      lost = true;
    }
  }
  pthread_mutex_unlock(&x->mu);
  return lost;
}

static const lk_xport_vtbl_t lk_tcp_vtbl = {"tcp", lk_tcp_exchange, lk_tcp_abort,
                                            lk_tcp_destroy, lk_tcp_peer_lost};

/* ---- joining ---------------------------------------------------------------- */

static lightos_status_t lk_tcp_connect_root(lk_tcp_addr_t root, uint32_t rank,
                                            uint64_t deadline_ns, int* out_fd) {
  int last = ETIMEDOUT;
  for (;;) {
    int fd = lk_tcp_socket();
    if (fd < 0)
      return LK_FAIL(LIGHTOS_UNAVAILABLE, "rank %u: cannot make a socket: %s", rank,
                     strerror(errno));
    struct sockaddr_in s = lk_tcp_sin(root);
    int e = connect(fd, (struct sockaddr*)&s, sizeof s) == 0 ? 0 : errno;
    if (e == EINPROGRESS || e == EINTR) {
      struct pollfd p = {fd, POLLOUT, 0};
      int n = 0;
      while ((n = lk_tcp_poll(&p, 1, deadline_ns)) == 0 && lk_now_ns() < deadline_ns) {}
      socklen_t l = sizeof e;
      if (n > 0) {
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) != 0) e = errno;
      } else {
        e = n < 0 ? errno : ETIMEDOUT;
      }
    }
    if (e == 0) {
      *out_fd = fd;
      return LIGHTOS_SUCCESS;
    }
    close(fd);
    last = e;
    if (e == ECONNREFUSED)
      return LK_FAIL(LIGHTOS_UNAVAILABLE,
                     "rank %u: no rendezvous at %s (connection refused): the group it served "
                     "is complete, has failed or timed out, or the id is stale",
                     rank, lk_tcp_astr(root).s);
    if (lk_now_ns() >= deadline_ns)
      return LK_FAIL(LIGHTOS_TIMEOUT, "rank %u timed out connecting to the rendezvous at %s (%s)",
                     rank, lk_tcp_astr(root).s, strerror(last));
    lk_tcp_nap(50000000ull, deadline_ns); /* unreachable for now: try again */
  }
}

/* Registers with the rendezvous and reads the table (nranks entries). */
static lightos_status_t lk_tcp_register(int rfd, lk_tcp_addr_t root, uint64_t nonce,
                                        uint32_t nranks, uint32_t rank, lk_tcp_addr_t me,
                                        uint64_t t0, uint64_t deadline_ns,
                                        lk_tcp_addr_t* table) {
  unsigned char reg[LK_TCP_REG_BYTES];
  memset(reg, 0, sizeof reg);
  lk_tcp_put32(reg, LK_TCP_REG_MAGIC);
  lk_tcp_put32(reg + 4, LK_TCP_VERSION);
  lk_tcp_put64(reg + 8, nonce);
  lk_tcp_put32(reg + 16, nranks);
  lk_tcp_put32(reg + 20, rank);
  lk_tcp_put32(reg + 24, me.ip);
  lk_tcp_put16(reg + 28, me.port);
  int err = 0;
  int io = lk_tcp_io(rfd, reg, sizeof reg, true, deadline_ns, &err);
  if (io == LK_IO_TIMEOUT)
    return LK_FAIL(LIGHTOS_TIMEOUT, "rank %u timed out registering with the rendezvous at %s",
                   rank, lk_tcp_astr(root).s);
  if (io != LK_IO_OK)
    return LK_FAIL(LIGHTOS_ABORTED, "rank %u lost the rendezvous at %s while registering (%s)",
                   rank, lk_tcp_astr(root).s, strerror(err));

  unsigned char hdr[LK_TCP_REPLY_BYTES];
  io = lk_tcp_io(rfd, hdr, sizeof hdr, false, deadline_ns, &err);
  bool gave_up = false;
  if (io == LK_IO_TIMEOUT) {
    /* Tell the rendezvous, which then fails the group and tells everyone
     * which ranks never came; wait a moment for that answer. */
    gave_up = true;
    unsigned char b = LK_TCP_GIVEUP;
    (void)send(rfd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(rfd, SHUT_WR);
    io = lk_tcp_io(rfd, hdr, sizeof hdr, false, lk_now_ns() + LK_TCP_GRACE_NS / 2, &err);
  }
  if (io != LK_IO_OK || lk_tcp_get32(hdr) != LK_TCP_REPLY_MAGIC ||
      (gave_up && lk_tcp_get32(hdr + 4) == 0)) {
    if (gave_up)
      return LK_FAIL(LIGHTOS_TIMEOUT,
                     "rank %u timed out after %.3g s waiting for the other %u ranks at the "
                     "rendezvous %s",
                     rank, lk_tcp_secs(lk_now_ns() - t0), nranks - 1, lk_tcp_astr(root).s);
    if (io == LK_IO_OK)
      return LK_FAIL(LIGHTOS_INTERNAL, "rank %u: %s answered with a corrupted message", rank,
                     lk_tcp_astr(root).s);
    return LK_FAIL(LIGHTOS_ABORTED,
                   "rank %u lost the rendezvous at %s before the group was complete (%s)", rank,
                   lk_tcp_astr(root).s, io == LK_IO_EOF ? "connection closed" : strerror(err));
  }
  uint32_t status = lk_tcp_get32(hdr + 4), n = lk_tcp_get32(hdr + 8),
           len = lk_tcp_get32(hdr + 12);
  /* The rest of the answer is already on its way. */
  uint64_t rest_deadline = deadline_ns;
  if (rest_deadline < lk_now_ns() + LK_TCP_GRACE_NS) rest_deadline = lk_now_ns() + LK_TCP_GRACE_NS;
  if (status != 0) {
    char msg[LK_TCP_MSG_MAX + 1];
    if (len > LK_TCP_MSG_MAX) len = 0;
    io = len ? lk_tcp_io(rfd, msg, len, false, rest_deadline, &err) : LK_IO_OK;
    msg[io == LK_IO_OK ? len : 0] = '\0';
    if (status > LIGHTOS_INTERNAL) status = LIGHTOS_INTERNAL;
    return LK_FAIL((lightos_status_t)status, "rank %u could not join the group at %s: %s", rank,
                   lk_tcp_astr(root).s, msg[0] ? msg : "(no reason given)");
  }
  if (n != nranks || len != (uint64_t)nranks * LK_TCP_ENTRY_BYTES)
    return LK_FAIL(LIGHTOS_INTERNAL, "rank %u: %s answered with a table of %u ranks, expected %u",
                   rank, lk_tcp_astr(root).s, n, nranks);
  unsigned char* t = malloc(len);
  if (!t) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "rank %u: out of host memory", rank);
  io = lk_tcp_io(rfd, t, len, false, rest_deadline, &err);
  if (io != LK_IO_OK) {
    free(t);
    return LK_FAIL(LIGHTOS_ABORTED, "rank %u lost the rendezvous at %s while reading the table",
                   rank, lk_tcp_astr(root).s);
  }
  for (uint32_t i = 0; i < nranks; i++) {
    table[i].ip = lk_tcp_get32(t + (size_t)i * LK_TCP_ENTRY_BYTES);
    table[i].port = lk_tcp_get16(t + (size_t)i * LK_TCP_ENTRY_BYTES + 4);
  }
  free(t);
  if (table[rank].ip != me.ip || table[rank].port != me.port)
    return LK_FAIL(LIGHTOS_INTERNAL, "rank %u: the rendezvous at %s lists it at %s, not at %s",
                   rank, lk_tcp_astr(root).s, lk_tcp_astr(table[rank]).s, lk_tcp_astr(me).s);
  return LIGHTOS_SUCCESS;
}

enum { LK_M_CONNECTING, LK_M_HELLO_OUT, LK_M_ACK_IN, LK_M_HELLO_IN, LK_M_ACK_OUT, LK_M_DONE };

typedef struct lk_tcp_mconn {
  int fd;
  int64_t peer;                 /* -1 until its hello names it (accepted side) */
  int state;
  unsigned char buf[LK_TCP_HELLO_BYTES];
  size_t off, len;
} lk_tcp_mconn_t;

typedef struct lk_tcp_mesh {
  uint32_t rank, nranks;
  uint64_t nonce;
  const lk_tcp_addr_t* table;
  lk_tcp_mconn_t* c;
  size_t nc, capc;
  bool* claimed;                /* a connection to this peer exists or is being set up */
  uint32_t ndone;
} lk_tcp_mesh_t;

static bool lk_tcp_mesh_add(lk_tcp_mesh_t* m, int fd, int64_t peer, int state) {
  if (m->nc == m->capc) {
    size_t cap = m->capc ? 2 * m->capc : 16;
    lk_tcp_mconn_t* c = realloc(m->c, cap * sizeof *c);
    if (!c) return false;
    m->c = c;
    m->capc = cap;
  }
  lk_tcp_mconn_t* c = &m->c[m->nc++];
  memset(c, 0, sizeof *c);
  c->fd = fd;
  c->peer = peer;
  c->state = state;
  if (state == LK_M_HELLO_IN) {
    c->len = LK_TCP_HELLO_BYTES;
  } else {
    lk_tcp_put32(c->buf, LK_TCP_HELLO_MAGIC);
    lk_tcp_put32(c->buf + 4, LK_TCP_VERSION);
    lk_tcp_put64(c->buf + 8, m->nonce);
    lk_tcp_put32(c->buf + 16, m->rank);
    lk_tcp_put32(c->buf + 20, m->nranks);
    c->len = LK_TCP_HELLO_BYTES;
  }
  return true;
}

/* Advances one connection; returns non-success only for failures that
 * fail the join (a stranger's bad hello just closes its connection). */
static lightos_status_t lk_tcp_mesh_step(lk_tcp_mesh_t* m, lk_tcp_mconn_t* c, short rev) {
  const uint32_t me = m->rank;
  for (;;) {
    int s;
    switch (c->state) {
      case LK_M_CONNECTING: {
        if (!(rev & (POLLOUT | POLLERR | POLLHUP))) return LIGHTOS_SUCCESS;
        int e = 0;
        socklen_t l = sizeof e;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l) != 0) e = errno;
        if (e)
          return LK_FAIL(LIGHTOS_ABORTED, "rank %u is gone (cannot connect to it at %s: %s), "
                         "seen by rank %u",
                         (uint32_t)c->peer, lk_tcp_astr(m->table[c->peer]).s, strerror(e), me);
        c->state = LK_M_HELLO_OUT;
        continue;
      }
      case LK_M_HELLO_OUT:
      case LK_M_ACK_OUT:
        s = lk_tcp_step(c->fd, c->buf, &c->off, c->len, true);
        if (s == 0) return LIGHTOS_SUCCESS;
        if (s < 0) {
          if (c->state == LK_M_ACK_OUT) { /* the peer went away: it will see that */
            m->claimed[c->peer] = false;
            lk_tcp_close(&c->fd);
            return LIGHTOS_SUCCESS;
          }
          return LK_FAIL(LIGHTOS_ABORTED, "rank %u is gone (connection reset during setup), "
                         "seen by rank %u",
                         (uint32_t)c->peer, me);
        }
        if (c->state == LK_M_ACK_OUT) {
          c->state = LK_M_DONE;
          m->ndone++;
          return LIGHTOS_SUCCESS;
        }
        c->state = LK_M_ACK_IN;
        c->off = 0;
        c->len = LK_TCP_ACK_BYTES;
        continue;
      case LK_M_ACK_IN:
        s = lk_tcp_step(c->fd, c->buf, &c->off, c->len, false);
        if (s == 0) return LIGHTOS_SUCCESS;
        if (s < 0 || lk_tcp_get32(c->buf) != LK_TCP_ACK_MAGIC || lk_tcp_get32(c->buf + 4) != 0)
          return LK_FAIL(LIGHTOS_ABORTED,
                         "rank %u is gone (it closed the connection during setup), seen by "
                         "rank %u",
                         (uint32_t)c->peer, me);
        c->state = LK_M_DONE;
        m->ndone++;
        return LIGHTOS_SUCCESS;
      case LK_M_HELLO_IN: {
        s = lk_tcp_step(c->fd, c->buf, &c->off, c->len, false);
        if (s == 0) return LIGHTOS_SUCCESS;
        uint32_t from = lk_tcp_get32(c->buf + 16);
        if (s < 0 || lk_tcp_get32(c->buf) != LK_TCP_HELLO_MAGIC ||
            lk_tcp_get32(c->buf + 4) != LK_TCP_VERSION || lk_tcp_get64(c->buf + 8) != m->nonce ||
            lk_tcp_get32(c->buf + 20) != m->nranks || from <= me || from >= m->nranks ||
            m->claimed[from]) {
          lk_tcp_close(&c->fd); /* not one of ours */
          return LIGHTOS_SUCCESS;
        }
        c->peer = from;
        m->claimed[from] = true;
        lk_tcp_put32(c->buf, LK_TCP_ACK_MAGIC);
        lk_tcp_put32(c->buf + 4, 0);
        c->off = 0;
        c->len = LK_TCP_ACK_BYTES;
        c->state = LK_M_ACK_OUT;
        continue;
      }
      default:
        return LIGHTOS_SUCCESS;
    }
  }
}

/* Connects to every lower rank and accepts every higher one; fds[p] gets
 * the connection to rank p. */
static lightos_status_t lk_tcp_mesh(uint32_t rank, uint32_t nranks, uint64_t nonce,
                                    const lk_tcp_addr_t* table, int lfd, uint64_t t0,
                                    uint64_t deadline_ns, int* fds) {
  lk_tcp_mesh_t m;
  memset(&m, 0, sizeof m);
  m.rank = rank;
  m.nranks = nranks;
  m.nonce = nonce;
  m.table = table;
  m.claimed = calloc(nranks, sizeof *m.claimed);
  struct pollfd* pf = NULL;
  size_t pfcap = 0;
  lightos_status_t st = LIGHTOS_SUCCESS;
  if (!m.claimed) {
    st = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "rank %u: out of host memory", rank);
    goto done;
  }
  for (uint32_t p = 0; p < rank; p++) {
    int fd = lk_tcp_socket();
    if (fd < 0) {
      st = LK_FAIL(LIGHTOS_UNAVAILABLE, "rank %u: cannot make a socket: %s", rank,
                   strerror(errno));
      goto done;
    }
    struct sockaddr_in s = lk_tcp_sin(table[p]);
    int e = connect(fd, (struct sockaddr*)&s, sizeof s) == 0 ? 0 : errno;
    if (e && e != EINPROGRESS && e != EINTR) {
      close(fd);
      st = LK_FAIL(LIGHTOS_ABORTED,
                   "rank %u is gone (cannot connect to it at %s: %s), seen by rank %u", p,
                   lk_tcp_astr(table[p]).s, strerror(e), rank);
      goto done;
    }
    if (!lk_tcp_mesh_add(&m, fd, p, e ? LK_M_CONNECTING : LK_M_HELLO_OUT)) {
      close(fd);
      st = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "rank %u: out of host memory", rank);
      goto done;
    }
    m.claimed[p] = true;
  }
  const uint32_t need = nranks - 1;
  const size_t max_conns = 4u * (size_t)nranks + 64u;
  while (m.ndone < need) {
    if (lk_now_ns() >= deadline_ns) {
      bool* have = calloc(nranks, sizeof *have);
      char miss[LK_TCP_MSG_MAX / 2] = "";
      if (have) {
        have[rank] = true;
        for (size_t i = 0; i < m.nc; i++)
          if (m.c[i].fd >= 0 && m.c[i].state == LK_M_DONE) have[m.c[i].peer] = true;
        lk_tcp_fmt_missing(have, nranks, miss, sizeof miss);
        free(have);
      }
      st = LK_FAIL(LIGHTOS_TIMEOUT,
                   "rank %u timed out after %.3g s connecting to the other ranks: no "
                   "connection with %s",
                   rank, lk_tcp_secs(lk_now_ns() - t0), miss);
      goto done;
    }
    if (pfcap < m.nc + 1) {
      size_t cap = m.nc + 17;
      struct pollfd* p2 = realloc(pf, cap * sizeof *p2);
      if (!p2) {
        st = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "rank %u: out of host memory", rank);
        goto done;
      }
      pf = p2;
      pfcap = cap;
    }
    size_t nc = m.nc;
    pf[0] = (struct pollfd){lfd, POLLIN, 0};
    for (size_t i = 0; i < nc; i++) {
      const lk_tcp_mconn_t* c = &m.c[i];
      short ev = 0;
      if (c->fd >= 0 && c->state != LK_M_DONE)
        ev = (c->state == LK_M_CONNECTING || c->state == LK_M_HELLO_OUT ||
              c->state == LK_M_ACK_OUT)
                 ? POLLOUT
                 : POLLIN;
      pf[1 + i] = (struct pollfd){ev ? c->fd : -1, ev, 0};
    }
    int n = lk_tcp_poll(pf, nc + 1, deadline_ns);
    if (n < 0) {
      st = LK_FAIL(LIGHTOS_INTERNAL, "rank %u: poll failed: %s", rank, strerror(errno));
      goto done;
    }
    if (n == 0) continue;
    for (size_t i = 0; i < nc; i++) {
      if (!pf[1 + i].revents || m.c[i].fd < 0) continue;
      st = lk_tcp_mesh_step(&m, &m.c[i], pf[1 + i].revents);
      if (st) goto done;
    }
    if (pf[0].revents & POLLIN) {
      for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          break;
        }
        size_t live = 0;
        for (size_t i = 0; i < m.nc; i++) live += m.c[i].fd >= 0;
        if (live >= max_conns || !lk_tcp_mesh_add(&m, fd, -1, LK_M_HELLO_IN)) {
          close(fd);
          continue;
        }
        st = lk_tcp_mesh_step(&m, &m.c[m.nc - 1], POLLIN); /* the hello is often there */
        if (st) goto done;
      }
    }
    size_t k = 0; /* drop closed connections */
    for (size_t i = 0; i < m.nc; i++)
      if (m.c[i].fd >= 0) m.c[k++] = m.c[i];
    m.nc = k;
  }
  for (size_t i = 0; i < m.nc; i++) {
    if (m.c[i].fd < 0) continue;
    if (m.c[i].state == LK_M_DONE) {
      fds[m.c[i].peer] = m.c[i].fd;
      m.c[i].fd = -1;
    }
  }
done:
  for (size_t i = 0; i < m.nc; i++) {
    if (st) lk_tcp_reset(&m.c[i].fd);
    else lk_tcp_close(&m.c[i].fd);
  }
  free(m.c);
  free(m.claimed);
  free(pf);
  return st;
}

lightos_status_t lk_tcp_join(const lk_xport_id_t* id, uint32_t nranks, uint32_t rank,
                             uint64_t deadline_ns, lk_xport_t** out) {
  if (!out) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (!id) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "id is NULL");
  if (id->magic != LK_XPORT_ID_MAGIC)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "id: bad magic 0x%08x (not an id from lightos_comm_get_unique_id, or "
                   "corrupted on the way)",
                   id->magic);
  if (id->kind != LK_XPORT_TCP)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "id: kind %u is not a TCP group id (kind %u)",
                   id->kind, (unsigned)LK_XPORT_TCP);
  if (id->data[6] != LK_TCP_VERSION)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "id: TCP id version %u, this library speaks version %u", id->data[6],
                   LK_TCP_VERSION);
  lk_tcp_addr_t root = {lk_tcp_get32(id->data), lk_tcp_get16(id->data + 4)};
  if (root.ip == 0 || root.port == 0)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "id: no rendezvous address (%s)",
                   lk_tcp_astr(root).s);
  if (nranks == 0 || nranks > LK_TCP_MAX_RANKS)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "nranks is %u (expected 1..%u)", nranks,
                   LK_TCP_MAX_RANKS);
  if (rank >= nranks)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "rank is %u: out of range for %u ranks", rank,
                   nranks);

  uint64_t t0 = lk_now_ns();
  int rfd = -1, lfd = -1;
  lk_tcp_addr_t* table = NULL;
  lk_tcp_xport_t* x = NULL;
  lightos_status_t st = lk_tcp_connect_root(root, rank, deadline_ns, &rfd);
  if (st) return st;

  /* Listen where this rank reached the rendezvous from: an address that
   * routes towards the group. */
  struct sockaddr_in local;
  socklen_t llen = sizeof local;
  lk_tcp_addr_t me = {0, 0};
  if (getsockname(rfd, (struct sockaddr*)&local, &llen) != 0) {
    st = LK_FAIL(LIGHTOS_UNAVAILABLE, "rank %u: getsockname: %s", rank, strerror(errno));
    goto fail;
  }
  int backlog = nranks < 16 ? 16 : (nranks > SOMAXCONN ? SOMAXCONN : (int)nranks);
  lfd = lk_tcp_listen(ntohl(local.sin_addr.s_addr), 0, backlog, &me);
  if (lfd < 0) {
    lk_tcp_addr_t a = {ntohl(local.sin_addr.s_addr), 0};
    st = LK_FAIL(LIGHTOS_UNAVAILABLE, "rank %u: cannot listen on %s: %s", rank,
                 lk_tcp_astr(a).s, strerror(errno));
    goto fail;
  }
  table = calloc(nranks, sizeof *table);
  x = calloc(1, sizeof *x);
  if (x) {
    x->wake_fd = -1;
    x->peers = calloc(nranks, sizeof *x->peers);
    x->active = calloc(nranks, sizeof *x->active);
    x->pf = calloc((size_t)nranks + 1, sizeof *x->pf);
    x->pf_peer = calloc(nranks, sizeof *x->pf_peer);
  }
  if (!table || !x || !x->peers || !x->active || !x->pf || !x->pf_peer) {
    st = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "rank %u: out of host memory for %u ranks", rank, nranks);
    goto fail;
  }
  for (uint32_t p = 0; p < nranks; p++) x->peers[p].fd = -1;
  x->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (x->wake_fd < 0) {
    st = LK_FAIL(LIGHTOS_UNAVAILABLE, "rank %u: eventfd: %s", rank, strerror(errno));
    goto fail;
  }

  st = lk_tcp_register(rfd, root, id->nonce, nranks, rank, me, t0, deadline_ns, table);
  lk_tcp_close(&rfd);
  if (st) goto fail;
  int* fds = calloc(nranks, sizeof *fds);
  if (!fds) {
    st = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "rank %u: out of host memory", rank);
    goto fail;
  }
  for (uint32_t p = 0; p < nranks; p++) fds[p] = -1;
  st = lk_tcp_mesh(rank, nranks, id->nonce, table, lfd, t0, deadline_ns, fds);
  for (uint32_t p = 0; p < nranks; p++) {
    x->peers[p].fd = fds[p];
    if (fds[p] >= 0) {
      int one = 1;
      (void)setsockopt(fds[p], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
  }
  free(fds);
  if (st) goto fail;
  lk_tcp_close(&lfd);
  free(table);

  x->base.vtbl = &lk_tcp_vtbl;
  x->base.rank = rank;
  x->base.size = nranks;
  pthread_mutex_init(&x->mu, NULL);
  atomic_init(&x->failed, 0);
  *out = &x->base;
  return LIGHTOS_SUCCESS;

fail:
  lk_tcp_close(&rfd);
  lk_tcp_close(&lfd);
  if (x) {
    if (x->peers)
      for (uint32_t p = 0; p < nranks; p++) lk_tcp_reset(&x->peers[p].fd);
    lk_tcp_close(&x->wake_fd);
    free(x->peers);
    free(x->active);
    free(x->pf);
    free(x->pf_peer);
    free(x);
  }
  free(table);
  return st;
}
