/* Topology discovery for the collectives (and `lightos topo`).
 *
 * For a list of devices (the ranks of an in-process group, or the devices
 * of a process's local ranks) this finds where each device sits: its NUMA
 * node and socket, its place in the PCI tree (root complex, switches), and
 * whether two CUDA devices have peer access; it classifies the link
 * between every pair of ranks and chooses a ring order that keeps ring
 * neighbours close.  See docs/topology.md.
 *
 * Sources, in order:
 *   hwloc 2.x  libhwloc.so.15 (else libhwloc.so), loaded with dlopen; the
 *              topology is read through hwloc's XML export, so no hwloc
 *              structure layout is relied on.  LIGHTOS_TOPO_HWLOC=0 skips it.
 *   sysfs      /sys/devices/system/node (NUMA nodes, their CPUs and memory),
 *              /sys/devices/system/cpu (sockets), /sys/bus/pci/devices
 *              (a PCI device's NUMA node and its path from the root complex).
 *              Also fills in what hwloc did not report.  LIGHTOS_TOPO_SYSFS
 *              names another root than /sys (tests) and implies sysfs.
 *   neither    one NUMA node with every CPU is assumed (the reason is in
 *              lk_topo_t.source).
 * The host's topology is read once per process and source, then cached.
 *
 * Topology decides only the transfer order (the ring, for the NONE and RUN
 * levels) and the transport path.  The summation order at TOPOLOGY and
 * STRICT never depends on it: TOPOLOGY sums over rank index with a fixed
 * tree (lk_topo_sum_tree), STRICT is exact.
 *
 * Thread-safety: every function may be called from any thread; an lk_topo_t
 * is not modified after it is built, except by lk_topo_set_peer. */
#ifndef LK_COMM_TOPO_H
#define LK_COMM_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lightos/device.h"

/* Most devices a topology may describe. */
#define LK_TOPO_MAX_DEVICES 4096u

/* How two ranks' devices are connected, nearest first.  The numeric value
 * is the distance used to compare ring orders. */
typedef enum lk_topo_link {
  LK_LINK_SELF = 0,         /* the same device (or one GPU seen through two backends) */
  LK_LINK_PEER = 1,         /* direct device-to-device access (CUDA peer access) */
  LK_LINK_PCI_SWITCH = 2,   /* under one PCI switch (a common bridge below the root) */
  LK_LINK_PCI_ROOT = 3,     /* under one PCI root complex */
  LK_LINK_NUMA = 4,         /* the same NUMA node, through host memory */
  LK_LINK_SOCKET = 5,       /* other NUMA nodes of one socket */
  LK_LINK_CROSS_SOCKET = 6, /* across sockets */
  LK_LINK_HOST = 7,         /* the same host, placement unknown */
  LK_LINK_NET = 8           /* different hosts (multi-process groups) */
} lk_topo_link_t;

/* "self", "peer", "pci-switch", "pci-root", "numa", "socket",
 * "cross-socket", "host", "net"; "?" otherwise. */
const char* lk_topo_link_name(lk_topo_link_t link);

/* Where one device sits.  Plain data (no pointers), so that ranks of
 * different processes can exchange descriptions (lk_topo_build). */
typedef struct lk_topo_dev {
  char uri[64];          /* "cuda:1", "cpu:0" */
  char name[96];
  int32_t backend;       /* lightos_backend_t */
  int32_t type;          /* lightos_device_type_t */
  char pci_bus_id[32];   /* "0000:3b:00.0", "" when none or unknown */
  /* Path in the PCI tree from the root complex down to the device:
   * "pci0000:00/0000:00:01.0/0000:01:00.0" (sysfs naming); "" unknown. */
  char pci_path[256];
  int32_t numa_node;     /* OS index; -1 unknown or not one node */
  int32_t socket;        /* package OS index; -1 unknown */
  char host[64];         /* host name */
  char placed_by[32];    /* "hwloc", "sysfs", "affinity", "one node", "unknown" */
} lk_topo_dev_t;

typedef struct lk_topo_numa {
  int32_t os_index;
  int32_t socket;        /* -1 unknown (or a node without CPUs) */
  uint64_t mem_bytes;    /* 0 unknown */
  uint32_t ncpus;
  char cpus[256];        /* "0-15,32-47"; truncated with "..." */
} lk_topo_numa_t;

typedef struct lk_topo {
  uint32_t n;            /* ranks */
  lk_topo_dev_t* devs;   /* [n], rank order */
  uint8_t* links;        /* [n*n] lk_topo_link_t, symmetric */
  uint32_t nnuma;
  lk_topo_numa_t* numa;  /* [nnuma], this host's NUMA nodes */
  uint32_t nsockets;
  char host[64];         /* this host */
  char source[192];      /* "hwloc 2.9.0 (libhwloc.so.15)", "sysfs (/sys): ..." */
} lk_topo_t;

/* Describes the devices of devs[0..n) (rank i = devs[i]; a device may
 * appear more than once) and the links between them, with peer access
 * queried for pairs of CUDA devices.  Free with lk_topo_free. */
lightos_status_t lk_topo_discover(const lightos_device_t* devs, uint32_t n, lk_topo_t** out);

/* Describes one device (for exchange between processes). */
lightos_status_t lk_topo_describe(lightos_device_t device, lk_topo_dev_t* out);

/* Builds a topology from descriptions (e.g. gathered from the ranks of
 * several processes): links from the descriptions alone (no peer access:
 * see lk_topo_set_peer); NUMA nodes of this host. */
lightos_status_t lk_topo_build(const lk_topo_dev_t* descs, uint32_t n, lk_topo_t** out);

/* Fills numa_node, socket, pci_path and placed_by of *d for the PCI
 * device bus_id ("0000:3b:00.0") from the current source.  Unknown
 * placement is not an error (numa_node -1); a malformed bus id is. */
lightos_status_t lk_topo_place_pci(const char* bus_id, lk_topo_dev_t* d);

/* Records what a caller learned (e.g. lk_cuda_peer_access over two
 * contexts): with can, ranks a and b become LK_LINK_PEER (unless SELF);
 * without, a PEER link falls back to its PCI/NUMA class. */
lightos_status_t lk_topo_set_peer(lk_topo_t* t, uint32_t a, uint32_t b, bool can);

/* The link between ranks a and b (LK_LINK_HOST when out of range). */
lk_topo_link_t lk_topo_link(const lk_topo_t* t, uint32_t a, uint32_t b);

/* The ring: order[k] is the rank at ring position k (order holds t->n
 * entries), a permutation of 0..n-1.  Ranks sorted by host, socket, NUMA
 * node and PCI path (rank index breaks ties; unknown placement last); the
 * rank order itself is kept when the sorted ring is not strictly closer
 * (sum of link distances over the ring's edges).  Deterministic: the same
 * descriptions give the same ring.  why (may be NULL) gets the reason. */
lightos_status_t lk_topo_ring_order(const lk_topo_t* t, uint32_t* order, char* why,
                                    size_t why_cap);

/* The TOPOLOGY level's fixed summation tree over n ranks, written as
 * "((r0 + r1) + r2)": split at the largest power of two below n, each side
 * the same way.  Truncated with "..." to cap; *out_len (optional) gets the
 * full length. */
lightos_status_t lk_topo_sum_tree(uint32_t n, char* buf, size_t cap, size_t* out_len);

/* Prints devices, NUMA nodes (with CPUs), the links matrix, the ring order
 * and why, and the summation order of the deterministic levels. */
lightos_status_t lk_topo_print(FILE* f, const lk_topo_t* t);

void lk_topo_free(lk_topo_t* t);

#endif
