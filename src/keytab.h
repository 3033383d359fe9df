/* keytab.h - a hash table from byte-string keys to fixed-size records. Pure.
 *
 * Each entry is one record in an arena the table owns: a small header, the
 * caller's value, then the key bytes, all in one place, so that a lookup
 * touches two cache lines (its slot and its record) and a caller's key may
 * live in a datagram that is about to be reused. Records follow each other
 * in insertion order: iterating a window is a linear walk of the arena, and
 * clearing it costs no free per key.
 *
 * Slots are open-addressed with linear probing, at most half full. Each
 * packs 32 bits of the hash with the record's offset, so a probe rarely
 * reads a record whose key does not match. Memory per key: 8-16 bytes of
 * slots, 8 bytes of header, the value, and the key rounded up to 8 bytes. */
#ifndef RELAY_KEYTAB_H
#define RELAY_KEYTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keytab_entry {
	uint32_t key_len;  /* key bytes */
	uint8_t kind;      /* the key's first part: the meter type symbol */
	uint8_t dead;      /* removed; skipped until the arena is compacted */
	uint16_t pad;
	/* then the caller's value (val_size bytes, 8-aligned), then the key */
};

struct keytab {
	uint64_t *slots;     /* 0 = empty; else hash high bits | (offset / 8 + 1) */
	size_t mask;         /* slots - 1; slots is a power of two */
	char *arena;         /* records, 8-aligned */
	size_t arena_len, arena_cap;
	size_t key_bytes;    /* of the live keys */
	size_t key_limit;    /* bound on key_bytes; inserts beyond fail */
	size_t dead_bytes;   /* in removed records, reclaimed by compaction */
	size_t val_size;     /* rounded up to 8 */
	size_t count;        /* live entries */
	size_t peak;         /* most entries since the last keytab_clear() */
};

/* Hash for a key; the lookup and the insert both take it, so a caller that
 * uses the same key in two tables hashes once. */
uint64_t keytab_hash(uint8_t kind, const char *key, size_t len);

/* val_size: the caller's value in each record. key_limit: the most key
 * bytes the table may hold (inserts then fail with -ENOSPC). Returns 0 or
 * -ENOMEM. */
int keytab_init(struct keytab *kt, size_t val_size, size_t key_limit);
void keytab_deinit(struct keytab *kt);

static inline void *keytab_val(struct keytab_entry *e)
{
	return e + 1;
}

static inline const char *keytab_key(const struct keytab *kt, const struct keytab_entry *e)
{
	return (const char *)(e + 1) + kt->val_size;
}

/* Returns the entry for the key, or NULL. Valid until the next insert,
 * remove or clear. */
struct keytab_entry *keytab_find(const struct keytab *kt, uint64_t hash, uint8_t kind,
				 const char *key, size_t len);

/* Adds a key that keytab_find() did not find; its value starts zeroed.
 * Returns 0 and sets *out, -ENOSPC past key_limit (or 32 GiB of records),
 * or -ENOMEM. */
int keytab_insert(struct keytab *kt, uint64_t hash, uint8_t kind, const char *key, size_t len,
		  struct keytab_entry **out);

/* Removes a key. Returns 0 or -ENOENT. Positions held across it are void. */
int keytab_remove(struct keytab *kt, uint64_t hash, uint8_t kind, const char *key, size_t len);

/* Iteration in insertion order. A position starts at 0; keytab_next()
 * returns the live entry at or after *pos and moves *pos past it, or NULL
 * at the end. A position stays valid across inserts (not removals). */
struct keytab_entry *keytab_next(const struct keytab *kt, size_t *pos);

/* Whether *pos has passed every entry. */
static inline bool keytab_done(const struct keytab *kt, size_t pos)
{
	return pos >= kt->arena_len;
}

/* Empties the table. If it was far larger than its peak since the last
 * clear, it shrinks, so memory follows the working set after a flood. */
void keytab_clear(struct keytab *kt);

/* Bytes the table holds from the allocator. */
size_t keytab_memory(const struct keytab *kt);

#endif
