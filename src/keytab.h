/* keytab.h - a hash table from byte-string keys to fixed-size records. Pure.
 *
 * Keys are a one-byte kind (the meter type symbol) plus bytes; they are
 * copied into an arena the table owns, so a caller's key may live in a
 * datagram that is about to be reused. Records sit in one dense array in
 * insertion order: iterating a window is a linear walk, and clearing it is
 * O(slots) without a free per key.
 *
 * Slots are open-addressed with linear probing. Each slot packs 32 bits of
 * the hash with the record index, so a probe rarely touches a record whose
 * key does not match. Memory per key: 8-16 bytes of slots, the record, and
 * the key bytes plus one. */
#ifndef RELAY_KEYTAB_H
#define RELAY_KEYTAB_H

#include <stddef.h>
#include <stdint.h>

struct keytab_entry {
	uint32_t key_off; /* into the arena: kind byte, then the key bytes */
	uint32_t key_len; /* key bytes, kind excluded */
	/* followed by the caller's record of keytab.val_size bytes */
};

struct keytab {
	uint64_t *slots;     /* 0 = empty; else hash high bits | (index + 1) */
	size_t mask;         /* slots - 1; slots is a power of two */
	char *entries;       /* stride bytes each */
	size_t count, entries_cap;
	size_t stride;
	char *arena;
	size_t arena_len, arena_cap;
	size_t arena_dead;   /* bytes of removed keys not yet reclaimed */
	size_t arena_limit;  /* bound on key bytes; inserts beyond fail */
	size_t peak;         /* most entries since the last keytab_clear() */
};

/* Hash for a key; both the lookup and the insert take it, so a caller that
 * uses the same key on two tables hashes once. */
uint64_t keytab_hash(uint8_t kind, const char *key, size_t len);

/* val_size: the record that follows each entry (8-byte aligned). arena_limit:
 * the most key bytes the table may hold (inserts then fail with -ENOSPC).
 * Returns 0 or -ENOMEM. */
int keytab_init(struct keytab *kt, size_t val_size, size_t arena_limit);
void keytab_deinit(struct keytab *kt);

static inline struct keytab_entry *keytab_at(const struct keytab *kt, size_t i)
{
	return (struct keytab_entry *)(kt->entries + i * kt->stride);
}

static inline void *keytab_val(struct keytab_entry *e)
{
	return e + 1;
}

static inline uint8_t keytab_kind(const struct keytab *kt, const struct keytab_entry *e)
{
	return (uint8_t)kt->arena[e->key_off];
}

static inline const char *keytab_key(const struct keytab *kt, const struct keytab_entry *e)
{
	return kt->arena + e->key_off + 1;
}

/* Returns the entry for the key, or NULL. The pointer is valid until the next
 * insert, remove or clear. */
struct keytab_entry *keytab_find(const struct keytab *kt, uint64_t hash, uint8_t kind,
				 const char *key, size_t len);

/* Adds a key that keytab_find() did not find; its record starts zeroed.
 * Returns 0 and sets *out, -ENOSPC past arena_limit or 4 GiB of keys, or
 * -ENOMEM. */
int keytab_insert(struct keytab *kt, uint64_t hash, uint8_t kind, const char *key, size_t len,
		  struct keytab_entry **out);

/* Removes a key. The last entry moves into its place, so removing while
 * iterating by index must revisit the index. Returns 0 or -ENOENT. */
int keytab_remove(struct keytab *kt, uint64_t hash, uint8_t kind, const char *key, size_t len);

/* Empties the table. If it was far larger than its peak since the last
 * clear, it shrinks, so memory follows the working set after a flood. */
void keytab_clear(struct keytab *kt);

/* Bytes the table holds from the allocator. */
size_t keytab_memory(const struct keytab *kt);

#endif
