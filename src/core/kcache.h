/* On-disk cache of compiled kernel binaries.
 *
 * Location: $LIGHTOS_CACHE_DIR, else $XDG_CACHE_HOME/lightos, else
 * $HOME/.cache/lightos.  Disabled by LIGHTOS_CACHE=0.  The directory is
 * created with mode 0700; an existing directory that is not owned by the
 * current user or is writable by group/others is refused (the cache is then
 * disabled for the process, with a warning logged once).
 *
 * An entry is one file named by the hex key, holding a header (magic,
 * format version, the key, payload length, SHA-256 of the payload) and the
 * payload.  It is written to a temporary file in the same directory and
 * renamed into place, so readers never see a partial entry.  On load the
 * header and checksum are verified; a corrupt or truncated entry is removed
 * and reported as a miss.
 *
 * Keys are SHA-256 digests that the caller builds over everything that
 * determines the binary (prelude, source, options, language version,
 * device, driver and compiler versions); see lk_sha256_*.
 *
 * Thread-safety: all functions are safe to call from any thread; concurrent
 * stores of the same key are safe (last rename wins, both are valid).
 */
#ifndef LIGHTOS_CORE_KCACHE_H
#define LIGHTOS_CORE_KCACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The cache directory in use, or NULL when caching is disabled or the
 * directory is unusable.  Resolved once per process (first call) unless
 * lk_cache_reset() is called (tests use it after changing the env). */
const char* lk_cache_dir(void);
void lk_cache_reset(void);

/* Loads an entry.  On a hit returns true and a malloc'ed copy of the
 * payload in *out_data (caller frees) with its length.  Miss, disabled
 * cache or corrupt entry: false. */
bool lk_cache_load(const uint8_t key[32], void** out_data, size_t* out_len);

/* Stores an entry atomically.  Returns false (and logs at debug level) on
 * any I/O failure or when the cache is disabled: callers carry on. */
bool lk_cache_store(const uint8_t key[32], const void* data, size_t len);

#endif
