/* Tests for the SHA-256 implementation and the on-disk kernel cache. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/kcache.h"
#include "core/sha256.h"
#include "lk_test.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define HEADER_SIZE 84 /* magic 8 + version 4 + key 32 + length 8 + sha 32 */

/* ---- helpers ------------------------------------------------------------ */

static void hex_of(const void* data, size_t len, char out[65]) {
  uint8_t d[32];
  lk_sha256(data, len, d);
  lk_sha256_hex(d, out);
}

static void make_key(const char* label, uint8_t key[32]) {
  lk_sha256(label, strlen(label), key);
}

static int rm_cb(const char* path, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP || flag == FTW_D) {
    chmod(path, 0700);
    return rmdir(path) == 0 ? 0 : -1;
  }
  return unlink(path) == 0 ? 0 : -1;
}

static void rm_rf(const char* path) {
  if (path && *path) (void)nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh temp dir per test; the cache dir env is pointed below it. */
static char g_tmp[PATH_MAX];

static int fixture_begin(void) {
  const char* base = getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  int n = snprintf(g_tmp, sizeof g_tmp, "%s/lk_kcache_XXXXXX", base);
  if (n < 0 || (size_t)n >= sizeof g_tmp) return 0;
  if (!mkdtemp(g_tmp)) {
    g_tmp[0] = '\0';
    return 0;
  }
  return 1;
}

static void fixture_end(void) {
  rm_rf(g_tmp);
  g_tmp[0] = '\0';
  unsetenv("LIGHTOS_CACHE_DIR");
  unsetenv("LIGHTOS_CACHE");
  lk_cache_reset();
}

/* Defines test `name` whose body runs inside a fresh temp dir that is
 * removed afterwards, even when the body returns early. */
#define FIXTURE_TEST(name)                                        \
  static void name##_body(void);                                  \
  static void name(void) {                                        \
    if (!LK_CHECK_MSG(fixture_begin(), "mkdtemp failed")) return; \
    name##_body();                                                \
    fixture_end();                                                \
  }                                                               \
  static void name##_body(void)

/* tmp path "<g_tmp>/<rel>" into out (PATH_MAX). */
static int tmp_path(char* out, const char* rel) {
  int n = snprintf(out, PATH_MAX, "%s/%s", g_tmp, rel);
  return n >= 0 && n < PATH_MAX;
}

/* Points the cache at <g_tmp>/<rel> and re-resolves. */
static const char* use_cache_dir(const char* rel) {
  char p[PATH_MAX];
  if (!tmp_path(p, rel)) return NULL;
  unsetenv("LIGHTOS_CACHE");
  setenv("LIGHTOS_CACHE_DIR", p, 1);
  lk_cache_reset();
  return lk_cache_dir();
}

static int entry_file(char* out, const uint8_t key[32]) {
  const char* dir = lk_cache_dir();
  char hex[65];
  if (!dir) return 0;
  lk_sha256_hex(key, hex);
  int n = snprintf(out, PATH_MAX, "%s/%s.bin", dir, hex);
  return n >= 0 && n < PATH_MAX;
}

static int file_exists(const char* p) {
  struct stat st;
  return lstat(p, &st) == 0;
}

/* ---- sha256 ------------------------------------------------------------- */

static void test_sha256_vectors(void) {
  char hex[65];
  hex_of("", 0, hex);
  LK_CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hex_of("abc", 3, hex);
  LK_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char* m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  hex_of(m448, strlen(m448), hex);
  LK_CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const char* m896 =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
      "klmnopqrlmnopqrsmnopqrstnopqrstu";
  hex_of(m896, strlen(m896), hex);
  LK_CHECK_STR(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

  /* One million 'a', fed in odd chunk sizes. */
  static const size_t chunks[] = {1, 3, 7, 13, 63, 64, 65, 127, 129, 1000, 4093};
  char buf[4093];
  memset(buf, 'a', sizeof buf);
  lk_sha256_t s;
  lk_sha256_init(&s);
  size_t left = 1000000, i = 0;
  while (left > 0) {
    size_t n = chunks[i++ % (sizeof chunks / sizeof chunks[0])];
    if (n > left) n = left;
    lk_sha256_update(&s, buf, n);
    left -= n;
  }
  uint8_t d[32];
  lk_sha256_final(&s, d);
  lk_sha256_hex(d, hex);
  LK_CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Incremental hashing split at every point equals one-shot hashing, across
 * the padding boundaries (55/56/63/64 bytes). */
static void test_sha256_incremental_splits(void) {
  uint8_t msg[200];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 31u + 7u);
  for (size_t len = 0; len <= sizeof msg; len++) {
    uint8_t one[32];
    lk_sha256(msg, len, one);
    for (size_t cut = 0; cut <= len; cut += (len < 70 ? 1 : 17)) {
      lk_sha256_t s;
      uint8_t two[32];
      lk_sha256_init(&s);
      lk_sha256_update(&s, msg, cut);
      lk_sha256_update(&s, msg + cut, len - cut);
      lk_sha256_final(&s, two);
      if (!LK_CHECK_MSG(memcmp(one, two, 32) == 0, "len %zu cut %zu differs", len, cut))
        return;
    }
  }
}

static void hash_strs(const char* a, const char* b, uint8_t out[32]) {
  lk_sha256_t s;
  lk_sha256_init(&s);
  lk_sha256_update_str(&s, a);
  lk_sha256_update_str(&s, b);
  lk_sha256_final(&s, out);
}

static void test_sha256_update_str(void) {
  uint8_t x[32], y[32], z[32], w[32];
  hash_strs("ab", "c", x);
  hash_strs("a", "bc", y);
  LK_CHECK(memcmp(x, y, 32) != 0);
  hash_strs("abc", "", z);
  LK_CHECK(memcmp(x, z, 32) != 0);
  LK_CHECK(memcmp(y, z, 32) != 0);
  /* NULL counts as the empty string. */
  hash_strs("abc", NULL, w);
  LK_CHECK(memcmp(z, w, 32) == 0);
  hash_strs(NULL, "abc", x);
  hash_strs("", "abc", y);
  LK_CHECK(memcmp(x, y, 32) == 0);
  LK_CHECK(memcmp(x, z, 32) != 0);
  /* Not the same as plain concatenation. */
  lk_sha256("abc", 3, y);
  LK_CHECK(memcmp(z, y, 32) != 0);
  /* Deterministic. */
  hash_strs("ab", "c", y);
  hash_strs("ab", "c", z);
  LK_CHECK(memcmp(y, z, 32) == 0);
}

/* ---- kcache ------------------------------------------------------------- */

FIXTURE_TEST(test_cache_round_trip) {
  const char* dir = use_cache_dir("cache");
  LK_REQUIRE(dir != NULL);
  char want[PATH_MAX];
  LK_REQUIRE(tmp_path(want, "cache"));
  LK_CHECK_STR(dir, want);

  uint8_t key[32];
  make_key("round-trip", key);
  const char payload[] = "\x7f" "ELF binary-ish payload \0 with a NUL";
  LK_CHECK(lk_cache_store(key, payload, sizeof payload));
  void* data = NULL;
  size_t len = 0;
  LK_CHECK(lk_cache_load(key, &data, &len));
  LK_CHECK_INT(len, sizeof payload);
  LK_CHECK(data && memcmp(data, payload, sizeof payload) == 0);
  free(data);

  /* Entry file is 0600 and has the documented size. */
  char ef[PATH_MAX];
  struct stat st;
  LK_REQUIRE(entry_file(ef, key));
  LK_REQUIRE(lstat(ef, &st) == 0);
  LK_CHECK(S_ISREG(st.st_mode));
  LK_CHECK_INT(st.st_mode & 0777, 0600);
  LK_CHECK_INT(st.st_size, HEADER_SIZE + sizeof payload);

  /* Overwrite: the latest store wins. */
  LK_CHECK(lk_cache_store(key, "second", 6));
  LK_CHECK(lk_cache_load(key, &data, &len));
  LK_CHECK_INT(len, 6);
  LK_CHECK(data && memcmp(data, "second", 6) == 0);
  free(data);

  /* Empty payload. */
  uint8_t k2[32];
  make_key("empty", k2);
  LK_CHECK(lk_cache_store(k2, NULL, 0));
  data = NULL;
  len = 123;
  LK_CHECK(lk_cache_load(k2, &data, &len));
  LK_CHECK_INT(len, 0);
  free(data);

  /* Bad arguments. */
  LK_CHECK(!lk_cache_store(NULL, "x", 1));
  LK_CHECK(!lk_cache_store(key, NULL, 5));
  LK_CHECK(!lk_cache_load(key, NULL, &len));
}

FIXTURE_TEST(test_cache_miss) {
  LK_REQUIRE(use_cache_dir("cache") != NULL);
  uint8_t key[32];
  make_key("never stored", key);
  void* data = (void*)&key;
  size_t len = 99;
  LK_CHECK(!lk_cache_load(key, &data, &len));
  LK_CHECK(data == NULL);
  LK_CHECK_INT(len, 0);
}

FIXTURE_TEST(test_cache_disabled_by_env) {
  LK_REQUIRE(use_cache_dir("cache") != NULL);
  uint8_t key[32];
  make_key("disabled", key);
  LK_CHECK(lk_cache_store(key, "abc", 3));
  setenv("LIGHTOS_CACHE", "0", 1);
  lk_cache_reset();
  LK_CHECK(lk_cache_dir() == NULL);
  LK_CHECK(!lk_cache_store(key, "abc", 3));
  void* data = NULL;
  size_t len = 0;
  LK_CHECK(!lk_cache_load(key, &data, &len));
  LK_CHECK(data == NULL);
  /* Any other value leaves it enabled. */
  setenv("LIGHTOS_CACHE", "1", 1);
  lk_cache_reset();
  LK_CHECK(lk_cache_dir() != NULL);
  LK_CHECK(lk_cache_load(key, &data, &len));
  free(data);
}

FIXTURE_TEST(test_cache_env_fallbacks) {
  char* old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  char* old_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
  char p[PATH_MAX], want[PATH_MAX];

  unsetenv("LIGHTOS_CACHE_DIR");
  unsetenv("LIGHTOS_CACHE");
  LK_CHECK(tmp_path(p, "xdg"));
  setenv("XDG_CACHE_HOME", p, 1);
  lk_cache_reset();
  LK_CHECK(tmp_path(want, "xdg/lightos"));
  LK_CHECK_STR(lk_cache_dir(), want);

  unsetenv("XDG_CACHE_HOME");
  LK_CHECK(tmp_path(p, "home"));
  setenv("HOME", p, 1);
  lk_cache_reset();
  LK_CHECK(tmp_path(want, "home/.cache/lightos"));
  LK_CHECK_STR(lk_cache_dir(), want);

  /* LIGHTOS_CACHE_DIR has priority over both. */
  LK_CHECK(tmp_path(p, "xdg"));
  setenv("XDG_CACHE_HOME", p, 1);
  LK_CHECK(tmp_path(p, "explicit"));
  setenv("LIGHTOS_CACHE_DIR", p, 1);
  lk_cache_reset();
  LK_CHECK_STR(lk_cache_dir(), p);

  if (old_home) setenv("HOME", old_home, 1);
  else unsetenv("HOME");
  if (old_xdg) setenv("XDG_CACHE_HOME", old_xdg, 1);
  else unsetenv("XDG_CACHE_HOME");
  free(old_home);
  free(old_xdg);
}

FIXTURE_TEST(test_cache_corrupt_payload) {
  LK_REQUIRE(use_cache_dir("cache") != NULL);
  uint8_t key[32];
  make_key("corrupt", key);
  char payload[1000];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (char)(i * 7);
  LK_REQUIRE(lk_cache_store(key, payload, sizeof payload));
  char ef[PATH_MAX];
  LK_REQUIRE(entry_file(ef, key));
  int fd = open(ef, O_RDWR);
  LK_REQUIRE(fd >= 0);
  uint8_t b = 0;
  LK_CHECK(pread(fd, &b, 1, HEADER_SIZE + 500) == 1);
  b ^= 0x01;
  LK_CHECK(pwrite(fd, &b, 1, HEADER_SIZE + 500) == 1);
  close(fd);
  void* data = NULL;
  size_t len = 0;
  LK_CHECK(!lk_cache_load(key, &data, &len));
  LK_CHECK(data == NULL);
  LK_CHECK(!file_exists(ef));
  /* A fresh store repairs it. */
  LK_CHECK(lk_cache_store(key, payload, sizeof payload));
  LK_CHECK(lk_cache_load(key, &data, &len));
  free(data);

  /* Corrupt magic and version too. */
  static const off_t offs[] = {0, 8, 44, 52};
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
    LK_REQUIRE(lk_cache_store(key, payload, sizeof payload));
    fd = open(ef, O_RDWR);
    LK_REQUIRE(fd >= 0);
    LK_CHECK(pread(fd, &b, 1, offs[i]) == 1);
    b ^= 0x80;
    LK_CHECK(pwrite(fd, &b, 1, offs[i]) == 1);
    close(fd);
    data = NULL;
    LK_CHECK_MSG(!lk_cache_load(key, &data, &len), "corruption at %lld accepted",
                 (long long)offs[i]);
    LK_CHECK(!file_exists(ef));
    free(data);
  }
}

FIXTURE_TEST(test_cache_truncated) {
  LK_REQUIRE(use_cache_dir("cache") != NULL);
  uint8_t key[32];
  make_key("truncated", key);
  char payload[4096];
  memset(payload, 'x', sizeof payload);
  char ef[PATH_MAX];
  LK_REQUIRE(entry_file(ef, key));
  static const off_t sizes[] = {0, 10, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 100,
                                HEADER_SIZE + 4095};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    LK_REQUIRE(lk_cache_store(key, payload, sizeof payload));
    LK_REQUIRE(truncate(ef, sizes[i]) == 0);
    void* data = NULL;
    size_t len = 0;
    LK_CHECK_MSG(!lk_cache_load(key, &data, &len), "truncated to %lld accepted",
                 (long long)sizes[i]);
    LK_CHECK(data == NULL);
    LK_CHECK(!file_exists(ef));
  }
  /* Trailing garbage is rejected too. */
  LK_REQUIRE(lk_cache_store(key, payload, sizeof payload));
  int fd = open(ef, O_WRONLY | O_APPEND);
  LK_REQUIRE(fd >= 0);
  LK_CHECK(write(fd, "junk", 4) == 4);
  close(fd);
  void* data = NULL;
  size_t len = 0;
  LK_CHECK(!lk_cache_load(key, &data, &len));
  LK_CHECK(!file_exists(ef));
}

FIXTURE_TEST(test_cache_wrong_key) {
  LK_REQUIRE(use_cache_dir("cache") != NULL);
  uint8_t ka[32], kb[32];
  make_key("key A", ka);
  make_key("key B", kb);
  LK_REQUIRE(lk_cache_store(ka, "payload A", 9));
  char efa[PATH_MAX], efb[PATH_MAX];
  LK_REQUIRE(entry_file(efa, ka));
  LK_REQUIRE(entry_file(efb, kb));
  /* Put A's entry under B's name: the header key no longer matches. */
  LK_REQUIRE(rename(efa, efb) == 0);
  void* data = NULL;
  size_t len = 0;
  LK_CHECK(!lk_cache_load(kb, &data, &len));
  LK_CHECK(data == NULL);
  LK_CHECK(!file_exists(efb));
  LK_CHECK(!lk_cache_load(ka, &data, &len));
}

FIXTURE_TEST(test_cache_entry_not_regular) {
  LK_REQUIRE(use_cache_dir("cache") != NULL);
  uint8_t key[32];
  void* data = NULL;
  size_t len = 0;
  char ef[PATH_MAX], target[PATH_MAX];

  /* A FIFO must not block the loader. */
  make_key("fifo", key);
  LK_REQUIRE(entry_file(ef, key));
  LK_REQUIRE(mkfifo(ef, 0600) == 0);
  LK_CHECK(!lk_cache_load(key, &data, &len));

  /* A directory. */
  make_key("dir", key);
  LK_REQUIRE(entry_file(ef, key));
  LK_REQUIRE(mkdir(ef, 0700) == 0);
  LK_CHECK(!lk_cache_load(key, &data, &len));

  /* A symlink to a valid entry is not followed. */
  uint8_t real[32];
  make_key("real", real);
  LK_REQUIRE(lk_cache_store(real, "data", 4));
  LK_REQUIRE(entry_file(target, real));
  make_key("link", key);
  LK_REQUIRE(entry_file(ef, key));
  LK_REQUIRE(symlink(target, ef) == 0);
  LK_CHECK(!lk_cache_load(key, &data, &len));
  LK_CHECK(data == NULL);
  LK_CHECK(file_exists(target)); /* the target survives */
}

FIXTURE_TEST(test_cache_refuses_open_dir) {
  char p[PATH_MAX];
  LK_REQUIRE(tmp_path(p, "open"));
  LK_REQUIRE(mkdir(p, 0700) == 0);
  LK_REQUIRE(chmod(p, 0777) == 0);
  LK_CHECK(use_cache_dir("open") == NULL);
  uint8_t key[32];
  make_key("x", key);
  LK_CHECK(!lk_cache_store(key, "abc", 3));
  void* data = NULL;
  size_t len = 0;
  LK_CHECK(!lk_cache_load(key, &data, &len));

  /* Group-writable alone is refused too; 0755 is fine. */
  LK_REQUIRE(chmod(p, 0770) == 0);
  LK_CHECK(use_cache_dir("open") == NULL);
  LK_REQUIRE(chmod(p, 0702) == 0);
  LK_CHECK(use_cache_dir("open") == NULL);
  LK_REQUIRE(chmod(p, 0755) == 0);
  LK_CHECK(use_cache_dir("open") != NULL);

  /* A regular file in place of the directory. */
  LK_REQUIRE(tmp_path(p, "file"));
  int fd = open(p, O_CREAT | O_WRONLY, 0600);
  LK_REQUIRE(fd >= 0);
  close(fd);
  LK_CHECK(use_cache_dir("file") == NULL);
  LK_CHECK(use_cache_dir("file/sub") == NULL);
}

FIXTURE_TEST(test_cache_refuses_symlink_dir) {
  char real[PATH_MAX], link[PATH_MAX];
  LK_REQUIRE(tmp_path(real, "real"));
  LK_REQUIRE(tmp_path(link, "link"));
  LK_REQUIRE(mkdir(real, 0700) == 0);
  LK_REQUIRE(symlink(real, link) == 0);
  LK_CHECK(use_cache_dir("link") == NULL);
  /* A trailing slash must not make lstat follow the link. */
  LK_CHECK(use_cache_dir("link/") == NULL);
  LK_CHECK(use_cache_dir("link//") == NULL);
  /* The real directory itself is fine, also spelled with a trailing slash. */
  LK_CHECK_STR(use_cache_dir("real/"), real);
  /* A symlink in a parent component is allowed. */
  char sub[PATH_MAX];
  LK_REQUIRE(tmp_path(sub, "real/sub"));
  LK_CHECK(use_cache_dir("link/sub") != NULL);
  struct stat st;
  LK_CHECK(lstat(sub, &st) == 0 && S_ISDIR(st.st_mode));
}

FIXTURE_TEST(test_cache_creates_nested_dir) {
  char p[PATH_MAX];
  LK_REQUIRE(tmp_path(p, "a/b/c/cache"));
  const char* dir = use_cache_dir("a/b/c/cache");
  LK_REQUIRE(dir != NULL);
  LK_CHECK_STR(dir, p);
  struct stat st;
  LK_REQUIRE(lstat(p, &st) == 0);
  LK_CHECK(S_ISDIR(st.st_mode));
  LK_CHECK_INT(st.st_mode & 0777, 0700);
  LK_CHECK(st.st_uid == geteuid());
  uint8_t key[32];
  make_key("nested", key);
  LK_CHECK(lk_cache_store(key, "n", 1));
  void* data = NULL;
  size_t len = 0;
  LK_CHECK(lk_cache_load(key, &data, &len));
  LK_CHECK_INT(len, 1);
  free(data);
}

/* ---- directory scan helper ---------------------------------------------- */

static int count_leftover_tmp(const char* dir) {
  if (!dir) return -1;
  DIR* d = opendir(dir);
  if (!d) return -1;
  int count = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, ".tmp.")) count++;
  closedir(d);
  return count;
}

/* ---- concurrency ---------------------------------------------------------- */

#define CONC_WRITERS 4
#define CONC_READERS 2
#define CONC_ROUNDS 40

static uint8_t g_conc_key[32];
static atomic_int g_writers_left;
static atomic_int g_store_failures;
static atomic_int g_bad_loads;
static atomic_int g_hits;

static size_t conc_size(int writer) { return 65536u + (size_t)writer * 1237u; }

static void* conc_writer(void* arg) {
  int id = (int)(intptr_t)arg;
  size_t n = conc_size(id);
  uint8_t* buf = (uint8_t*)malloc(n);
  if (buf) {
    memset(buf, 'A' + id, n);
    for (int r = 0; r < CONC_ROUNDS; r++)
      if (!lk_cache_store(g_conc_key, buf, n)) atomic_fetch_add(&g_store_failures, 1);
    free(buf);
  } else {
    atomic_fetch_add(&g_store_failures, 1);
  }
  atomic_fetch_sub(&g_writers_left, 1);
  return NULL;
}

/* Every hit must be exactly one writer's complete payload. */
static int payload_ok(const uint8_t* d, size_t len) {
  if (len == 0) return 0;
  int id = d[0] - 'A';
  if (id < 0 || id >= CONC_WRITERS || len != conc_size(id)) return 0;
  for (size_t i = 0; i < len; i++)
    if (d[i] != d[0]) return 0;
  return 1;
}

static void* conc_reader(void* arg) {
  (void)arg;
  for (;;) {
    int done = atomic_load(&g_writers_left) == 0;
    void* data = NULL;
    size_t len = 0;
    if (lk_cache_load(g_conc_key, &data, &len)) {
      atomic_fetch_add(&g_hits, 1);
      if (!payload_ok((const uint8_t*)data, len)) atomic_fetch_add(&g_bad_loads, 1);
      free(data);
    }
    if (done) break;
  }
  return NULL;
}

FIXTURE_TEST(test_cache_concurrent_same_key) {
  const char* dir = use_cache_dir("cache");
  LK_REQUIRE(dir != NULL);
  make_key("concurrent", g_conc_key);
  atomic_store(&g_writers_left, CONC_WRITERS);
  atomic_store(&g_store_failures, 0);
  atomic_store(&g_bad_loads, 0);
  atomic_store(&g_hits, 0);
  pthread_t th[CONC_WRITERS + CONC_READERS];
  int started = 0;
  for (int i = 0; i < CONC_READERS; i++)
    if (pthread_create(&th[started], NULL, conc_reader, NULL) == 0) started++;
  int readers = started;
  for (int i = 0; i < CONC_WRITERS; i++) {
    if (pthread_create(&th[started], NULL, conc_writer, (void*)(intptr_t)i) == 0) {
      started++;
    } else {
      atomic_fetch_sub(&g_writers_left, 1);
    }
  }
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  LK_CHECK_INT(readers, CONC_READERS);
  LK_CHECK_INT(started, CONC_WRITERS + CONC_READERS);
  LK_CHECK_INT(atomic_load(&g_store_failures), 0);
  LK_CHECK_INT(atomic_load(&g_bad_loads), 0);
  LK_CHECK(atomic_load(&g_hits) > 0);
  /* After the dust settles the entry is valid and no temp files remain. */
  void* data = NULL;
  size_t len = 0;
  LK_CHECK(lk_cache_load(g_conc_key, &data, &len));
  LK_CHECK(data && payload_ok((const uint8_t*)data, len));
  free(data);
  LK_CHECK_INT(count_leftover_tmp(lk_cache_dir()), 0);
}

/* ---- large payload ------------------------------------------------------ */

FIXTURE_TEST(test_cache_large_payload) {
  LK_REQUIRE(use_cache_dir("cache") != NULL);
  size_t n = (size_t)8 << 20;
  uint8_t* buf = (uint8_t*)malloc(n);
  LK_REQUIRE(buf != NULL);
  uint32_t x = 0x12345678u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buf[i] = (uint8_t)x;
  }
  uint8_t key[32];
  make_key("large", key);
  LK_CHECK(lk_cache_store(key, buf, n));
  void* data = NULL;
  size_t len = 0;
  LK_CHECK(lk_cache_load(key, &data, &len));
  LK_CHECK_INT(len, n);
  LK_CHECK(data && len == n && memcmp(data, buf, n) == 0);
  free(data);
  free(buf);
}

int main(void) {
  lk_t.program = "test_core_cache";
  /* Start from a known environment. */
  unsetenv("LIGHTOS_CACHE");
  unsetenv("LIGHTOS_CACHE_DIR");
  umask(022);
  LK_RUN(test_sha256_vectors);
  LK_RUN(test_sha256_incremental_splits);
  LK_RUN(test_sha256_update_str);
  LK_RUN(test_cache_round_trip);
  LK_RUN(test_cache_miss);
  LK_RUN(test_cache_disabled_by_env);
  LK_RUN(test_cache_env_fallbacks);
  LK_RUN(test_cache_corrupt_payload);
  LK_RUN(test_cache_truncated);
  LK_RUN(test_cache_wrong_key);
  LK_RUN(test_cache_entry_not_regular);
  LK_RUN(test_cache_refuses_open_dir);
  LK_RUN(test_cache_refuses_symlink_dir);
  LK_RUN(test_cache_creates_nested_dir);
  LK_RUN(test_cache_concurrent_same_key);
  LK_RUN(test_cache_large_payload);
  return lk_test_finish();
}
