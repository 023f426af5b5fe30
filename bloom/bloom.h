/*
 * bloom: a scalable split-block Bloom filter (the Apache Parquet / Impala
 * layout) hashed with XXH3, with lock-free lookups, thread-safe adds and
 * checksummed save/load. Pure library: libc, pthreads and xxhash only.
 */
#ifndef BLOOM_BLOOM_H
#define BLOOM_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOOM_OK 0
#define BLOOM_ERR -1

/*
 * Layout. A sub-filter is an array of nblocks 256-bit blocks, each eight
 * 32-bit words (Apache Parquet BloomFilter.md, "Split Block Bloom Filter";
 * Impala's BlockBloomFilter). A key is hashed once to h = XXH3_64bits with a
 * fixed seed (bloom_hash()). Its block is (hi32 * nblocks) >> 32 with
 * hi32 = h >> 32 (Lemire's fastrange); in that block it sets one bit per
 * word: bit (lo32 * SALT[i]) >> 27 of word i, with lo32 = (uint32_t)h and
 * SALT the eight odd Parquet constants. One lookup reads one 32-byte block,
 * which never straddles a cache line. Words are kept in pairs as four 64-bit
 * atomic lanes (the same bytes on little-endian) so an add needs at most
 * four atomic ORs; lookups compute the eight bits with AVX2 where the CPU
 * has it (bloom_set_simd()).
 *
 * Sizing. The classic (-n ln p) / (ln 2)^2 bits underestimates a blocked
 * filter, whose blocks receive a Poisson number of keys (Putze, Sanders,
 * Singler 2007, "Cache-, Hash- and Space-Efficient Bloom Filters", sec. 3).
 * With lambda = n / nblocks keys per block on average, and 8 words of 32
 * bits with one bit per word, the false positive rate is
 *
 *     fpr(lambda) = sum_{i >= 0} Pois(i; lambda) * (1 - (31/32)^i)^8
 *
 * bloom_new() evaluates this sum and takes the smallest nblocks whose
 * fpr(n / nblocks) <= p. It reproduces the table of Parquet BloomFilter.md:
 *
 *     p       0.1   0.01   0.001   1e-4   1e-5
 *     bits/n  5.99  10.53  16.89   26.34  40.99
 *
 * (classic formula at 1%: 9.59 bits/key). So 1% costs 10.53 bits, 1.32 MB
 * per million keys, not 10.5.
 *
 * Scaling (Almeida et al. 2007, "Scalable Bloom Filters"; as RedisBloom's
 * scalable filter). Sub-filter i (from 0) holds capacity * 2^i keys at rate
 * p * (1 - r) * r^i with r = 0.5, so the compound rate stays below
 * sum_i p (1 - r) r^i = p. A new sub-filter is added when the newest one
 * has counted its capacity. A non-scaling filter has one sub-filter at rate
 * p; past its capacity it keeps accepting keys, its rate rises, and
 * bloom_saturated() says so. At most BLOOM_MAX_FILTERS sub-filters, each at
 * most BLOOM_MAX_BLOCKS blocks; when the next one would pass either limit the
 * filter saturates like a non-scaling one.
 *
 * Counting. An add counts a key only when it is new: absent from every
 * older sub-filter and setting at least one new bit in the newest (as
 * RedisBloom does), so re-adding a key neither grows nor fills the filter.
 * A false positive at add time means that key is not counted.
 *
 * Thread safety.
 *  - bloom_maybe_contains*, bloom_count, bloom_capacity, bloom_filters,
 *    bloom_saturated, bloom_memory_bytes, bloom_bits_per_key and
 *    bloom_estimated_fpr are lock-free and may run in any number of threads
 *    concurrently with each other, with bloom_add* and with bloom_save.
 *  - bloom_add* may run in any number of threads at once. Bits are set with
 *    relaxed atomic fetch-or on _Atomic uint64_t lanes, so no bit is lost;
 *    once bloom_add() has returned in thread A, a lookup of that key in a
 *    thread B that synchronizes with A afterwards (mutex, queue, join) says
 *    "maybe present". Without such synchronization B sees the key at some
 *    later, unspecified time (relaxed loads).
 *  - Growth: the add that fills the newest sub-filter takes an internal
 *    mutex, re-checks that nobody grew it meanwhile, builds the new
 *    sub-filter and publishes it with a release store of the sub-filter
 *    count; readers load that count with acquire before touching any
 *    sub-filter. Sub-filters live in a fixed array and are never moved or
 *    freed while the filter lives, so lookups never wait. Adds racing with
 *    growth may land a few keys in the full sub-filter (still found).
 *  - Counters are atomic; bloom_count() is exact when no add is in flight
 *    and otherwise approximate.
 *  - bloom_clear, bloom_free and bloom_load need exclusive access: no other
 *    call on the same filter may run concurrently.
 *
 * Memory: the caller owns what bloom_new()/bloom_load() return and frees it
 * with bloom_free(). Out of memory aborts (like bw_malloc): sizes are bounded
 * by BLOOM_MAX_BLOCKS and BLOOM_MAX_FILTERS.
 */
struct bloom;

/* Most sub-filters a scaling filter grows to (capacity * (2^32 - 1) keys). */
#define BLOOM_MAX_FILTERS 32u

/* Most 256-bit blocks in one sub-filter (fastrange on 32 bits): 128 GiB. */
#define BLOOM_MAX_BLOCKS UINT64_C(0xffffffff)

/* Smallest fp_rate bloom_new() accepts. */
#define BLOOM_MIN_FP_RATE 1e-9

/* Largest fp_rate bloom_new() accepts (3.25 bits per key). */
#define BLOOM_MAX_FP_RATE 0.5

/*
 * Create an empty filter for capacity keys at false positive rate fp_rate.
 * capacity >= 1; fp_rate in [BLOOM_MIN_FP_RATE, BLOOM_MAX_FP_RATE]; scaling
 * true adds sub-filters as keys arrive (the first then gets fp_rate / 2, see
 * "Scaling" above), false keeps one sub-filter of fp_rate that saturates.
 * Allocates 10.53 bits (1.32 bytes) per key at 1% non-scaling, 12.20 bits
 * scaling (sizing formula above).
 * Returns a filter the caller owns (bloom_free()), or NULL with the reason in
 * err (NUL-terminated, truncated to errlen; err may be NULL if errlen is 0):
 * capacity 0, fp_rate out of range or NaN, or more than BLOOM_MAX_BLOCKS
 * blocks needed.
 */
struct bloom *bloom_new(uint64_t capacity, double fp_rate, bool scaling, char *err,
                        size_t errlen);

/* Free the filter and all its sub-filters. NULL is a no-op. Exclusive. */
void bloom_free(struct bloom *b);

/*
 * The 64-bit hash bloom_add()/bloom_maybe_contains() use for a key:
 * XXH3_64bits_withSeed(key, len, seed) with the fixed seed stored in saved
 * files. Hash once and pass it to bloom_add_hash() of two filters (rebuild).
 * key: len bytes, borrowed; len 0 is allowed (key may then be NULL).
 */
uint64_t bloom_hash(const void *key, size_t len);

/*
 * Add a key (len bytes, borrowed, may be binary). Thread-safe.
 * Returns true if the key was new and counted (see "Counting"), false if the
 * filter already said "maybe present" for it. May grow a scaling filter.
 */
bool bloom_add(struct bloom *b, const void *key, size_t len);

/* bloom_add() for a hash from bloom_hash(). */
bool bloom_add_hash(struct bloom *b, uint64_t h);

/*
 * Lock-free lookup. false: the key was never added (since the last clear);
 * true: it maybe was, wrong with probability about bloom_estimated_fpr().
 */
bool bloom_maybe_contains(const struct bloom *b, const void *key, size_t len);

/* bloom_maybe_contains() for a hash from bloom_hash(). */
bool bloom_maybe_contains_hash(const struct bloom *b, uint64_t h);

/*
 * Choose the lookup code: enable true uses the AVX2 path where the CPU has
 * AVX2 (the default, detected by bloom_new()/bloom_load()), false the
 * portable scalar loop. Both give the same answers; AVX2 measured 2-3x
 * faster on a 13 MB filter (bench/bloom_bench.c). For tests and benchmarks.
 * Returns whether the AVX2 path is now in use. Safe to call concurrently
 * with lookups (a relaxed atomic flag).
 */
bool bloom_set_simd(struct bloom *b, bool enable);

/*
 * Forget every key: zero all bits and counts and drop every sub-filter but
 * the first, so the filter is as bloom_new() made it. Exclusive.
 */
void bloom_clear(struct bloom *b);

/* Keys counted since creation or the last clear (new keys only). */
uint64_t bloom_count(const struct bloom *b);

/* Keys the filter holds at its rate: sum of its sub-filters' capacities. */
uint64_t bloom_capacity(const struct bloom *b);

/* Number of sub-filters, 1..BLOOM_MAX_FILTERS. */
uint32_t bloom_filters(const struct bloom *b);

/*
 * true when the newest sub-filter has counted its capacity and no new one
 * will be added (non-scaling, or a scaling filter at its limits): further
 * adds raise the false positive rate above fp_rate.
 */
bool bloom_saturated(const struct bloom *b);

/* Heap bytes held: the bit arrays plus the struct. */
size_t bloom_memory_bytes(const struct bloom *b);

/* Bits of bit array per key of capacity: 8 * bit-array bytes / capacity. */
double bloom_bits_per_key(const struct bloom *b);

/*
 * False positive rate for an absent key, estimated from the fill of the
 * bits: per sub-filter the mean over blocks of prod_{w=0..7} (set bits of
 * word w / 32), which is exact for uniform hashes; compounded over
 * sub-filters as 1 - prod (1 - f_i). 0 for an empty filter. Reads every
 * word: O(bloom_memory_bytes()), 6 ms for 13 MB (10M keys at 1%,
 * bench/bloom_bench.c); for INFO, not per request.
 */
double bloom_estimated_fpr(const struct bloom *b);

/*
 * Save the filter to path: written to a temporary file in the same
 * directory (path.tmp.XXXXXX), fsync'ed, then renamed over path, so path
 * holds either the old or the whole new file. May run concurrently with adds
 * and lookups; the file then holds every key whose add completed before the
 * call (and maybe some added during it).
 * Format, all integers little-endian:
 *   header  "BWBLOOM\0", u32 version (BLOOM_FILE_VERSION), u32 flags
 *           (bit 0 scaling), u64 hash seed, u64 capacity, f64 fp_rate,
 *           u32 sub-filter count, u32 0
 *   table   per sub-filter: u64 nblocks, u64 capacity, f64 fp_rate, u64 count
 *   u64     XXH3_64bits of header and table
 *   payload per sub-filter its nblocks * 8 u32 words
 *   u64     XXH3_64bits of every preceding byte
 * Returns BLOOM_OK, or BLOOM_ERR with the reason (and strerror) in err; on
 * error path is untouched and the temporary file removed.
 */
int bloom_save(const struct bloom *b, const char *path, char *err, size_t errlen);

/* Version written by bloom_save() and the only one bloom_load() accepts. */
#define BLOOM_FILE_VERSION 1u

/*
 * Load a filter saved by bloom_save(). Returns a filter the caller owns, or
 * NULL with the reason in err, having kept nothing; refused are: a file that
 * cannot be opened or read, "bad magic" (not a bloom file), "unsupported
 * version", a "truncated" file, one with trailing bytes, a header that fails
 * its "header checksum" or holds out-of-range parameters, and a payload that
 * fails its "checksum". Reads the file once, streaming.
 */
struct bloom *bloom_load(const char *path, char *err, size_t errlen);

#endif
