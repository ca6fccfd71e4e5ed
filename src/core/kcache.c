/* On-disk cache of compiled kernel binaries (see kcache.h).
 *
 * Entry file "<hex key>.bin":
 *   offset  size  field
 *        0     8  magic "LKCACHE1"
 *        8     4  format version (uint32, little-endian)
 *       12    32  key
 *       44     8  payload length (uint64, little-endian)
 *       52    32  SHA-256 of the payload
 *       84     n  payload
 * Entries are written to "<hex>.tmp.XXXXXX" in the cache directory and
 * renamed into place, so a reader sees either the old or the new file. */
#define _POSIX_C_SOURCE 200809L
#include "core/kcache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sha256.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

#define LK_CACHE_MAGIC "LKCACHE1"
#define LK_CACHE_VERSION 1u
#define LK_CACHE_HEADER_SIZE (8u + 4u + 32u + 8u + 32u)
/* Refuse payloads above this on both store and load ("size sane"). */
#define LK_CACHE_MAX_PAYLOAD ((uint64_t)1 << 30)
#define LK_CACHE_TMP_SUFFIX ".tmp.XXXXXX"
#define LK_CACHE_BIN_SUFFIX ".bin"

static pthread_mutex_t lk_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static int lk_cache_resolved = 0;
static char* lk_cache_path = NULL; /* NULL: disabled */

/* ---- little helpers ---------------------------------------------------- */

static void put_le32(uint8_t* p, uint32_t v) {
  for (unsigned i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8u * i));
}
static void put_le64(uint8_t* p, uint64_t v) {
  for (unsigned i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8u * i));
}
static uint32_t get_le32(const uint8_t* p) {
  uint32_t v = 0;
  for (unsigned i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8u * i);
  return v;
}
static uint64_t get_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (unsigned i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8u * i);
  return v;
}

/* Constant-time-ish compare; avoids early exit (not security critical). */
static int bytes_equal(const uint8_t* a, const uint8_t* b, size_t n) {
  uint8_t d = 0;
  for (size_t i = 0; i < n; i++) d |= (uint8_t)(a[i] ^ b[i]);
  return d == 0;
}

static int write_all(int fd, const void* data, size_t len) {
  const uint8_t* p = (const uint8_t*)data;
  while (len > 0) {
    size_t chunk = len > (size_t)1 << 30 ? (size_t)1 << 30 : len;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (w == 0) {
      errno = EIO;
      return -1;
    }
    p += (size_t)w;
    len -= (size_t)w;
  }
  return 0;
}

/* Reads up to len bytes; returns the number read (short only at EOF), or
 * -1 on error. */
static ssize_t read_full(int fd, void* data, size_t len) {
  uint8_t* p = (uint8_t*)data;
  size_t got = 0;
  while (got < len) {
    size_t chunk = len - got > (size_t)1 << 30 ? (size_t)1 << 30 : len - got;
    ssize_t r = read(fd, p + got, chunk);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

static char* str_dup(const char* s) {
  size_t n = strlen(s) + 1;
  char* d = (char*)malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* Joins a and b (b may be NULL) into a fresh string; NULL on overflow or
 * allocation failure. */
static char* str_concat(const char* a, const char* b) {
  size_t na = strlen(a), nb = b ? strlen(b) : 0;
  if (na > SIZE_MAX - nb - 1) return NULL;
  char* d = (char*)malloc(na + nb + 1);
  if (!d) return NULL;
  memcpy(d, a, na);
  if (nb) memcpy(d + na, b, nb);
  d[na + nb] = '\0';
  return d;
}

/* Collapses repeated '/' and drops trailing ones (a trailing slash would
 * make lstat follow a symlink).  Modifies s in place. */
static void normalize_path(char* s) {
  size_t w = 0;
  for (size_t r = 0; s[r]; r++) {
    if (s[r] == '/' && w > 0 && s[w - 1] == '/') continue;
    s[w++] = s[r];
  }
  while (w > 1 && s[w - 1] == '/') w--;
  s[w] = '\0';
}

/* ---- directory resolution --------------------------------------------- */

static int env_disables(const char* v) {
  if (!v) return 0;
  return strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0 ||
         strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0;
}

/* Builds the configured directory path (malloc'ed), or NULL. */
static char* configured_dir(void) {
  const char* v = getenv("LIGHTOS_CACHE_DIR");
  if (v && *v) return str_dup(v);
  v = getenv("XDG_CACHE_HOME");
  /* The XDG spec says relative values are to be ignored. */
  if (v && v[0] == '/') return str_concat(v, "/lightos");
  v = getenv("HOME");
  if (v && *v) return str_concat(v, "/.cache/lightos");
  return NULL;
}

/* mkdir -p: intermediate directories get 0755 (less the umask), the last
 * component 0700.  Existing components are accepted as they are; the last
 * one is checked separately by the caller. */
static int make_dirs(char* path) {
  size_t n = strlen(path);
  for (size_t i = 1; i < n; i++) {
    if (path[i] != '/') continue;
    path[i] = '\0';
    struct stat st;
    if (stat(path, &st) != 0) {
      if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        path[i] = '/';
        errno = e;
        return -1;
      }
    } else if (!S_ISDIR(st.st_mode)) {
      path[i] = '/';
      errno = ENOTDIR;
      return -1;
    }
    path[i] = '/';
  }
  if (mkdir(path, 0700) != 0 && errno != EEXIST) return -1;
  return 0;
}

/* Returns the usable directory (malloc'ed) or NULL, logging why not. */
static char* resolve_dir(void) {
  if (env_disables(getenv("LIGHTOS_CACHE"))) {
    lk_log(LK_LOG_DEBUG, "kernel cache disabled by LIGHTOS_CACHE");
    return NULL;
  }
  char* dir = configured_dir();
  if (!dir) {
    lk_log(LK_LOG_DEBUG, "kernel cache disabled: no cache directory "
                         "(LIGHTOS_CACHE_DIR, XDG_CACHE_HOME and HOME unset)");
    return NULL;
  }
  normalize_path(dir);
  /* Room for "/<64 hex><longest suffix>" must remain below PATH_MAX. */
  size_t longest = strlen(LK_CACHE_TMP_SUFFIX) > strlen(LK_CACHE_BIN_SUFFIX)
                       ? strlen(LK_CACHE_TMP_SUFFIX)
                       : strlen(LK_CACHE_BIN_SUFFIX);
  if (strlen(dir) + 1 + 64 + longest + 1 > (size_t)PATH_MAX) {
    lk_log(LK_LOG_WARN, "kernel cache disabled: directory path too long");
    free(dir);
    return NULL;
  }
  if (make_dirs(dir) != 0) {
    lk_log(LK_LOG_WARN, "kernel cache disabled: cannot create %s: %s", dir,
           strerror(errno));
    free(dir);
    return NULL;
  }
  struct stat st;
  if (lstat(dir, &st) != 0) {
    lk_log(LK_LOG_WARN, "kernel cache disabled: cannot stat %s: %s", dir,
           strerror(errno));
    free(dir);
    return NULL;
  }
  const char* why = NULL;
  if (S_ISLNK(st.st_mode)) why = "is a symbolic link";
  else if (!S_ISDIR(st.st_mode)) why = "is not a directory";
  else if (st.st_uid != geteuid()) why = "is not owned by the current user";
  else if (st.st_mode & (S_IWGRP | S_IWOTH)) why = "is writable by group or others";
  if (why) {
    lk_log(LK_LOG_WARN, "kernel cache disabled: %s %s", dir, why);
    free(dir);
    return NULL;
  }
  return dir;
}

const char* lk_cache_dir(void) {
  pthread_mutex_lock(&lk_cache_mu);
  if (!lk_cache_resolved) {
    lk_cache_path = resolve_dir();
    lk_cache_resolved = 1;
  }
  const char* d = lk_cache_path;
  pthread_mutex_unlock(&lk_cache_mu);
  return d;
}

void lk_cache_reset(void) {
  pthread_mutex_lock(&lk_cache_mu);
  free(lk_cache_path);
  lk_cache_path = NULL;
  lk_cache_resolved = 0;
  pthread_mutex_unlock(&lk_cache_mu);
}

/* Builds "<dir>/<hex key><suffix>" under the lock (so a concurrent reset
 * cannot free the directory string underneath us).  NULL when disabled. */
static char* entry_path(const uint8_t key[32], const char* suffix) {
  char hex[65];
  lk_sha256_hex(key, hex);
  char* out = NULL;
  pthread_mutex_lock(&lk_cache_mu);
  if (!lk_cache_resolved) {
    lk_cache_path = resolve_dir();
    lk_cache_resolved = 1;
  }
  if (lk_cache_path) {
    size_t nd = strlen(lk_cache_path), ns = strlen(suffix);
    size_t total = nd + 1 + 64 + ns + 1;
    if (total <= (size_t)PATH_MAX) {
      out = (char*)malloc(total);
      if (out) {
        memcpy(out, lk_cache_path, nd);
        out[nd] = '/';
        memcpy(out + nd + 1, hex, 64);
        memcpy(out + nd + 1 + 64, suffix, ns + 1);
      }
    }
  }
  pthread_mutex_unlock(&lk_cache_mu);
  return out;
}

/* ---- store -------------------------------------------------------------- */

bool lk_cache_store(const uint8_t key[32], const void* data, size_t len) {
  if (!key || (!data && len > 0)) return false;
  if ((uint64_t)len > LK_CACHE_MAX_PAYLOAD) {
    lk_log(LK_LOG_DEBUG, "kernel cache: payload of %zu bytes too large", len);
    return false;
  }
  char* final_path = entry_path(key, LK_CACHE_BIN_SUFFIX);
  if (!final_path) return false;
  char* tmp_path = entry_path(key, LK_CACHE_TMP_SUFFIX);
  if (!tmp_path) {
    free(final_path);
    return false;
  }

  uint8_t hdr[LK_CACHE_HEADER_SIZE];
  memcpy(hdr, LK_CACHE_MAGIC, 8);
  put_le32(hdr + 8, LK_CACHE_VERSION);
  memcpy(hdr + 12, key, 32);
  put_le64(hdr + 44, (uint64_t)len);
  lk_sha256(data ? data : "", len, hdr + 52);

  bool ok = false;
  const char* what = "mkstemp";
  int fd = mkstemp(tmp_path);
  if (fd >= 0) {
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0) (void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    what = "write";
    if (write_all(fd, hdr, sizeof hdr) == 0 && write_all(fd, data, len) == 0) {
      what = "fchmod";
      if (fchmod(fd, 0600) == 0) ok = true;
    }
    int saved = errno;
    if (close(fd) != 0 && ok) {
      ok = false;
      what = "close";
    } else {
      errno = saved;
    }
    if (ok) {
      what = "rename";
      if (rename(tmp_path, final_path) != 0) ok = false;
    }
    if (!ok) {
      saved = errno;
      (void)unlink(tmp_path);
      errno = saved;
    }
  }
  if (!ok)
    lk_log(LK_LOG_DEBUG, "kernel cache: store of %s failed (%s: %s)", final_path, what,
           strerror(errno));
  free(tmp_path);
  free(final_path);
  return ok;
}

/* ---- load --------------------------------------------------------------- */

/* Removes a bad entry, but only if the name still refers to the file we
 * examined (a concurrent store may have renamed a good one into place). */
static void remove_bad_entry(const char* path, const struct stat* seen) {
  struct stat now;
  if (seen) {
    if (lstat(path, &now) != 0) return;
    if (now.st_dev != seen->st_dev || now.st_ino != seen->st_ino) return;
  }
  if (unlink(path) == 0)
    lk_log(LK_LOG_DEBUG, "kernel cache: removed corrupt entry %s", path);
}

bool lk_cache_load(const uint8_t key[32], void** out_data, size_t* out_len) {
  if (out_data) *out_data = NULL;
  if (out_len) *out_len = 0;
  if (!key || !out_data || !out_len) return false;
  char* path = entry_path(key, LK_CACHE_BIN_SUFFIX);
  if (!path) return false;

  bool ok = false;
  uint8_t* payload = NULL;
  int fd;
  do {
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ELOOP) {
      lk_log(LK_LOG_DEBUG, "kernel cache: %s is a symbolic link", path);
      remove_bad_entry(path, NULL); /* unlinks the link, not its target */
    }
    free(path);
    return false;
  }

  struct stat st;
  int corrupt = 0;
  do {
    if (fstat(fd, &st) != 0) break;
    if (!S_ISREG(st.st_mode)) {
      lk_log(LK_LOG_DEBUG, "kernel cache: %s is not a regular file", path);
      break;
    }
    if (st.st_uid != geteuid()) {
      lk_log(LK_LOG_DEBUG, "kernel cache: %s is not owned by us", path);
      break;
    }
    /* Regular files ignore O_NONBLOCK, but clear it anyway. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (st.st_size < (off_t)LK_CACHE_HEADER_SIZE ||
        (uint64_t)st.st_size - LK_CACHE_HEADER_SIZE > LK_CACHE_MAX_PAYLOAD) {
      corrupt = 1;
      break;
    }
    uint8_t hdr[LK_CACHE_HEADER_SIZE];
    if (read_full(fd, hdr, sizeof hdr) != (ssize_t)sizeof hdr) {
      corrupt = 1;
      break;
    }
    uint64_t plen = get_le64(hdr + 44);
    if (memcmp(hdr, LK_CACHE_MAGIC, 8) != 0 || get_le32(hdr + 8) != LK_CACHE_VERSION ||
        !bytes_equal(hdr + 12, key, 32) ||
        plen != (uint64_t)st.st_size - LK_CACHE_HEADER_SIZE) {
      corrupt = 1;
      break;
    }
    size_t n = (size_t)plen;
    payload = (uint8_t*)malloc(n ? n : 1);
    if (!payload) break;
    if (read_full(fd, payload, n) != (ssize_t)n) {
      corrupt = 1;
      break;
    }
    uint8_t extra;
    if (read_full(fd, &extra, 1) != 0) { /* grew since fstat: not ours */
      corrupt = 1;
      break;
    }
    uint8_t sum[32];
    lk_sha256(payload, n, sum);
    if (!bytes_equal(sum, hdr + 52, 32)) {
      corrupt = 1;
      break;
    }
    *out_data = payload;
    *out_len = n;
    payload = NULL;
    ok = true;
  } while (0);
  close(fd);
  free(payload);
  if (corrupt) remove_bad_entry(path, &st);
  free(path);
  return ok;
}
