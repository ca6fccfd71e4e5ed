/* Topology discovery: NUMA nodes, sockets, PCI placement and peer access of
 * a group's devices, link classes, the ring order (topo.h). */
#include "comm/topo.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "comm/comm_internal.h"
#include "core/log.h"
#include "core/util.h"
#include "hal/cuda/cuda_backend.h"
#include "runtime/runtime.h"

/* ---- CPU sets (bit i = CPU i; CPUs past LK_CPU_BITS are ignored) ----------------------- */

#define LK_CPU_WORDS 64
#define LK_CPU_BITS (LK_CPU_WORDS * 64)

typedef struct lk_cpuset {
  uint64_t w[LK_CPU_WORDS];
} lk_cpuset_t;

static void lk_cpuset_set(lk_cpuset_t* s, unsigned long i) {
  if (i < LK_CPU_BITS) s->w[i / 64] |= 1ull << (i % 64);
}
static bool lk_cpuset_has(const lk_cpuset_t* s, unsigned long i) {
  return i < LK_CPU_BITS && (s->w[i / 64] >> (i % 64) & 1);
}
static uint32_t lk_cpuset_count(const lk_cpuset_t* s) {
  uint32_t c = 0;
  for (int i = 0; i < LK_CPU_WORDS; ++i) c += (uint32_t)__builtin_popcountll(s->w[i]);
  return c;
}
static bool lk_cpuset_intersects(const lk_cpuset_t* a, const lk_cpuset_t* b) {
  for (int i = 0; i < LK_CPU_WORDS; ++i)
    if (a->w[i] & b->w[i]) return true;
  return false;
}
static void lk_cpuset_or(lk_cpuset_t* a, const lk_cpuset_t* b) {
  for (int i = 0; i < LK_CPU_WORDS; ++i) a->w[i] |= b->w[i];
}
static int lk_cpuset_first(const lk_cpuset_t* s) {
  for (int i = 0; i < LK_CPU_WORDS; ++i)
    if (s->w[i]) return i * 64 + __builtin_ctzll(s->w[i]);
  return -1;
}

/* "0-3,8,10-11" (sysfs lists); false on a malformed list. */
static bool lk_cpuset_parse_list(const char* s, lk_cpuset_t* out) {
  memset(out, 0, sizeof *out);
  while (*s && isspace((unsigned char)*s)) s++;
  while (*s) {
    char* e = NULL;
    if (!isdigit((unsigned char)*s)) return false;
    unsigned long a = strtoul(s, &e, 10), b = a;
    s = e;
    if (*s == '-') {
      if (!isdigit((unsigned char)s[1])) return false;
      b = strtoul(s + 1, &e, 10);
      s = e;
    }
    if (b < a) return false;
    for (unsigned long i = a; i <= b && i < LK_CPU_BITS; ++i) lk_cpuset_set(out, i);
    if (*s == ',') s++;
    else if (*s && !isspace((unsigned char)*s)) return false;
    while (*s && isspace((unsigned char)*s)) s++;
  }
  return true;
}

/* hwloc's bitmap strings: 32-bit words in hex, most significant first,
 * separated by commas ("0xffffffff,0x00000003"); an empty field is a zero
 * word, "0xf...f" a leading infinite run of ones. */
static bool lk_cpuset_parse_hwloc(const char* s, lk_cpuset_t* out) {
  memset(out, 0, sizeof *out);
  size_t nfields = 1;
  for (const char* p = s; *p; ++p) nfields += *p == ',';
  size_t field = 0;
  const char* p = s;
  while (field < nfields) {
    size_t len = strcspn(p, ",");
    size_t word = nfields - 1 - field;
    char tmp[24];
    if (len >= sizeof tmp) return false;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    if (!strcmp(tmp, "0xf...f")) {
      for (size_t w = word * 32; w < LK_CPU_BITS; ++w) lk_cpuset_set(out, w);
    } else if (len) {
      char* e = NULL;
      errno = 0;
      unsigned long long v = strtoull(tmp, &e, 16);
      if (errno || *e || v > 0xffffffffull) return false;
      for (int b = 0; b < 32; ++b)
        if (v >> b & 1) lk_cpuset_set(out, word * 32 + (unsigned long)b);
    }
    p += len;
    if (*p == ',') p++;
    field++;
  }
  return true;
}

/* "0-3,8-11" into buf, "..." when it does not fit. */
static void lk_cpuset_format(const lk_cpuset_t* s, char* buf, size_t cap) {
  size_t len = 0;
  buf[0] = '\0';
  for (unsigned long i = 0; i < LK_CPU_BITS;) {
    if (!lk_cpuset_has(s, i)) {
      i++;
      continue;
    }
    unsigned long j = i;
    while (j + 1 < LK_CPU_BITS && lk_cpuset_has(s, j + 1)) j++;
    if (j == i)
      lk_sbprintf(buf, cap, &len, "%s%lu", len ? "," : "", i);
    else
      lk_sbprintf(buf, cap, &len, "%s%lu-%lu", len ? "," : "", i, j);
    i = j + 1;
  }
  if (len >= cap && cap >= 4) memcpy(buf + cap - 4, "...", 4);
  if (!len) lk_strlcpy(buf, "none", cap);
}

/* ---- small file readers ------------------------------------------------------------- */

/* Reads a small text file; strips trailing white space.  false when unreadable. */
static bool lk_read_text(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  while (n && isspace((unsigned char)buf[n - 1])) buf[--n] = '\0';
  return true;
}

static bool lk_read_long(const char* path, long* out) {
  char buf[64];
  if (!lk_read_text(path, buf, sizeof buf)) return false;
  char* e = NULL;
  errno = 0;
  long v = strtol(buf, &e, 10);
  if (errno || e == buf) return false;
  *out = v;
  return true;
}

/* A PCI bus id as LightOS and sysfs write it: hex digits, ':' and '.'. */
static bool lk_bus_id_ok(const char* id) {
  size_t n = strlen(id);
  if (n < 7 || n >= 32 || !strchr(id, ':') || !strchr(id, '.')) return false;
  for (size_t i = 0; i < n; ++i)
    if (!isxdigit((unsigned char)id[i]) && id[i] != ':' && id[i] != '.') return false;
  return true;
}

/* Appends a zeroed element to a growable array (arr: the address of the
 * array pointer, copied with memcpy so that any element type works). */
static void* lk_grow(void* arr, uint32_t* n, uint32_t* cap, size_t elem) {
  char* a;
  memcpy(&a, arr, sizeof a);
  if (*n == *cap) {
    uint32_t nc = *cap ? *cap * 2 : 8;
    char* p = realloc(a, (size_t)nc * elem);
    if (!p) return NULL;
    a = p;
    memcpy(arr, &a, sizeof a);
    *cap = nc;
  }
  void* e = a + (size_t)(*n)++ * elem;
  memset(e, 0, elem);
  return e;
}

/* ---- the host: NUMA nodes, sockets, PCI devices (hwloc) -------------------------------- */

typedef struct lk_hnuma {
  int os_index, socket;
  uint64_t mem;
  lk_cpuset_t cpus;
} lk_hnuma_t;

typedef struct lk_hsock {
  int os_index;
  lk_cpuset_t cpus;
} lk_hsock_t;

typedef struct lk_hpci {
  char bus_id[32];
  char path[256];
  int numa;
} lk_hpci_t;

typedef struct lk_host {
  char key[300];
  char source[192];
  char sysroot[256];   /* sysfs root for PCI look-ups ("/sys") */
  bool hwloc;
  lk_hnuma_t* numa;
  uint32_t nnuma, cap_numa;
  lk_hsock_t* sock;
  uint32_t nsock, cap_sock;
  lk_hpci_t* pci;
  uint32_t npci, cap_pci;
} lk_host_t;

static void lk_host_free(lk_host_t* h) {
  if (!h) return;
  free(h->numa);
  free(h->sock);
  free(h->pci);
  free(h);
}

static lk_hnuma_t* lk_host_add_numa(lk_host_t* h) {
  return lk_grow(&h->numa, &h->nnuma, &h->cap_numa, sizeof *h->numa);
}

/* Sockets from the nodes' sockets (their CPUs: the union of the nodes'). */
static bool lk_host_add_socket_cpus(lk_host_t* h, int os_index, const lk_cpuset_t* cpus) {
  if (os_index < 0) return true;
  for (uint32_t i = 0; i < h->nsock; ++i)
    if (h->sock[i].os_index == os_index) {
      lk_cpuset_or(&h->sock[i].cpus, cpus);
      return true;
    }
  lk_hsock_t* s = lk_grow(&h->sock, &h->nsock, &h->cap_sock, sizeof *h->sock);
  if (!s) return false;
  s->os_index = os_index;
  s->cpus = *cpus;
  return true;
}

static int lk_host_numa_cmp(const void* a, const void* b) {
  const lk_hnuma_t *x = a, *y = b;
  return (x->os_index > y->os_index) - (x->os_index < y->os_index);
}

/* ---- hwloc, through dlopen ------------------------------------------------------------ */

/* The hwloc 2.x calls used; hwloc_topology_t is an opaque pointer.  Enum
 * values from hwloc 2.x's hwloc.h (stable across the 2.x ABI). */
enum {
  LK_HWLOC_FILTER_KEEP_NONE = 1,
  LK_HWLOC_FILTER_KEEP_IMPORTANT = 3,
  LK_HWLOC_COMPONENTS_FLAG_BLACKLIST = 1
};

typedef struct lk_hwloc_api {
  void* lib;
  const char* libname;
  unsigned api_version;
  unsigned (*get_api_version)(void);
  int (*topology_init)(void** topology);
  int (*topology_load)(void* topology);
  void (*topology_destroy)(void* topology);
  int (*set_io_types_filter)(void* topology, int filter);
  int (*export_xmlbuffer)(void* topology, char** buf, int* len, unsigned long flags);
  void (*free_xmlbuffer)(void* topology, char* buf);
  /* optional */
  int (*set_cache_types_filter)(void* topology, int filter);
  int (*set_components)(void* topology, unsigned long flags, const char* name);
} lk_hwloc_api_t;

static pthread_once_t lk_hwloc_once = PTHREAD_ONCE_INIT;
static lk_hwloc_api_t lk_hwloc;
static bool lk_hwloc_ok;
static char lk_hwloc_reason[192];

static bool lk_hwloc_sym(const char* name, void* fp, bool required) {
  void* sym = lk_dynlib_sym(lk_hwloc.lib, name);
  memcpy(fp, &sym, sizeof sym);
  if (!sym && required)
    snprintf(lk_hwloc_reason, sizeof lk_hwloc_reason, "%s: symbol %s missing",
             lk_hwloc.libname, name);
  return sym || !required;
}

static void lk_hwloc_load_once(void) {
  static const char* const names[] = {"libhwloc.so.15", "libhwloc.so", NULL};
  lk_hwloc.lib = lk_dynlib_open(names, &lk_hwloc.libname, lk_hwloc_reason,
                                sizeof lk_hwloc_reason);
  if (!lk_hwloc.lib) {
    snprintf(lk_hwloc_reason, sizeof lk_hwloc_reason, "libhwloc.so.15 (hwloc 2.x) not found");
    return;
  }
  bool ok = lk_hwloc_sym("hwloc_get_api_version", &lk_hwloc.get_api_version, true) &&
            lk_hwloc_sym("hwloc_topology_init", &lk_hwloc.topology_init, true) &&
            lk_hwloc_sym("hwloc_topology_load", &lk_hwloc.topology_load, true) &&
            lk_hwloc_sym("hwloc_topology_destroy", &lk_hwloc.topology_destroy, true) &&
            lk_hwloc_sym("hwloc_topology_set_io_types_filter", &lk_hwloc.set_io_types_filter,
                         true) &&
            lk_hwloc_sym("hwloc_topology_export_xmlbuffer", &lk_hwloc.export_xmlbuffer, true) &&
            lk_hwloc_sym("hwloc_free_xmlbuffer", &lk_hwloc.free_xmlbuffer, true);
  if (ok) {
    lk_hwloc_sym("hwloc_topology_set_cache_types_filter", &lk_hwloc.set_cache_types_filter,
                 false);
    lk_hwloc_sym("hwloc_topology_set_components", &lk_hwloc.set_components, false);
    lk_hwloc.api_version = lk_hwloc.get_api_version();
    /* HWLOC_API_VERSION 0x00020000 .. 0x0002ffff: the 2.x series, whose
     * export_xmlbuffer takes a flags argument and writes the v2 format. */
    if (lk_hwloc.api_version >> 16 != 2) {
      snprintf(lk_hwloc_reason, sizeof lk_hwloc_reason,
               "%s has API version 0x%x, not hwloc 2.x", lk_hwloc.libname,
               lk_hwloc.api_version);
      ok = false;
    }
  }
  if (!ok) {
    lk_dynlib_close(lk_hwloc.lib);
    lk_hwloc.lib = NULL;
    return;
  }
  lk_hwloc_ok = true;
}

/* ---- hwloc's XML export, read without a parser library --------------------------------- */

/* The '>' that ends the tag starting at p (quoted values skipped). */
static const char* lk_xml_tag_end(const char* p, const char* end) {
  char q = 0;
  for (++p; p < end; ++p) {
    if (q) {
      if (*p == q) q = 0;
    } else if (*p == '"' || *p == '\'') {
      q = *p;
    } else if (*p == '>') {
      return p;
    }
  }
  return NULL;
}

/* True when the tag [p, e) is element `name` (opening). */
static bool lk_xml_is(const char* p, const char* e, const char* name) {
  size_t n = strlen(name);
  if ((size_t)(e - p) < n + 1 || memcmp(p + 1, name, n)) return false;
  char c = p[1 + n];
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '/' || c == '>';
}

static void lk_xml_decode(const char* v, const char* ve, char* out, size_t cap) {
  static const struct {
    const char* ent;
    char c;
  } ents[] = {{"&quot;", '"'}, {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}};
  size_t n = 0;
  while (v < ve && n + 1 < cap) {
    char c = *v++;
    if (c == '&') {
      bool done = false;
      for (size_t i = 0; i < sizeof ents / sizeof ents[0] && !done; ++i) {
        size_t l = strlen(ents[i].ent);
        if ((size_t)(ve - v + 1) >= l && !memcmp(v - 1, ents[i].ent, l)) {
          c = ents[i].c;
          v += l - 1;
          done = true;
        }
      }
      if (!done) { /* &#NN; and the like: one '?' */
        const char* semi = memchr(v, ';', (size_t)(ve - v));
        if (semi && semi - v < 10) v = semi + 1, c = '?';
      }
    }
    out[n++] = c;
  }
  out[n] = '\0';
}

/* Value of attribute `name` of the tag [p, e); false when absent. */
static bool lk_xml_attr(const char* p, const char* e, const char* name, char* out, size_t cap) {
  size_t nl = strlen(name);
  const char* s = p + 1;
  while (s < e && !isspace((unsigned char)*s) && *s != '>' && *s != '/') s++; /* element */
  while (s < e) {
    while (s < e && isspace((unsigned char)*s)) s++;
    const char* an = s;
    while (s < e && *s != '=' && !isspace((unsigned char)*s) && *s != '/' && *s != '>') s++;
    size_t al = (size_t)(s - an);
    if (!al) {
      s++;
      continue;
    }
    while (s < e && isspace((unsigned char)*s)) s++;
    if (s >= e || *s != '=') continue;
    s++;
    while (s < e && isspace((unsigned char)*s)) s++;
    if (s >= e || (*s != '"' && *s != '\'')) return false;
    char q = *s++;
    const char* v = s;
    while (s < e && *s != q) s++;
    if (s >= e) return false;
    if (al == nl && !memcmp(an, name, nl)) {
      lk_xml_decode(v, s, out, cap);
      return true;
    }
    s++;
  }
  return false;
}

enum { LK_X_NORMAL = 0, LK_X_PACKAGE, LK_X_NUMA, LK_X_IO };
#define LK_X_MAX_DEPTH 64

typedef struct lk_xnode {
  int kind;
  int os_index;
  int node;           /* the one NUMA node of its nodeset, else -1 */
  char elem[40];      /* PCI path element of a bridge, else "" */
} lk_xnode_t;

/* The single node of a nodeset string, or -1. */
static int lk_single_node(const char* nodeset) {
  lk_cpuset_t s;
  if (!lk_cpuset_parse_hwloc(nodeset, &s) || lk_cpuset_count(&s) != 1) return -1;
  return lk_cpuset_first(&s);
}

/* Reads what topo needs from hwloc's XML; false (with why) when malformed. */
static bool lk_hwloc_parse(lk_host_t* h, const char* buf, size_t len, char* version,
                           size_t vcap, char* why, size_t why_cap) {
  lk_xnode_t stack[LK_X_MAX_DEPTH];
  int depth = 0;
  const char* end = buf + len;
  char type[32], val[256];
  for (const char* p = buf; (p = memchr(p, '<', (size_t)(end - p))) != NULL;) {
    const char* e = lk_xml_tag_end(p, end);
    if (!e) break;
    bool self_closing = e[-1] == '/';
    if (!strncmp(p, "</object", 8)) {
      if (depth == 0) {
        snprintf(why, why_cap, "unbalanced </object> in hwloc's XML");
        return false;
      }
      depth--;
    } else if (lk_xml_is(p, e, "info")) {
      if (lk_xml_attr(p, e, "name", val, sizeof val) && !strcmp(val, "hwlocVersion"))
        lk_xml_attr(p, e, "value", version, vcap);
    } else if (lk_xml_is(p, e, "object")) {
      if (depth == LK_X_MAX_DEPTH) {
        snprintf(why, why_cap, "hwloc's XML nests deeper than %d objects", LK_X_MAX_DEPTH);
        return false;
      }
      lk_xnode_t* x = &stack[depth];
      memset(x, 0, sizeof *x);
      x->os_index = -1;
      x->node = -1;
      if (!lk_xml_attr(p, e, "type", type, sizeof type)) type[0] = '\0';
      if (lk_xml_attr(p, e, "os_index", val, sizeof val)) x->os_index = atoi(val);
      if (lk_xml_attr(p, e, "nodeset", val, sizeof val)) x->node = lk_single_node(val);
      if (!strcmp(type, "Bridge") || !strcmp(type, "PCIDev") || !strcmp(type, "OSDev") ||
          !strcmp(type, "Misc"))
        x->kind = LK_X_IO;
      else if (!strcmp(type, "Package"))
        x->kind = LK_X_PACKAGE;
      else if (!strcmp(type, "NUMANode"))
        x->kind = LK_X_NUMA;

      if (x->kind == LK_X_NUMA && x->os_index >= 0) {
        lk_hnuma_t* nn = lk_host_add_numa(h);
        if (!nn) goto oom;
        nn->os_index = x->os_index;
        nn->socket = -1;
        for (int i = depth - 1; i >= 0; --i)
          if (stack[i].kind == LK_X_PACKAGE) {
            nn->socket = stack[i].os_index;
            break;
          }
        if (lk_xml_attr(p, e, "cpuset", val, sizeof val)) lk_cpuset_parse_hwloc(val, &nn->cpus);
        if (lk_xml_attr(p, e, "local_memory", val, sizeof val))
          nn->mem = strtoull(val, NULL, 10);
        if (lk_cpuset_count(&nn->cpus) == 0) nn->socket = -1;
      } else if (!strcmp(type, "Bridge")) {
        if (lk_xml_attr(p, e, "pci_busid", val, sizeof val)) {
          lk_strlcpy(x->elem, val, sizeof x->elem);
        } else if (lk_xml_attr(p, e, "bridge_pci", val, sizeof val)) {
          /* a host bridge: "0000:[00-03]" is the root bus range; sysfs
           * names the root complex "pci0000:00" */
          const char* br = strchr(val, '[');
          const char* colon = strchr(val, ':');
          if (br && colon && colon < br)
            snprintf(x->elem, sizeof x->elem, "pci%.*s:%.2s", (int)(colon - val), val, br + 1);
        }
      } else if (!strcmp(type, "PCIDev") && lk_xml_attr(p, e, "pci_busid", val, sizeof val)) {
        lk_hpci_t* pc = lk_grow(&h->pci, &h->npci, &h->cap_pci, sizeof *h->pci);
        if (!pc) goto oom;
        lk_strlcpy(pc->bus_id, val, sizeof pc->bus_id);
        pc->numa = -1;
        size_t plen = 0;
        for (int i = 0; i < depth; ++i)
          if (stack[i].elem[0])
            lk_sbprintf(pc->path, sizeof pc->path, &plen, "%s/", stack[i].elem);
        lk_sbprintf(pc->path, sizeof pc->path, &plen, "%s", val);
        if (plen >= sizeof pc->path) pc->path[0] = '\0'; /* too deep: unknown */
        for (int i = depth - 1; i >= 0; --i)
          if (stack[i].kind != LK_X_IO) {
            pc->numa = stack[i].node;
            break;
          }
      }
      if (!self_closing) depth++;
    }
    p = e + 1;
  }
  if (h->nnuma == 0) {
    snprintf(why, why_cap, "hwloc reported no NUMA node");
    return false;
  }
  return true;
oom:
  snprintf(why, why_cap, "out of host memory reading hwloc's topology");
  return false;
}

static bool lk_host_from_hwloc(lk_host_t* h, char* why, size_t why_cap) {
  pthread_once(&lk_hwloc_once, lk_hwloc_load_once);
  if (!lk_hwloc_ok) {
    snprintf(why, why_cap, "%s", lk_hwloc_reason);
    return false;
  }
  void* topo = NULL;
  if (lk_hwloc.topology_init(&topo) != 0 || !topo) {
    snprintf(why, why_cap, "hwloc_topology_init failed");
    return false;
  }
  lk_hwloc.set_io_types_filter(topo, LK_HWLOC_FILTER_KEEP_IMPORTANT);
  if (lk_hwloc.set_cache_types_filter)
    lk_hwloc.set_cache_types_filter(topo, LK_HWLOC_FILTER_KEEP_NONE);
  if (lk_hwloc.set_components) {
    /* Not needed here, and slow or intrusive: the x86 component binds the
     * thread to each CPU in turn; the GPU components initialise the vendor
     * runtimes (devices are matched by PCI bus id instead).  Unknown names
     * are ignored by hwloc. */
    static const char* const skip[] = {"x86", "opencl", "cuda", "nvml", "rsmi", "levelzero",
                                       "gl"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; ++i)
      lk_hwloc.set_components(topo, LK_HWLOC_COMPONENTS_FLAG_BLACKLIST, skip[i]);
  }
  bool ok = false;
  char* xml = NULL;
  int xml_len = 0;
  if (lk_hwloc.topology_load(topo) != 0) {
    snprintf(why, why_cap, "hwloc_topology_load failed");
  } else if (lk_hwloc.export_xmlbuffer(topo, &xml, &xml_len, 0) != 0 || !xml || xml_len <= 0) {
    snprintf(why, why_cap, "hwloc_topology_export_xmlbuffer failed");
  } else {
    char version[32] = "";
    ok = lk_hwloc_parse(h, xml, (size_t)xml_len, version, sizeof version, why, why_cap);
    if (!version[0])
      snprintf(version, sizeof version, "API 0x%x", lk_hwloc.api_version);
    snprintf(h->source, sizeof h->source, "hwloc %s (%s)", version, lk_hwloc.libname);
  }
  if (xml) lk_hwloc.free_xmlbuffer(topo, xml);
  lk_hwloc.topology_destroy(topo);
  return ok;
}

/* ---- sysfs -------------------------------------------------------------------------------- */

static bool lk_host_from_sysfs(lk_host_t* h, const char* root, char* why, size_t why_cap) {
  char path[512], buf[4096];
  lk_cpuset_t nodes;
  snprintf(path, sizeof path, "%s/devices/system/node/online", root);
  if (!lk_read_text(path, buf, sizeof buf) || !lk_cpuset_parse_list(buf, &nodes) ||
      lk_cpuset_count(&nodes) == 0) {
    snprintf(why, why_cap, "%s not readable", path);
    return false;
  }
  for (unsigned long n = 0; n < LK_CPU_BITS; ++n) {
    if (!lk_cpuset_has(&nodes, n)) continue;
    lk_hnuma_t* nn = lk_host_add_numa(h);
    if (!nn) {
      snprintf(why, why_cap, "out of host memory reading %s", root);
      return false;
    }
    nn->os_index = (int)n;
    nn->socket = -1;
    snprintf(path, sizeof path, "%s/devices/system/node/node%lu/cpulist", root, n);
    if (lk_read_text(path, buf, sizeof buf)) lk_cpuset_parse_list(buf, &nn->cpus);
    snprintf(path, sizeof path, "%s/devices/system/node/node%lu/meminfo", root, n);
    if (lk_read_text(path, buf, sizeof buf)) {
      const char* m = strstr(buf, "MemTotal:");
      if (m) nn->mem = strtoull(m + 9, NULL, 10) * 1024ull; /* kB */
    }
    int first = lk_cpuset_first(&nn->cpus);
    long pkg = -1;
    if (first >= 0) {
      snprintf(path, sizeof path, "%s/devices/system/cpu/cpu%d/topology/physical_package_id",
               root, first);
      if (!lk_read_long(path, &pkg)) pkg = -1;
    }
    nn->socket = pkg >= 0 && pkg <= INT_MAX ? (int)pkg : -1;
  }
  snprintf(h->source, sizeof h->source, "sysfs (%s)", root);
  return true;
}

/* Places a PCI device from sysfs: its path below the root complex and NUMA node. */
static void lk_sysfs_place_pci(const char* root, const char* bus_id, char* pci_path,
                               size_t path_cap, int* numa) {
  char path[512], link[1024];
  snprintf(path, sizeof path, "%s/bus/pci/devices/%s", root, bus_id);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n > 0 && !pci_path[0]) {
    link[n] = '\0';
    /* ".../devices/pci0000:00/0000:00:01.0/0000:01:00.0": from "pci<domain>" on */
    for (char* s = link; (s = strstr(s, "/pci")) != NULL; ++s)
      if (isxdigit((unsigned char)s[4])) {
        lk_strlcpy(pci_path, s + 1, path_cap);
        if (strlen(s + 1) >= path_cap) pci_path[0] = '\0';
        break;
      }
  }
  long v;
  snprintf(path, sizeof path, "%s/bus/pci/devices/%s/numa_node", root, bus_id);
  if (*numa < 0 && lk_read_long(path, &v) && v >= 0 && v <= INT_MAX) *numa = (int)v;
}

/* ---- the cached host topology ------------------------------------------------------------ */

static pthread_mutex_t lk_host_lock = PTHREAD_MUTEX_INITIALIZER;
static lk_host_t* lk_host_cached;

/* The host topology for the current settings; call with lk_host_lock held.
 * NULL only when out of memory. */
static lk_host_t* lk_host_get(void) {
  const char* sysroot = getenv("LIGHTOS_TOPO_SYSFS");
  bool custom_root = sysroot && *sysroot;
  if (!custom_root) sysroot = "/sys";
  bool use_hwloc = lk_env_flag("LIGHTOS_TOPO_HWLOC", true) && !custom_root;
  char key[300];
  snprintf(key, sizeof key, "%s|%s", use_hwloc ? "hwloc" : "sysfs", sysroot);
  if (lk_host_cached && !strcmp(lk_host_cached->key, key)) return lk_host_cached;

  lk_host_t* h = calloc(1, sizeof *h);
  if (!h) return NULL;
  lk_strlcpy(h->key, key, sizeof h->key);
  lk_strlcpy(h->sysroot, sysroot, sizeof h->sysroot);
  char hwloc_why[256] = "", sysfs_why[600] = "";
  if (!use_hwloc)
    snprintf(hwloc_why, sizeof hwloc_why, "%s",
             custom_root ? "not used with LIGHTOS_TOPO_SYSFS"
                         : "disabled by LIGHTOS_TOPO_HWLOC=0");
  else if (lk_host_from_hwloc(h, hwloc_why, sizeof hwloc_why))
    h->hwloc = true;
  if (!h->hwloc) {
    h->nnuma = h->nsock = h->npci = 0;
    if (lk_host_from_sysfs(h, sysroot, sysfs_why, sizeof sysfs_why)) {
      size_t len = strlen(h->source);
      lk_sbprintf(h->source, sizeof h->source, &len, "; hwloc %s", hwloc_why);
    } else {
      h->nnuma = 0;
      lk_hnuma_t* nn = lk_host_add_numa(h);
      if (!nn) {
        lk_host_free(h);
        return NULL;
      }
      long ncpu = sysconf(_SC_NPROCESSORS_CONF);
      for (long i = 0; i < (ncpu > 0 ? ncpu : 1); ++i) lk_cpuset_set(&nn->cpus, (unsigned long)i);
      nn->os_index = 0;
      nn->socket = -1;
      size_t len = 0;
      lk_sbprintf(h->source, sizeof h->source, &len,
                  "none: one NUMA node assumed (hwloc %s; %s)", hwloc_why, sysfs_why);
    }
  }
  qsort(h->numa, h->nnuma, sizeof *h->numa, lk_host_numa_cmp);
  for (uint32_t i = 0; i < h->nnuma; ++i)
    if (!lk_host_add_socket_cpus(h, h->numa[i].socket, &h->numa[i].cpus)) {
      lk_host_free(h);
      return NULL;
    }
  LK_LOG_DEBUG("topology: %s, %u NUMA node(s), %u socket(s), %u PCI device(s) from hwloc",
               h->source, h->nnuma, h->nsock, h->npci);
  lk_host_free(lk_host_cached);
  lk_host_cached = h;
  return h;
}

static const lk_hnuma_t* lk_host_node(const lk_host_t* h, int os_index) {
  for (uint32_t i = 0; i < h->nnuma; ++i)
    if (h->numa[i].os_index == os_index) return &h->numa[i];
  return NULL;
}

/* numa -> socket; a single-node host places everything on its node. */
static void lk_finish_placement(const lk_host_t* h, lk_topo_dev_t* d) {
  if (d->numa_node < 0 && h->nnuma == 1) {
    d->numa_node = h->numa[0].os_index;
    lk_strlcpy(d->placed_by, "one node", sizeof d->placed_by);
  }
  const lk_hnuma_t* nn = d->numa_node >= 0 ? lk_host_node(h, d->numa_node) : NULL;
  if (nn && nn->socket >= 0) d->socket = nn->socket;
  if (d->numa_node < 0 && d->socket < 0) lk_strlcpy(d->placed_by, "unknown", sizeof d->placed_by);
}

static void lk_place_pci_locked(const lk_host_t* h, const char* bus_id, lk_topo_dev_t* d) {
  d->numa_node = -1;
  d->socket = -1;
  d->pci_path[0] = '\0';
  d->placed_by[0] = '\0';
  int numa = -1;
  if (h->hwloc)
    for (uint32_t i = 0; i < h->npci; ++i)
      if (!strcasecmp(h->pci[i].bus_id, bus_id)) {
        lk_strlcpy(d->pci_path, h->pci[i].path, sizeof d->pci_path);
        numa = h->pci[i].numa;
        if (numa >= 0) lk_strlcpy(d->placed_by, "hwloc", sizeof d->placed_by);
        break;
      }
  if (numa < 0 || !d->pci_path[0]) {
    char lower[32];
    size_t i = 0;
    for (; bus_id[i] && i + 1 < sizeof lower; ++i)
      lower[i] = (char)tolower((unsigned char)bus_id[i]);
    lower[i] = '\0';
    int before = numa;
    lk_sysfs_place_pci(h->sysroot, lower, d->pci_path, sizeof d->pci_path, &numa);
    if (numa >= 0 && before < 0) lk_strlcpy(d->placed_by, "sysfs", sizeof d->placed_by);
  }
  if (numa >= 0 && !lk_host_node(h, numa)) numa = -1; /* a node the host does not list */
  d->numa_node = numa;
  lk_finish_placement(h, d);
}

lightos_status_t lk_topo_place_pci(const char* bus_id, lk_topo_dev_t* d) {
  if (!bus_id) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "bus_id is NULL");
  if (!d) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "d is NULL");
  if (!lk_bus_id_ok(bus_id))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "bus_id \"%.40s\" is not a PCI bus id (like \"0000:3b:00.0\")", bus_id);
  pthread_mutex_lock(&lk_host_lock);
  lk_host_t* h = lk_host_get();
  if (h) lk_place_pci_locked(h, bus_id, d);
  pthread_mutex_unlock(&lk_host_lock);
  if (!h) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory reading the topology");
  return LIGHTOS_SUCCESS;
}

/* A host-memory device (a CPU device): the node (socket) of the CPUs this
 * thread may run on, when they are all on one. */
static void lk_place_cpu_locked(const lk_host_t* h, lk_topo_dev_t* d) {
  d->numa_node = -1;
  d->socket = -1;
  lk_strlcpy(d->placed_by, "affinity", sizeof d->placed_by);
  lk_cpuset_t mine;
  memset(&mine, 0, sizeof mine);
  cpu_set_t* cs = CPU_ALLOC(LK_CPU_BITS);
  size_t sz = CPU_ALLOC_SIZE(LK_CPU_BITS);
  bool have = false;
  if (cs) {
    CPU_ZERO_S(sz, cs);
    if (sched_getaffinity(0, sz, cs) == 0) {
      for (int i = 0; i < LK_CPU_BITS; ++i)
        if (CPU_ISSET_S((size_t)i, sz, cs)) lk_cpuset_set(&mine, (unsigned long)i);
      have = lk_cpuset_count(&mine) > 0;
    }
    CPU_FREE(cs);
  }
  if (have) {
    int hit = -1, count = 0;
    for (uint32_t i = 0; i < h->nnuma; ++i)
      if (lk_cpuset_intersects(&mine, &h->numa[i].cpus)) hit = h->numa[i].os_index, count++;
    if (count == 1) d->numa_node = hit;
    hit = -1, count = 0;
    for (uint32_t i = 0; i < h->nsock; ++i)
      if (lk_cpuset_intersects(&mine, &h->sock[i].cpus)) hit = h->sock[i].os_index, count++;
    if (count == 1) d->socket = hit;
  }
  lk_finish_placement(h, d);
}

/* ---- devices ------------------------------------------------------------------------------ */

static void lk_host_name(char* buf, size_t cap) {
  if (gethostname(buf, cap) != 0) lk_strlcpy(buf, "localhost", cap);
  buf[cap - 1] = '\0';
}

lightos_status_t lk_topo_describe(lightos_device_t device, lk_topo_dev_t* out) {
  if (!out) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "out is NULL");
  lk_device_t* dev = NULL;
  LK_RESOLVE(dev, device, LK_OBJ_DEVICE, "device");
  const lightos_device_info_t* in = &dev->hal->info;
  memset(out, 0, sizeof *out);
  lk_strlcpy(out->uri, in->uri, sizeof out->uri);
  lk_strlcpy(out->name, in->name, sizeof out->name);
  out->backend = (int32_t)in->backend;
  out->type = (int32_t)in->type;
  lk_host_name(out->host, sizeof out->host);
  if (in->pci_bus_id[0] && lk_bus_id_ok(in->pci_bus_id))
    lk_strlcpy(out->pci_bus_id, in->pci_bus_id, sizeof out->pci_bus_id);
  pthread_mutex_lock(&lk_host_lock);
  lk_host_t* h = lk_host_get();
  if (h) {
    if (out->pci_bus_id[0])
      lk_place_pci_locked(h, out->pci_bus_id, out);
    else if (in->type == LIGHTOS_DEVICE_TYPE_CPU)
      lk_place_cpu_locked(h, out);
    else {
      out->numa_node = out->socket = -1;
      lk_finish_placement(h, out);
    }
  }
  pthread_mutex_unlock(&lk_host_lock);
  if (!h) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory reading the topology");
  return LIGHTOS_SUCCESS;
}

/* ---- links -------------------------------------------------------------------------------- */

const char* lk_topo_link_name(lk_topo_link_t link) {
  switch (link) {
    case LK_LINK_SELF: return "self";
    case LK_LINK_PEER: return "peer";
    case LK_LINK_PCI_SWITCH: return "pci-switch";
    case LK_LINK_PCI_ROOT: return "pci-root";
    case LK_LINK_NUMA: return "numa";
    case LK_LINK_SOCKET: return "socket";
    case LK_LINK_CROSS_SOCKET: return "cross-socket";
    case LK_LINK_HOST: return "host";
    case LK_LINK_NET: return "net";
  }
  return "?";
}

/* Elements of a PCI path ("pci0000:00/0000:00:01.0/0000:01:00.0"). */
static size_t lk_path_elems(const char* p, const char** el, size_t* len, size_t max) {
  size_t n = 0;
  while (*p && n < max) {
    size_t l = strcspn(p, "/");
    el[n] = p, len[n] = l, n++;
    p += l;
    if (*p == '/') p++;
  }
  return n;
}

/* Class of the link between two described devices, peer access aside. */
static lk_topo_link_t lk_classify(const lk_topo_dev_t* a, const lk_topo_dev_t* b) {
  if (strcmp(a->host, b->host)) return LK_LINK_NET;
  if (!strcmp(a->uri, b->uri)) return LK_LINK_SELF;
  if (a->pci_bus_id[0] && !strcasecmp(a->pci_bus_id, b->pci_bus_id)) return LK_LINK_SELF;
  if (a->pci_path[0] && b->pci_path[0]) {
    const char *ea[32], *eb[32];
    size_t la[32], lb[32];
    size_t na = lk_path_elems(a->pci_path, ea, la, 32);
    size_t nb = lk_path_elems(b->pci_path, eb, lb, 32);
    size_t common = 0; /* shared elements above both devices */
    while (common + 1 < na && common + 1 < nb && la[common] == lb[common] &&
           !strncasecmp(ea[common], eb[common], la[common]))
      common++;
    if (common >= 2) return LK_LINK_PCI_SWITCH; /* root complex + a bridge */
    if (common == 1) return LK_LINK_PCI_ROOT;
  }
  if (a->numa_node >= 0 && b->numa_node >= 0) {
    if (a->numa_node == b->numa_node) return LK_LINK_NUMA;
    if (a->socket >= 0 && b->socket >= 0)
      return a->socket == b->socket ? LK_LINK_SOCKET : LK_LINK_CROSS_SOCKET;
    return LK_LINK_HOST;
  }
  if (a->socket >= 0 && b->socket >= 0 && a->socket != b->socket) return LK_LINK_CROSS_SOCKET;
  return LK_LINK_HOST;
}

lk_topo_link_t lk_topo_link(const lk_topo_t* t, uint32_t a, uint32_t b) {
  if (!t || a >= t->n || b >= t->n) return LK_LINK_HOST;
  return (lk_topo_link_t)t->links[(size_t)a * t->n + b];
}

lightos_status_t lk_topo_set_peer(lk_topo_t* t, uint32_t a, uint32_t b, bool can) {
  if (!t) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "t is NULL");
  if (a >= t->n || b >= t->n)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ranks %u, %u: the topology has %u rank(s)", a, b,
                   t->n);
  lk_topo_link_t base = lk_classify(&t->devs[a], &t->devs[b]);
  if (a == b) base = LK_LINK_SELF;
  lk_topo_link_t l = base == LK_LINK_SELF ? base : can ? LK_LINK_PEER : base;
  t->links[(size_t)a * t->n + b] = (uint8_t)l;
  t->links[(size_t)b * t->n + a] = (uint8_t)l;
  return LIGHTOS_SUCCESS;
}

/* ---- building ----------------------------------------------------------------------------- */

void lk_topo_free(lk_topo_t* t) {
  if (!t) return;
  free(t->devs);
  free(t->links);
  free(t->numa);
  free(t);
}

lightos_status_t lk_topo_build(const lk_topo_dev_t* descs, uint32_t n, lk_topo_t** out) {
  if (!out) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (!descs) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "descs is NULL");
  if (n == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "n is 0: a topology needs a device");
  if (n > LK_TOPO_MAX_DEVICES)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "n is %u: at most %u devices", n,
                   LK_TOPO_MAX_DEVICES);
  lk_topo_t* t = calloc(1, sizeof *t);
  if (!t) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a topology");
  t->n = n;
  t->devs = malloc((size_t)n * sizeof *t->devs);
  t->links = malloc((size_t)n * n);
  if (!t->devs || !t->links) {
    lk_topo_free(t);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a topology of %u devices", n);
  }
  memcpy(t->devs, descs, (size_t)n * sizeof *t->devs);
  for (uint32_t i = 0; i < n; ++i) { /* make every string terminated */
    lk_topo_dev_t* d = &t->devs[i];
    d->uri[sizeof d->uri - 1] = d->name[sizeof d->name - 1] = '\0';
    d->pci_bus_id[sizeof d->pci_bus_id - 1] = d->pci_path[sizeof d->pci_path - 1] = '\0';
    d->host[sizeof d->host - 1] = d->placed_by[sizeof d->placed_by - 1] = '\0';
    if (d->numa_node < -1) d->numa_node = -1;
    if (d->socket < -1) d->socket = -1;
  }
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t j = i; j < n; ++j) {
      lk_topo_link_t l = i == j ? LK_LINK_SELF : lk_classify(&t->devs[i], &t->devs[j]);
      t->links[(size_t)i * n + j] = t->links[(size_t)j * n + i] = (uint8_t)l;
    }
  lk_host_name(t->host, sizeof t->host);

  pthread_mutex_lock(&lk_host_lock);
  lk_host_t* h = lk_host_get();
  if (h) {
    lk_strlcpy(t->source, h->source, sizeof t->source);
    t->nsockets = h->nsock;
    t->numa = calloc(h->nnuma, sizeof *t->numa);
    if (t->numa) {
      t->nnuma = h->nnuma;
      for (uint32_t i = 0; i < h->nnuma; ++i) {
        lk_topo_numa_t* o = &t->numa[i];
        o->os_index = h->numa[i].os_index;
        o->socket = h->numa[i].socket;
        o->mem_bytes = h->numa[i].mem;
        o->ncpus = lk_cpuset_count(&h->numa[i].cpus);
        lk_cpuset_format(&h->numa[i].cpus, o->cpus, sizeof o->cpus);
      }
    }
  }
  pthread_mutex_unlock(&lk_host_lock);
  if (!h || !t->numa) {
    lk_topo_free(t);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory reading the topology");
  }
  *out = t;
  return LIGHTOS_SUCCESS;
}

/* Peer access between two CUDA devices, queried on the devices (no
 * context needed once the driver is initialised, which the probe did). */
static bool lk_cuda_can_peer(const lk_device_t* a, const lk_device_t* b) {
  if (a->hal->backend->id != LIGHTOS_BACKEND_CUDA || b->hal->backend->id != LIGHTOS_BACKEND_CUDA)
    return false;
  const lk_cu_device_t* x = (const lk_cu_device_t*)a->hal;
  const lk_cu_device_t* y = (const lk_cu_device_t*)b->hal;
  if (x == y || !x->api || !x->api->cuDeviceCanAccessPeer) return false;
  int ab = 0, ba = 0;
  if (x->api->cuDeviceCanAccessPeer(&ab, x->dev, y->dev) != CUDA_SUCCESS ||
      x->api->cuDeviceCanAccessPeer(&ba, y->dev, x->dev) != CUDA_SUCCESS)
    return false;
  return ab && ba;
}

lightos_status_t lk_topo_discover(const lightos_device_t* devs, uint32_t n, lk_topo_t** out) {
  if (!out) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (!devs) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "devs is NULL");
  if (n == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "n is 0: a topology needs a device");
  if (n > LK_TOPO_MAX_DEVICES)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "n is %u: at most %u devices", n,
                   LK_TOPO_MAX_DEVICES);
  lk_device_t** hd = malloc((size_t)n * sizeof *hd);
  lk_topo_dev_t* descs = malloc((size_t)n * sizeof *descs);
  lightos_status_t s = LIGHTOS_SUCCESS;
  if (!hd || !descs) s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for %u devices", n);
  for (uint32_t i = 0; i < n && !s; ++i) {
    char what[32];
    snprintf(what, sizeof what, "devs[%u]", i);
    lk_object_t* o = NULL;
    s = lk_handle_resolve(devs[i], LK_OBJ_DEVICE, what, &o);
    if (!s) {
      hd[i] = (lk_device_t*)o;
      s = lk_topo_describe(devs[i], &descs[i]);
    }
  }
  lk_topo_t* t = NULL;
  if (!s) s = lk_topo_build(descs, n, &t);
  for (uint32_t i = 0; i < n && !s; ++i)
    for (uint32_t j = i + 1; j < n; ++j)
      if (t->links[(size_t)i * n + j] != LK_LINK_SELF && lk_cuda_can_peer(hd[i], hd[j]))
        lk_topo_set_peer(t, i, j, true);
  free(hd);
  free(descs);
  if (s) return s;
  *out = t;
  return LIGHTOS_SUCCESS;
}

/* ---- the ring ----------------------------------------------------------------------------- */

typedef struct lk_rkey {
  const lk_topo_dev_t* d;
  uint32_t rank;
} lk_rkey_t;

static int lk_known(int v) { return v >= 0 ? v : INT_MAX; }

static int lk_rkey_cmp(const void* pa, const void* pb) {
  const lk_rkey_t *a = pa, *b = pb;
  int c = strcmp(a->d->host, b->d->host);
  if (c) return c;
  int x = lk_known(a->d->socket), y = lk_known(b->d->socket);
  if (x != y) return x < y ? -1 : 1;
  x = lk_known(a->d->numa_node), y = lk_known(b->d->numa_node);
  if (x != y) return x < y ? -1 : 1;
  c = strcasecmp(a->d->pci_path, b->d->pci_path);
  if (c) return c;
  return (a->rank > b->rank) - (a->rank < b->rank);
}

/* Sum of link distances over the ring's edges; counts[] per class. */
static uint64_t lk_ring_cost(const lk_topo_t* t, const uint32_t* order, uint32_t* counts) {
  uint64_t cost = 0;
  if (counts) memset(counts, 0, (LK_LINK_NET + 1) * sizeof *counts);
  uint32_t edges = t->n < 2 ? 0 : t->n == 2 ? 1 : t->n;
  for (uint32_t k = 0; k < edges; ++k) {
    lk_topo_link_t l = lk_topo_link(t, order[k], order[(k + 1) % t->n]);
    cost += (uint64_t)l;
    if (counts) counts[l]++;
  }
  return cost;
}

/* Improves a ring in place by 2-opt moves (reversing the segment between
 * two edges when the two new edges are strictly closer than the two old
 * ones), scanned in a fixed order, so the result is deterministic.  Returns
 * the number of reversals. */
#define LK_RING_2OPT_MAX 1024u
static uint32_t lk_ring_2opt(const lk_topo_t* t, uint32_t* order, uint32_t n) {
  uint32_t moves = 0;
  if (n < 4 || n > LK_RING_2OPT_MAX) return 0;
  for (int pass = 0; pass < 64; ++pass) {
    bool improved = false;
    for (uint32_t i = 0; i + 2 < n; ++i)
      for (uint32_t j = i + 2; j < n; ++j) {
        if (i == 0 && j == n - 1) continue; /* the two edges meet at order[0] */
        uint32_t a = order[i], b = order[i + 1], c = order[j], d = order[(j + 1) % n];
        int before = (int)lk_topo_link(t, a, b) + (int)lk_topo_link(t, c, d);
        int after = (int)lk_topo_link(t, a, c) + (int)lk_topo_link(t, b, d);
        if (after >= before) continue;
        for (uint32_t x = i + 1, y = j; x < y; ++x, --y) {
          uint32_t tmp = order[x];
          order[x] = order[y];
          order[y] = tmp;
        }
        moves++;
        improved = true;
      }
    if (!improved) break;
  }
  return moves;
}

static void lk_edges_text(const uint32_t* counts, char* buf, size_t cap, size_t* len) {
  bool first = true;
  for (int l = 0; l <= LK_LINK_NET; ++l)
    if (counts[l]) {
      lk_sbprintf(buf, cap, len, "%s%u %s", first ? "" : ", ", counts[l],
                  lk_topo_link_name((lk_topo_link_t)l));
      first = false;
    }
}

lightos_status_t lk_topo_ring_order(const lk_topo_t* t, uint32_t* order, char* why,
                                    size_t why_cap) {
  if (!t) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "t is NULL");
  if (!order) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "order is NULL");
  if (why && why_cap) why[0] = '\0';
  if (!why) why_cap = 0;
  size_t len = 0;
  uint32_t n = t->n;
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  if (n == 1) {
    lk_sbprintf(why, why_cap, &len, "one rank: no ring");
    return LIGHTOS_SUCCESS;
  }
  if (n == 2) {
    lk_sbprintf(why, why_cap, &len, "two ranks: one link (%s), any order is the same ring",
                lk_topo_link_name(lk_topo_link(t, 0, 1)));
    return LIGHTOS_SUCCESS;
  }
  lk_rkey_t* keys = malloc((size_t)n * sizeof *keys);
  uint32_t* sorted = malloc((size_t)n * sizeof *sorted);
  if (!keys || !sorted) {
    free(keys);
    free(sorted);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a ring of %u ranks", n);
  }
  for (uint32_t i = 0; i < n; ++i) keys[i].d = &t->devs[i], keys[i].rank = i;
  qsort(keys, n, sizeof *keys, lk_rkey_cmp);
  for (uint32_t i = 0; i < n; ++i) sorted[i] = keys[i].rank;
  free(keys);
  uint32_t moves = lk_ring_2opt(t, sorted, n);
  uint32_t c_id[LK_LINK_NET + 1], c_sorted[LK_LINK_NET + 1];
  uint64_t cost_id = lk_ring_cost(t, order, c_id);
  uint64_t cost_sorted = lk_ring_cost(t, sorted, c_sorted);
  if (cost_sorted < cost_id) {
    memcpy(order, sorted, (size_t)n * sizeof *order);
    lk_sbprintf(why, why_cap, &len,
                "ranks sorted by host, socket, NUMA node, then PCI path (rank index breaks "
                "ties; unknown placement last)");
    if (moves)
      lk_sbprintf(why, why_cap, &len,
                  ", then %u segment(s) reversed where that gives closer neighbours", moves);
    lk_sbprintf(why, why_cap, &len, ": ring edges ");
    lk_edges_text(c_sorted, why, why_cap, &len);
    lk_sbprintf(why, why_cap, &len, " (rank order would have ");
    lk_edges_text(c_id, why, why_cap, &len);
    lk_sbprintf(why, why_cap, &len, ")");
  } else {
    bool same = !memcmp(order, sorted, (size_t)n * sizeof *order);
    lk_sbprintf(why, why_cap, &len, "rank order kept: %s; ring edges ",
                same ? "it is already sorted by host, socket, NUMA node and PCI path"
                     : "sorting by host, socket, NUMA node and PCI path (and shortening) gives "
                       "no closer ring");
    lk_edges_text(c_id, why, why_cap, &len);
  }
  free(sorted);
  if (why && why_cap && len >= why_cap && why_cap >= 4) memcpy(why + why_cap - 4, "...", 4);
  return LIGHTOS_SUCCESS;
}

/* ---- the fixed summation tree ------------------------------------------------------------- */

static void lk_tree_text(uint32_t lo, uint32_t n, char* buf, size_t cap, size_t* len) {
  if (n == 1) {
    lk_sbprintf(buf, cap, len, "r%u", lo);
    return;
  }
  uint32_t m = 1;
  while (m < n - m) m *= 2; /* the largest power of two below n */
  lk_sbprintf(buf, cap, len, "(");
  lk_tree_text(lo, m, buf, cap, len);
  lk_sbprintf(buf, cap, len, " + ");
  lk_tree_text(lo + m, n - m, buf, cap, len);
  lk_sbprintf(buf, cap, len, ")");
}

lightos_status_t lk_topo_sum_tree(uint32_t n, char* buf, size_t cap, size_t* out_len) {
  if (n == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "n is 0: a tree needs a rank");
  if (!buf && cap) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "buf is NULL with cap %zu", cap);
  size_t len = 0;
  if (buf && cap) buf[0] = '\0';
  lk_tree_text(0, n, buf, cap, &len);
  if (buf && len >= cap && cap >= 4) memcpy(buf + cap - 4, "...", 4);
  if (out_len) *out_len = len;
  return LIGHTOS_SUCCESS;
}

/* ---- printing ----------------------------------------------------------------------------- */

static const char* lk_type_text(int32_t type) {
  switch (type) {
    case LIGHTOS_DEVICE_TYPE_CPU: return "CPU";
    case LIGHTOS_DEVICE_TYPE_GPU_DISCRETE: return "discrete GPU";
    case LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED: return "integrated GPU";
    case LIGHTOS_DEVICE_TYPE_ACCELERATOR: return "accelerator";
  }
  return "?";
}

static void lk_int_text(int v, char* buf, size_t cap) {
  if (v >= 0)
    snprintf(buf, cap, "%d", v);
  else
    lk_strlcpy(buf, "-", cap);
}

#define LK_PRINT_MATRIX_MAX 64u

/* How a group over these devices would be composed (comm.c,
 * lk_hier_plan): aligned blocks of one backend with a device library sum
 * inside, the host path between them. */
static void lk_topo_print_composition(FILE* f, const lk_topo_t* t) {
  const uint32_t n = t->n;
  char(*names)[32] = calloc(n, sizeof *names);
  const char** bk = calloc(n, sizeof *bk);
  bool* can = calloc(n, sizeof *can);
  uint32_t* span = calloc(n, sizeof *span);
  if (!names || !bk || !can || !span) {
    free(names);
    free(bk);
    free(can);
    free(span);
    return;
  }
  bool mixed = false, cuda_without = false;
  for (uint32_t r = 0; r < n; ++r) {
    lk_uri_backend(t->devs[r].uri, names[r], sizeof names[r]);
    bk[r] = names[r];
    mixed = mixed || strcmp(names[r], names[0]);
    can[r] = lk_hier_lib(names[r]);
    cuda_without = cuda_without || (!can[r] && !strcmp(names[r], "cuda"));
  }
  const long mode = lk_env_long("LIGHTOS_COMM_HIERARCHY", -1);
  fprintf(f, "\nComposition (a group over these devices mixing backends):\n");
  if (!mixed) {
    fprintf(f, "  none: one backend (%s)\n", n ? names[0] : "-");
  } else if (!lk_hier_plan(n, bk, can, mode, span)) {
    fprintf(f, "  flat: every collective on the host path (%s)\n",
            mode == 0 ? "LIGHTOS_COMM_HIERARCHY=0"
            : cuda_without ? "no block of CUDA devices can load NCCL"
                        : "no aligned block of 2 or more devices of a backend with a device library");
  } else {
    fprintf(f, "  upper level on the host path over:");
    for (uint32_t r = 0; r < n; ++r) {
      if (span[r] > 1)
        fprintf(f, " [ranks %u-%u: %s block%s]", r, r + span[r] - 1, names[r],
                !strcmp(names[r], "cuda") ? " over NCCL" : "");
      else if (span[r] == 1)
        fprintf(f, " [rank %u]", r);
    }
    fprintf(f, "\n  why: each block is an aligned node of the TOPOLOGY tree; f32/f64/integer "
               "allreduce take it, the bits stay the flat group's\n");
  }
  free(names);
  free(bk);
  free(can);
  free(span);
}

lightos_status_t lk_topo_print(FILE* f, const lk_topo_t* t) {
  if (!f) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "f is NULL");
  if (!t) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "t is NULL");
  uint32_t n = t->n;
  fprintf(f, "Topology of %u device(s) on %s\n", n, t->host);
  fprintf(f, "  source: %s\n", t->source);
  fprintf(f, "  %u socket(s), %u NUMA node(s)\n", t->nsockets, t->nnuma);

  fprintf(f, "\nNUMA nodes:\n");
  for (uint32_t i = 0; i < t->nnuma; ++i) {
    const lk_topo_numa_t* nn = &t->numa[i];
    char sock[16];
    lk_int_text(nn->socket, sock, sizeof sock);
    fprintf(f, "  node %d  socket %s  CPUs %s (%u)", nn->os_index, sock, nn->cpus, nn->ncpus);
    if (nn->mem_bytes)
      fprintf(f, "  memory %.1f GiB", (double)nn->mem_bytes / (double)(1ull << 30));
    fprintf(f, "\n");
  }

  fprintf(f, "\nDevices (in rank order):\n");
  fprintf(f, "  %4s  %-10s %-14s %5s %7s  %-10s %-13s %s\n", "rank", "device", "type", "NUMA",
          "socket", "placed by", "PCI bus id", "name");
  bool any_path = false;
  for (uint32_t i = 0; i < n; ++i) {
    const lk_topo_dev_t* d = &t->devs[i];
    char numa[16], sock[16];
    lk_int_text(d->numa_node, numa, sizeof numa);
    lk_int_text(d->socket, sock, sizeof sock);
    fprintf(f, "  %4u  %-10s %-14s %5s %7s  %-10s %-13s %s\n", i, d->uri, lk_type_text(d->type),
            numa, sock, d->placed_by[0] ? d->placed_by : "-",
            d->pci_bus_id[0] ? d->pci_bus_id : "-", d->name);
    any_path |= d->pci_path[0] != '\0';
  }
  if (any_path) {
    fprintf(f, "  PCI paths (root complex / bridges / device):\n");
    for (uint32_t i = 0; i < n; ++i)
      if (t->devs[i].pci_path[0])
        fprintf(f, "  %4u  %s\n", i, t->devs[i].pci_path);
  }

  fprintf(f,
          "\nLinks (nearest first: self = same device, peer = direct device access, "
          "pci-switch, pci-root,\n       numa = same NUMA node through host memory, socket, "
          "cross-socket, host = placement unknown):\n");
  if (n <= LK_PRINT_MATRIX_MAX) {
    fprintf(f, "  %6s", "");
    for (uint32_t j = 0; j < n; ++j) fprintf(f, " %13u", j);
    fprintf(f, "\n");
    for (uint32_t i = 0; i < n; ++i) {
      fprintf(f, "  %6u", i);
      for (uint32_t j = 0; j < n; ++j)
        fprintf(f, " %13s", lk_topo_link_name(lk_topo_link(t, i, j)));
      fprintf(f, "\n");
    }
  } else {
    uint32_t counts[LK_LINK_NET + 1] = {0};
    for (uint32_t i = 0; i < n; ++i)
      for (uint32_t j = i + 1; j < n; ++j) counts[lk_topo_link(t, i, j)]++;
    char buf[256];
    size_t len = 0;
    buf[0] = '\0';
    lk_edges_text(counts, buf, sizeof buf, &len);
    fprintf(f, "  %u ranks (matrix not shown above %u): pairs %s\n", n, LK_PRINT_MATRIX_MAX, buf);
  }

  uint32_t* order = malloc((size_t)n * sizeof *order);
  char* why = malloc(1024);
  if (!order || !why) {
    free(order);
    free(why);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory printing a topology");
  }
  lightos_status_t s = lk_topo_ring_order(t, order, why, 1024);
  if (!s) {
    fprintf(f, "\nRing order (transfer order of ring algorithms at the NONE and RUN levels):\n  ");
    for (uint32_t k = 0; k < n; ++k) fprintf(f, "%u -> ", order[k]);
    fprintf(f, "%u\n  why: %s\n", order[0], why);
  }
  free(order);
  free(why);
  if (s) return s;

  size_t tree_len = 0;
  char tree[512];
  lk_topo_sum_tree(n, tree, sizeof tree, &tree_len);
  fprintf(f,
          "\nSummation order at the deterministic levels (by rank index, never by topology):\n"
          "  TOPOLOGY  %s\n"
          "            pairwise tree over rank index, split at the largest power of two below "
          "the rank count\n"
          "  STRICT    exact fixed-point accumulation rounded once: independent of any order\n",
          tree);
  lk_topo_print_composition(f, t);
  return ferror(f) ? LK_FAIL(LIGHTOS_INTERNAL, "writing the topology failed") : LIGHTOS_SUCCESS;
}
