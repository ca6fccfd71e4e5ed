/* Topology discovery (src/comm/topo.h): discovery over three CPU devices
 * (LIGHTOS_CPU_DEVICES=3), link classes, the ring order (a permutation,
 * deterministic, grouping by socket / NUMA node / PCI switch on synthetic
 * GPU layouts), the fixed summation tree, the sysfs fallback
 * (LIGHTOS_TOPO_HWLOC=0, and a fake sysfs tree with two NUMA nodes through
 * LIGHTOS_TOPO_SYSFS), bad arguments, and the printed report. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/topo.h"
#include "lightos/lightos.h"
#include "lk_test.h"

static lightos_device_t g_cpu[3];

static bool is_permutation(const uint32_t* order, uint32_t n) {
  bool seen[64] = {false};
  if (n > 64) return false;
  for (uint32_t i = 0; i < n; ++i) {
    if (order[i] >= n || seen[order[i]]) return false;
    seen[order[i]] = true;
  }
  return true;
}

static bool msg_has(const char* what) {
  const char* m = lightos_last_error()->message;
  return m && strstr(m, what) != NULL;
}

/* ---- discovery over the CPU devices ------------------------------------------------ */

static void test_discover_cpu(void) {
  lk_topo_t* t = NULL;
  LK_REQUIRE_OK(lk_topo_discover(g_cpu, 3, &t));
  LK_CHECK_INT(t->n, 3);
  LK_CHECK(t->source[0] != '\0');
  LK_CHECK(t->nnuma >= 1);
  if (strncmp(t->source, "hwloc ", 6) != 0)
    fprintf(stderr, "note: topology source is \"%s\" (hwloc not used)\n", t->source);
  uint32_t cpus = 0;
  for (uint32_t i = 0; i < t->nnuma; ++i) cpus += t->numa[i].ncpus;
  LK_CHECK_MSG(cpus >= 1, "the NUMA nodes list %u CPUs", cpus);
  for (uint32_t i = 0; i < 3; ++i) {
    char want[16];
    snprintf(want, sizeof want, "cpu:%u", i);
    LK_CHECK_STR(t->devs[i].uri, want);
    LK_CHECK_INT(t->devs[i].type, LIGHTOS_DEVICE_TYPE_CPU);
    LK_CHECK_INT(t->devs[i].backend, LIGHTOS_BACKEND_CPU);
    LK_CHECK_STR(t->devs[i].pci_bus_id, "");
    LK_CHECK_STR(t->devs[i].host, t->host);
    /* the CPU devices share the host's cores: placed alike */
    LK_CHECK_INT(t->devs[i].numa_node, t->devs[0].numa_node);
    LK_CHECK_INT(t->devs[i].socket, t->devs[0].socket);
    if (t->nnuma == 1) LK_CHECK_INT(t->devs[i].numa_node, t->numa[0].os_index);
  }
  lk_topo_link_t other = t->devs[0].numa_node >= 0 ? LK_LINK_NUMA : LK_LINK_HOST;
  for (uint32_t i = 0; i < 3; ++i)
    for (uint32_t j = 0; j < 3; ++j) {
      LK_CHECK_INT(lk_topo_link(t, i, j), lk_topo_link(t, j, i));
      LK_CHECK_INT(lk_topo_link(t, i, j), i == j ? LK_LINK_SELF : other);
    }
  lk_topo_free(t);

  /* the same device twice: a self link between two ranks */
  lightos_device_t twice[3] = {g_cpu[0], g_cpu[0], g_cpu[1]};
  LK_REQUIRE_OK(lk_topo_discover(twice, 3, &t));
  LK_CHECK_INT(lk_topo_link(t, 0, 1), LK_LINK_SELF);
  LK_CHECK_INT(lk_topo_link(t, 0, 2), other);
  lk_topo_free(t);

  /* describe: one device, as discover sees it */
  lk_topo_dev_t d;
  LK_REQUIRE_OK(lk_topo_describe(g_cpu[2], &d));
  LK_CHECK_STR(d.uri, "cpu:2");
  LK_CHECK(d.placed_by[0] != '\0');
}

static void test_ring_order_cpu(void) {
  lk_topo_t *a = NULL, *b = NULL;
  LK_REQUIRE_OK(lk_topo_discover(g_cpu, 3, &a));
  LK_REQUIRE_OK(lk_topo_discover(g_cpu, 3, &b));
  uint32_t o1[3], o2[3], o3[3];
  char why[512];
  LK_CHECK_STATUS(lk_topo_ring_order(a, o1, why, sizeof why), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lk_topo_ring_order(a, o2, NULL, 0), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lk_topo_ring_order(b, o3, NULL, 0), LIGHTOS_SUCCESS);
  LK_CHECK(is_permutation(o1, 3));
  LK_CHECK(!memcmp(o1, o2, sizeof o1));
  LK_CHECK(!memcmp(o1, o3, sizeof o1));
  /* three alike CPU devices: nothing to gain, rank order kept */
  for (uint32_t i = 0; i < 3; ++i) LK_CHECK_INT(o1[i], i);
  LK_CHECK_MSG(strstr(why, "rank order kept") != NULL, "why: %s", why);
  lk_topo_free(a);
  lk_topo_free(b);
}

/* ---- synthetic layouts ------------------------------------------------------------ */

/* GPU p of 8: socket p/4 (= NUMA node), PCI switch (p/2)%2 of its socket's
 * root complex, device p%2 under it. */
static void gpu_desc(lk_topo_dev_t* d, uint32_t p, const char* host) {
  memset(d, 0, sizeof *d);
  uint32_t s = p / 4, w = (p / 2) % 2, g = p % 2;
  unsigned root = s * 0x80, bus = root + w * 0x10 + g + 1;
  snprintf(d->uri, sizeof d->uri, "cuda:%u", p);
  snprintf(d->name, sizeof d->name, "GPU %u", p);
  d->backend = LIGHTOS_BACKEND_CUDA;
  d->type = LIGHTOS_DEVICE_TYPE_GPU_DISCRETE;
  snprintf(d->pci_bus_id, sizeof d->pci_bus_id, "0000:%02x:00.0", bus);
  snprintf(d->pci_path, sizeof d->pci_path, "pci0000:%02x/0000:%02x:01.%u/0000:%02x:00.0", root,
           root, w, bus);
  d->numa_node = (int32_t)s;
  d->socket = (int32_t)s;
  snprintf(d->host, sizeof d->host, "%s", host);
  snprintf(d->placed_by, sizeof d->placed_by, "test");
}

static void test_ring_synthetic(void) {
  /* ranks interleaved over the sockets: rank r is GPU phys[r] */
  static const uint32_t phys[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  lk_topo_dev_t d[8];
  for (uint32_t r = 0; r < 8; ++r) gpu_desc(&d[r], phys[r], "node-a");
  lk_topo_t* t = NULL;
  LK_REQUIRE_OK(lk_topo_build(d, 8, &t));
  /* classes: GPU0-GPU1 one switch, GPU0-GPU2 one root, GPU0-GPU4 sockets */
  LK_CHECK_INT(lk_topo_link(t, 0, 2), LK_LINK_PCI_SWITCH);
  LK_CHECK_INT(lk_topo_link(t, 0, 4), LK_LINK_PCI_ROOT);
  LK_CHECK_INT(lk_topo_link(t, 0, 1), LK_LINK_CROSS_SOCKET);
  LK_CHECK_INT(lk_topo_link(t, 3, 3), LK_LINK_SELF);

  uint32_t order[8], again[8];
  char why[512];
  LK_REQUIRE_OK(lk_topo_ring_order(t, order, why, sizeof why));
  LK_CHECK(is_permutation(order, 8));
  static const uint32_t want[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (uint32_t k = 0; k < 8; ++k) LK_CHECK_INT(order[k], want[k]);
  LK_CHECK_MSG(strstr(why, "sorted") && strstr(why, "2 cross-socket"), "why: %s", why);
  uint32_t cross = 0, sw = 0;
  for (uint32_t k = 0; k < 8; ++k) {
    lk_topo_link_t l = lk_topo_link(t, order[k], order[(k + 1) % 8]);
    cross += l == LK_LINK_CROSS_SOCKET;
    sw += l == LK_LINK_PCI_SWITCH;
  }
  LK_CHECK_INT(cross, 2);
  LK_CHECK_INT(sw, 4);
  /* deterministic: the same descriptions give the same ring */
  LK_REQUIRE_OK(lk_topo_ring_order(t, again, NULL, 0));
  LK_CHECK(!memcmp(order, again, sizeof order));
  lk_topo_t* t2 = NULL;
  LK_REQUIRE_OK(lk_topo_build(d, 8, &t2));
  LK_REQUIRE_OK(lk_topo_ring_order(t2, again, NULL, 0));
  LK_CHECK(!memcmp(order, again, sizeof order));
  lk_topo_free(t2);

  /* the peer hook */
  LK_REQUIRE_OK(lk_topo_set_peer(t, 0, 1, true));
  LK_CHECK_INT(lk_topo_link(t, 0, 1), LK_LINK_PEER);
  LK_CHECK_INT(lk_topo_link(t, 1, 0), LK_LINK_PEER);
  LK_REQUIRE_OK(lk_topo_set_peer(t, 0, 1, false));
  LK_CHECK_INT(lk_topo_link(t, 0, 1), LK_LINK_CROSS_SOCKET);
  LK_REQUIRE_OK(lk_topo_set_peer(t, 2, 2, true));
  LK_CHECK_INT(lk_topo_link(t, 2, 2), LK_LINK_SELF);
  lk_topo_free(t);

  /* ranks already grouped: the rank order is kept */
  for (uint32_t r = 0; r < 8; ++r) gpu_desc(&d[r], r, "node-a");
  LK_REQUIRE_OK(lk_topo_build(d, 8, &t));
  LK_REQUIRE_OK(lk_topo_ring_order(t, order, why, sizeof why));
  for (uint32_t k = 0; k < 8; ++k) LK_CHECK_INT(order[k], k);
  LK_CHECK_MSG(strstr(why, "rank order kept") != NULL, "why: %s", why);
  lk_topo_free(t);

  /* sorting that gives no closer ring keeps the rank order: nodes 1,0,0,1 */
  static const uint32_t p4[4] = {4, 0, 1, 5};
  for (uint32_t r = 0; r < 4; ++r) gpu_desc(&d[r], p4[r], "node-a");
  LK_REQUIRE_OK(lk_topo_build(d, 4, &t));
  LK_REQUIRE_OK(lk_topo_ring_order(t, order, why, sizeof why));
  for (uint32_t k = 0; k < 4; ++k) LK_CHECK_INT(order[k], k);
  LK_CHECK_MSG(strstr(why, "no closer ring") != NULL, "why: %s", why);
  lk_topo_free(t);

  /* two hosts, ranks interleaved: grouped by host */
  gpu_desc(&d[0], 0, "node-a");
  gpu_desc(&d[1], 0, "node-b");
  gpu_desc(&d[2], 1, "node-a");
  gpu_desc(&d[3], 1, "node-b");
  LK_REQUIRE_OK(lk_topo_build(d, 4, &t));
  LK_CHECK_INT(lk_topo_link(t, 0, 1), LK_LINK_NET);
  LK_CHECK_INT(lk_topo_link(t, 0, 2), LK_LINK_PCI_SWITCH);
  LK_REQUIRE_OK(lk_topo_ring_order(t, order, NULL, 0));
  static const uint32_t want_h[4] = {0, 2, 1, 3};
  for (uint32_t k = 0; k < 4; ++k) LK_CHECK_INT(order[k], want_h[k]);
  lk_topo_free(t);

  /* as seen on a two-GPU machine: two CPU devices, and each of two GPUs
   * through OpenCL and CUDA, the CUDA pair with peer access.  Sorting puts
   * the views of one GPU together; one reversal then uses the peer link. */
  lk_topo_dev_t m[6];
  for (uint32_t r = 0; r < 6; ++r) {
    memset(&m[r], 0, sizeof m[r]);
    snprintf(m[r].host, sizeof m[r].host, "node-a");
    m[r].numa_node = m[r].socket = 0;
    m[r].type = r < 2 ? LIGHTOS_DEVICE_TYPE_CPU : LIGHTOS_DEVICE_TYPE_GPU_DISCRETE;
    if (r >= 2) {
      unsigned dev = 6 + (r % 2);
      snprintf(m[r].pci_bus_id, sizeof m[r].pci_bus_id, "0000:00:%02x.0", dev);
      snprintf(m[r].pci_path, sizeof m[r].pci_path, "pci0000:00/0000:00:%02x.0", dev);
    }
  }
  snprintf(m[0].uri, sizeof m[0].uri, "cpu:0");
  snprintf(m[1].uri, sizeof m[1].uri, "opencl:0");
  snprintf(m[2].uri, sizeof m[2].uri, "opencl:1");
  snprintf(m[3].uri, sizeof m[3].uri, "opencl:2");
  snprintf(m[4].uri, sizeof m[4].uri, "cuda:0");
  snprintf(m[5].uri, sizeof m[5].uri, "cuda:1");
  LK_REQUIRE_OK(lk_topo_build(m, 6, &t));
  LK_REQUIRE_OK(lk_topo_set_peer(t, 4, 5, true));
  LK_CHECK_INT(lk_topo_link(t, 2, 4), LK_LINK_SELF);
  LK_CHECK_INT(lk_topo_link(t, 2, 3), LK_LINK_PCI_ROOT);
  LK_CHECK_INT(lk_topo_link(t, 0, 1), LK_LINK_NUMA);
  LK_REQUIRE_OK(lk_topo_ring_order(t, order, why, sizeof why));
  static const uint32_t want_m[6] = {0, 1, 2, 4, 5, 3};
  for (uint32_t k = 0; k < 6; ++k) LK_CHECK_INT(order[k], want_m[k]);
  LK_CHECK_MSG(strstr(why, "1 segment(s) reversed") && strstr(why, "2 self, 1 peer, 3 numa"),
               "why: %s", why);
  lk_topo_free(t);

  /* one and two ranks */
  LK_REQUIRE_OK(lk_topo_build(d, 1, &t));
  LK_REQUIRE_OK(lk_topo_ring_order(t, order, why, sizeof why));
  LK_CHECK_INT(order[0], 0);
  LK_CHECK_MSG(strstr(why, "one rank") != NULL, "why: %s", why);
  lk_topo_free(t);
  LK_REQUIRE_OK(lk_topo_build(d, 2, &t));
  LK_REQUIRE_OK(lk_topo_ring_order(t, order, why, sizeof why));
  LK_CHECK(order[0] == 0 && order[1] == 1);
  LK_CHECK_MSG(strstr(why, "two ranks") && strstr(why, "net"), "why: %s", why);
  lk_topo_free(t);

  /* unknown placement sorts last; a short why buffer is truncated */
  for (uint32_t r = 0; r < 4; ++r) gpu_desc(&d[r], r, "node-a");
  d[0].numa_node = d[0].socket = -1;
  d[0].pci_path[0] = '\0';
  LK_REQUIRE_OK(lk_topo_build(d, 4, &t));
  LK_CHECK_INT(lk_topo_link(t, 0, 1), LK_LINK_HOST);
  char small[16];
  LK_REQUIRE_OK(lk_topo_ring_order(t, order, small, sizeof small));
  LK_CHECK(is_permutation(order, 4));
  LK_CHECK_INT(strlen(small), sizeof small - 1);
  LK_CHECK_STR(small + sizeof small - 4, "...");
  lk_topo_free(t);
}

/* ---- the summation tree ---------------------------------------------------------- */

static void test_sum_tree(void) {
  static const struct {
    uint32_t n;
    const char* tree;
  } cases[] = {{1, "r0"},
               {2, "(r0 + r1)"},
               {3, "((r0 + r1) + r2)"},
               {4, "((r0 + r1) + (r2 + r3))"},
               {5, "(((r0 + r1) + (r2 + r3)) + r4)"},
               {6, "(((r0 + r1) + (r2 + r3)) + (r4 + r5))"},
               {7, "(((r0 + r1) + (r2 + r3)) + ((r4 + r5) + r6))"}};
  char buf[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    size_t len = 0;
    LK_REQUIRE_OK(lk_topo_sum_tree(cases[i].n, buf, sizeof buf, &len));
    LK_CHECK_STR(buf, cases[i].tree);
    LK_CHECK_INT(len, strlen(cases[i].tree));
  }
  size_t len = 0;
  LK_REQUIRE_OK(lk_topo_sum_tree(8, buf, 10, &len));
  LK_CHECK_STR(buf, "(((r0 ...");
  LK_CHECK_INT(len, strlen("(((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)))"));
  LK_REQUIRE_OK(lk_topo_sum_tree(1000, NULL, 0, &len)); /* length only */
  LK_CHECK(len > 1000);
}

/* ---- the sysfs fallback ------------------------------------------------------------ */

static bool put_file(const char* dir, const char* rel, const char* text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  /* create the parents */
  for (char* p = path + strlen(dir) + 1; (p = strchr(p, '/')) != NULL; ++p) {
    *p = '\0';
    mkdir(path, 0755);
    *p = '/';
  }
  FILE* f = fopen(path, "w");
  if (!f) return false;
  fputs(text, f);
  return fclose(f) == 0;
}

static int rm_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void test_sysfs_fallback(void) {
  /* this machine, hwloc off: the same placement as with the default source */
  lk_topo_t *def = NULL, *fs = NULL;
  LK_REQUIRE_OK(lk_topo_discover(g_cpu, 3, &def));
  setenv("LIGHTOS_TOPO_HWLOC", "0", 1);
  lightos_status_t s = lk_topo_discover(g_cpu, 3, &fs);
  unsetenv("LIGHTOS_TOPO_HWLOC");
  LK_CHECK_STATUS(s, LIGHTOS_SUCCESS);
  if (fs) {
    LK_CHECK_MSG(!strncmp(fs->source, "sysfs (/sys)", 12) || !strncmp(fs->source, "none", 4),
                 "source with LIGHTOS_TOPO_HWLOC=0: %s", fs->source);
    LK_CHECK_MSG(strstr(fs->source, "LIGHTOS_TOPO_HWLOC=0") != NULL, "source: %s", fs->source);
    if (!strncmp(def->source, "hwloc", 5) && !strncmp(fs->source, "sysfs", 5)) {
      LK_CHECK_INT(fs->nnuma, def->nnuma);
      for (uint32_t i = 0; i < fs->nnuma && i < def->nnuma; ++i) {
        LK_CHECK_INT(fs->numa[i].os_index, def->numa[i].os_index);
        LK_CHECK_STR(fs->numa[i].cpus, def->numa[i].cpus);
        LK_CHECK_INT(fs->numa[i].socket, def->numa[i].socket);
      }
      for (uint32_t i = 0; i < 3; ++i) LK_CHECK_INT(fs->devs[i].numa_node, def->devs[i].numa_node);
    }
  }
  lk_topo_free(def);
  lk_topo_free(fs);

  /* a fake sysfs tree: two nodes on two sockets, three PCI devices */
  char dir[] = "/tmp/lk_topo_sysfs_XXXXXX";
  LK_REQUIRE(mkdtemp(dir) != NULL);
  bool ok = put_file(dir, "devices/system/node/online", "0-1\n") &&
            put_file(dir, "devices/system/node/node0/cpulist", "0-2047\n") &&
            put_file(dir, "devices/system/node/node0/meminfo",
                     "Node 0 MemTotal:       16777216 kB\nNode 0 MemFree: 1 kB\n") &&
            put_file(dir, "devices/system/node/node1/cpulist", "2048-4095\n") &&
            put_file(dir, "devices/system/node/node1/meminfo", "Node 1 MemTotal: 1048576 kB\n") &&
            put_file(dir, "devices/system/cpu/cpu0/topology/physical_package_id", "0\n") &&
            put_file(dir, "devices/system/cpu/cpu2048/topology/physical_package_id", "1\n") &&
            put_file(dir, "devices/pci0000:40/0000:40:01.0/0000:41:00.0/numa_node", "1\n") &&
            put_file(dir, "devices/pci0000:40/0000:40:01.0/0000:42:00.0/numa_node", "-1\n") &&
            put_file(dir, "bus/pci/devices/.keep", "");
  char link[1024];
  snprintf(link, sizeof link, "%s/bus/pci/devices/0000:41:00.0", dir);
  ok = ok && symlink("../../../devices/pci0000:40/0000:40:01.0/0000:41:00.0", link) == 0;
  snprintf(link, sizeof link, "%s/bus/pci/devices/0000:42:00.0", dir);
  ok = ok && symlink("../../../devices/pci0000:40/0000:40:01.0/0000:42:00.0", link) == 0;
  LK_CHECK_MSG(ok, "could not build the fake sysfs tree in %s", dir);
  if (ok) {
    setenv("LIGHTOS_TOPO_SYSFS", dir, 1);
    lk_topo_t* t = NULL;
    LK_CHECK_STATUS(lk_topo_discover(g_cpu, 3, &t), LIGHTOS_SUCCESS);
    lk_topo_dev_t a, b, c;
    LK_CHECK_STATUS(lk_topo_place_pci("0000:41:00.0", &a), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lk_topo_place_pci("0000:42:00.0", &b), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lk_topo_place_pci("0000:99:00.0", &c), LIGHTOS_SUCCESS);
    unsetenv("LIGHTOS_TOPO_SYSFS");
    if (t) {
      LK_CHECK_MSG(!strncmp(t->source, "sysfs (", 7) && strstr(t->source, dir),
                   "source: %s", t->source);
      LK_CHECK_INT(t->nnuma, 2);
      LK_CHECK_INT(t->nsockets, 2);
      if (t->nnuma == 2) {
        LK_CHECK_INT(t->numa[0].os_index, 0);
        LK_CHECK_STR(t->numa[0].cpus, "0-2047");
        LK_CHECK_INT(t->numa[0].ncpus, 2048);
        LK_CHECK_INT(t->numa[0].socket, 0);
        LK_CHECK(t->numa[0].mem_bytes == 16ull << 30);
        LK_CHECK_STR(t->numa[1].cpus, "2048-4095");
        LK_CHECK_INT(t->numa[1].socket, 1);
        LK_CHECK(t->numa[1].mem_bytes == 1ull << 30);
      }
      /* this process's CPUs are below 2048: the CPU devices are on node 0 */
      for (uint32_t i = 0; i < 3; ++i) {
        LK_CHECK_INT(t->devs[i].numa_node, 0);
        LK_CHECK_INT(t->devs[i].socket, 0);
        LK_CHECK_STR(t->devs[i].placed_by, "affinity");
      }
    }
    LK_CHECK_INT(a.numa_node, 1);
    LK_CHECK_INT(a.socket, 1);
    LK_CHECK_STR(a.placed_by, "sysfs");
    LK_CHECK_STR(a.pci_path, "pci0000:40/0000:40:01.0/0000:41:00.0");
    LK_CHECK_INT(b.numa_node, -1); /* the kernel does not know, and there are two nodes */
    LK_CHECK_STR(b.placed_by, "unknown");
    LK_CHECK_STR(b.pci_path, "pci0000:40/0000:40:01.0/0000:42:00.0");
    LK_CHECK_INT(c.numa_node, -1);
    LK_CHECK_STR(c.pci_path, "");
    /* a and b under one root port: one switch */
    snprintf(a.uri, sizeof a.uri, "cuda:0");
    snprintf(b.uri, sizeof b.uri, "cuda:1");
    snprintf(a.pci_bus_id, sizeof a.pci_bus_id, "0000:41:00.0");
    snprintf(b.pci_bus_id, sizeof b.pci_bus_id, "0000:42:00.0");
    snprintf(a.host, sizeof a.host, "h");
    snprintf(b.host, sizeof b.host, "h");
    lk_topo_dev_t ab[2] = {a, b};
    lk_topo_t* t2 = NULL;
    LK_CHECK_STATUS(lk_topo_build(ab, 2, &t2), LIGHTOS_SUCCESS);
    if (t2) LK_CHECK_INT(lk_topo_link(t2, 0, 1), LK_LINK_PCI_SWITCH);
    lk_topo_free(t2);
    lk_topo_free(t);
  }
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

  /* no sysfs at all: one node assumed, and said so */
  setenv("LIGHTOS_TOPO_SYSFS", "/nonexistent-lightos-sysfs", 1);
  lk_topo_t* t = NULL;
  s = lk_topo_discover(g_cpu, 2, &t);
  unsetenv("LIGHTOS_TOPO_SYSFS");
  LK_CHECK_STATUS(s, LIGHTOS_SUCCESS);
  if (t) {
    LK_CHECK_MSG(!strncmp(t->source, "none: one NUMA node assumed", 27), "source: %s", t->source);
    LK_CHECK_INT(t->nnuma, 1);
    LK_CHECK_INT(t->devs[0].numa_node, 0);
    LK_CHECK_INT(lk_topo_link(t, 0, 1), LK_LINK_NUMA);
  }
  lk_topo_free(t);
}

/* ---- bad arguments ----------------------------------------------------------------- */

static void test_bad_arguments(void) {
  lk_topo_t* t = (lk_topo_t*)&t; /* must be reset to NULL on failure */
  LK_CHECK_STATUS(lk_topo_discover(NULL, 3, &t), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("devs is NULL"));
  LK_CHECK(t == NULL);
  LK_CHECK_STATUS(lk_topo_discover(g_cpu, 0, &t), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("n is 0"));
  LK_CHECK_STATUS(lk_topo_discover(g_cpu, 3, NULL), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("out is NULL"));
  LK_CHECK_STATUS(lk_topo_discover(g_cpu, LK_TOPO_MAX_DEVICES + 1, &t),
                  LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("at most"));
  lightos_device_t bad[2] = {g_cpu[0], (lightos_device_t)(uintptr_t)0x5a5a5a5a};
  LK_CHECK_STATUS(lk_topo_discover(bad, 2, &t), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_MSG(msg_has("devs[1]"), "message: %s", lightos_last_error()->message);
  LK_CHECK(t == NULL);
  lk_topo_dev_t d;
  LK_CHECK_STATUS(lk_topo_describe(NULL, &d), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lk_topo_describe(g_cpu[0], NULL), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lk_topo_build(NULL, 2, &t), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("descs is NULL"));
  LK_CHECK_STATUS(lk_topo_build(&d, 0, &t), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lk_topo_place_pci("../../etc/passwd", &d), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("not a PCI bus id"));
  LK_CHECK_STATUS(lk_topo_place_pci("0000:01:00.0/../x", &d), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lk_topo_place_pci(NULL, &d), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lk_topo_place_pci("0000:01:00.0", NULL), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lk_topo_sum_tree(0, NULL, 0, NULL), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("n is 0"));
  LK_CHECK_STATUS(lk_topo_sum_tree(3, NULL, 8, NULL), LIGHTOS_INVALID_ARGUMENT);

  LK_REQUIRE_OK(lk_topo_discover(g_cpu, 2, &t));
  uint32_t order[2];
  LK_CHECK_STATUS(lk_topo_ring_order(NULL, order, NULL, 0), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lk_topo_ring_order(t, NULL, NULL, 0), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("order is NULL"));
  LK_CHECK_STATUS(lk_topo_print(NULL, t), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("f is NULL"));
  LK_CHECK_STATUS(lk_topo_print(stderr, NULL), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lk_topo_set_peer(t, 0, 2, true), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(msg_has("2 rank(s)"));
  LK_CHECK_STATUS(lk_topo_set_peer(NULL, 0, 1, true), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_INT(lk_topo_link(t, 0, 5), LK_LINK_HOST);
  LK_CHECK_INT(lk_topo_link(NULL, 0, 0), LK_LINK_HOST);
  LK_CHECK_STR(lk_topo_link_name((lk_topo_link_t)99), "?");
  LK_CHECK_STR(lk_topo_link_name(LK_LINK_CROSS_SOCKET), "cross-socket");
  lk_topo_free(t);
  lk_topo_free(NULL);
}

/* ---- the report -------------------------------------------------------------------- */

static char* print_to_string(const lk_topo_t* t) {
  char* text = NULL;
  size_t len = 0;
  FILE* f = open_memstream(&text, &len);
  if (!f) return NULL;
  lightos_status_t s = lk_topo_print(f, t);
  fclose(f);
  if (s) {
    free(text);
    return NULL;
  }
  return text;
}

static void test_print(void) {
  lk_topo_t* t = NULL;
  LK_REQUIRE_OK(lk_topo_discover(g_cpu, 3, &t));
  char* text = print_to_string(t);
  lk_topo_free(t);
  LK_REQUIRE(text != NULL);
  static const char* const want[] = {
      "Topology of 3 device(s)", "source: ", "NUMA nodes:\n  node ", "Devices (in rank order):",
      "cpu:0", "cpu:2", "Links", "self", "Ring order", "0 -> 1 -> 2 -> 0", "why: rank order kept",
      "Summation order", "TOPOLOGY  ((r0 + r1) + r2)", "STRICT"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; ++i)
    LK_CHECK_MSG(strstr(text, want[i]) != NULL, "\"%s\" missing from:\n%s", want[i], text);
  free(text);

  /* the synthetic 8-GPU layout: PCI paths, link classes, the sorted ring */
  static const uint32_t phys[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  lk_topo_dev_t d[8];
  for (uint32_t r = 0; r < 8; ++r) gpu_desc(&d[r], phys[r], "node-a");
  LK_REQUIRE_OK(lk_topo_build(d, 8, &t));
  text = print_to_string(t);
  lk_topo_free(t);
  LK_REQUIRE(text != NULL);
  static const char* const want8[] = {"PCI paths", "pci0000:80/0000:80:01.1/0000:91:00.0",
                                      "cross-socket", "pci-switch", "pci-root",
                                      "0 -> 2 -> 4 -> 6 -> 1 -> 3 -> 5 -> 7 -> 0",
                                      "(((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)))"};
  for (size_t i = 0; i < sizeof want8 / sizeof want8[0]; ++i)
    LK_CHECK_MSG(strstr(text, want8[i]) != NULL, "\"%s\" missing from:\n%s", want8[i], text);
  LK_CHECK_MSG(strstr(text, "none: one backend (cuda)") != NULL, "composition of 8 GPUs:\n%s",
               text);
  free(text);

  /* Composition: four GPUs and a CPU.  Forced (LIGHTOS_COMM_HIERARCHY=1):
   * the GPUs' block and the CPU alone; off: flat. */
  lk_topo_dev_t d5[5];
  for (uint32_t r = 0; r < 4; ++r) gpu_desc(&d5[r], r, "node-a");
  d5[4] = d5[0];
  snprintf(d5[4].uri, sizeof d5[4].uri, "cpu:0");
  d5[4].backend = LIGHTOS_BACKEND_CPU;
  d5[4].type = LIGHTOS_DEVICE_TYPE_CPU;
  d5[4].pci_bus_id[0] = d5[4].pci_path[0] = '\0';
  LK_REQUIRE_OK(lk_topo_build(d5, 5, &t));
  setenv("LIGHTOS_COMM_HIERARCHY", "1", 1);
  text = print_to_string(t);
  LK_REQUIRE(text != NULL);
  LK_CHECK_MSG(strstr(text, "[ranks 0-3: cuda block over NCCL] [rank 4]") != NULL,
               "composition forced:\n%s", text);
  free(text);
  setenv("LIGHTOS_COMM_HIERARCHY", "0", 1);
  text = print_to_string(t);
  unsetenv("LIGHTOS_COMM_HIERARCHY");
  LK_REQUIRE(text != NULL);
  LK_CHECK_MSG(strstr(text, "flat: every collective on the host path (LIGHTOS_COMM_HIERARCHY=0)"),
               "composition off:\n%s", text);
  free(text);
  lk_topo_free(t);
}

int main(void) {
  lk_t.program = "test_topo";
  /* before the first LightOS call: the CPU shown as three devices, and the
   * default topology sources */
  setenv("LIGHTOS_CPU_DEVICES", "3", 1);
  unsetenv("LIGHTOS_TOPO_HWLOC");
  unsetenv("LIGHTOS_TOPO_SYSFS");
  for (int i = 0; i < 3; ++i) {
    char uri[16];
    snprintf(uri, sizeof uri, "cpu:%d", i);
    if (lightos_device_from_uri(uri, &g_cpu[i]) != LIGHTOS_SUCCESS) {
      fprintf(stderr, "FAIL: %s: %s\n", uri, lightos_last_error()->message);
      return 1;
    }
  }
  LK_RUN(test_discover_cpu);
  LK_RUN(test_ring_order_cpu);
  LK_RUN(test_ring_synthetic);
  LK_RUN(test_sum_tree);
  LK_RUN(test_sysfs_fallback);
  LK_RUN(test_bad_arguments);
  LK_RUN(test_print);
  return lk_test_finish();
}
