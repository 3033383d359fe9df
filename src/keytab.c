/* keytab.c - open addressing over records in one arena. See keytab.h. */
#include "keytab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MIN_SLOTS 64u
#define MIN_ARENA 4096u
#define SLOT_TAG(h) ((h) & 0xffffffff00000000ull)
#define SLOT_OFF(s) ((size_t)((uint32_t)(s)-1) * 8)

uint64_t keytab_hash(uint8_t kind, const char *key, size_t len)
{
	return XXH3_64bits_withSeed(key, len, kind);
}

static inline size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static inline struct keytab_entry *at(const struct keytab *kt, size_t off)
{
	return (struct keytab_entry *)(void *)(kt->arena + off);
}

static inline size_t rec_size(const struct keytab *kt, const struct keytab_entry *e)
{
	return sizeof(*e) + kt->val_size + round8(e->key_len);
}

static int alloc_slots(struct keytab *kt, size_t n)
{
	uint64_t *s = calloc(n, sizeof(*s));

	if (!s)
		return -ENOMEM;
	free(kt->slots);
	kt->slots = s;
	kt->mask = n - 1;
	return 0;
}

/* Offsets are stored divided by 8 in 32 bits. */
#define MAX_ARENA ((size_t)UINT32_MAX * 8)

int keytab_init(struct keytab *kt, size_t val_size, size_t key_limit)
{
	memset(kt, 0, sizeof(*kt));
	kt->val_size = round8(val_size);
	kt->key_limit = key_limit;
	return alloc_slots(kt, MIN_SLOTS);
}

void keytab_deinit(struct keytab *kt)
{
	free(kt->slots);
	free(kt->arena);
	memset(kt, 0, sizeof(*kt));
}

static inline bool matches(const struct keytab *kt, const struct keytab_entry *e, uint8_t kind,
			   const char *key, size_t len)
{
	return e->key_len == len && e->kind == kind && memcmp(keytab_key(kt, e), key, len) == 0;
}

/* Index of the slot holding the key, or of the empty slot where it would go. */
static size_t probe(const struct keytab *kt, uint64_t hash, uint8_t kind, const char *key,
		    size_t len)
{
	size_t i = hash & kt->mask;
	uint64_t tag = SLOT_TAG(hash);

	for (;; i = (i + 1) & kt->mask) {
		uint64_t s = kt->slots[i];
		if (s == 0 || (SLOT_TAG(s) == tag && matches(kt, at(kt, SLOT_OFF(s)), kind, key, len)))
			return i;
	}
}

struct keytab_entry *keytab_find(const struct keytab *kt, uint64_t hash, uint8_t kind,
				 const char *key, size_t len)
{
	uint64_t s = kt->slots[probe(kt, hash, kind, key, len)];

	return s ? at(kt, SLOT_OFF(s)) : NULL;
}

static void place(struct keytab *kt, uint64_t hash, size_t off)
{
	size_t i = hash & kt->mask;

	while (kt->slots[i] != 0)
		i = (i + 1) & kt->mask;
	kt->slots[i] = SLOT_TAG(hash) | (uint64_t)(off / 8 + 1);
}

static uint64_t hash_of(const struct keytab *kt, const struct keytab_entry *e)
{
	return keytab_hash(e->kind, keytab_key(kt, e), e->key_len);
}

static int rehash(struct keytab *kt, size_t nslots)
{
	if (alloc_slots(kt, nslots) != 0)
		return -ENOMEM;
	for (size_t off = 0; off < kt->arena_len;) {
		struct keytab_entry *e = at(kt, off);
		if (!e->dead)
			place(kt, hash_of(kt, e), off);
		off += rec_size(kt, e);
	}
	return 0;
}

int keytab_insert(struct keytab *kt, uint64_t hash, uint8_t kind, const char *key, size_t len,
		  struct keytab_entry **out)
{
	size_t size = sizeof(struct keytab_entry) + kt->val_size + round8(len);
	size_t need = kt->arena_len + size;

	if (kt->key_bytes + len > kt->key_limit || need > MAX_ARENA)
		return -ENOSPC;
	if (need > kt->arena_cap) {
		size_t cap = kt->arena_cap ? kt->arena_cap : MIN_ARENA;
		while (cap < need)
			cap *= 2;
		char *a = realloc(kt->arena, cap);
		if (!a)
			return -ENOMEM;
		kt->arena = a;
		kt->arena_cap = cap;
	}
	/* Keep the load at or below one half: short probes. */
	if ((kt->count + 1) * 2 > kt->mask + 1 && rehash(kt, (kt->mask + 1) * 2) != 0)
		return -ENOMEM;

	struct keytab_entry *e = at(kt, kt->arena_len);
	memset(e, 0, size);
	e->key_len = (uint32_t)len;
	e->kind = kind;
	memcpy((char *)(e + 1) + kt->val_size, key, len);
	place(kt, hash, kt->arena_len);
	kt->arena_len = need;
	kt->key_bytes += len;
	kt->count++;
	if (kt->count > kt->peak)
		kt->peak = kt->count;
	*out = e;
	return 0;
}

/* Copies the live records to the front of a new arena, then re-slots them. */
static void compact(struct keytab *kt)
{
	char *fresh = malloc(kt->arena_cap);
	size_t len = 0;

	if (!fresh)
		return; /* keep the holes; correctness does not depend on this */
	for (size_t off = 0; off < kt->arena_len;) {
		struct keytab_entry *e = at(kt, off);
		size_t size = rec_size(kt, e);
		if (!e->dead) {
			memcpy(fresh + len, e, size);
			len += size;
		}
		off += size;
	}
	free(kt->arena);
	kt->arena = fresh;
	kt->arena_len = len;
	kt->dead_bytes = 0;
	if (rehash(kt, kt->mask + 1) != 0) {
		/* Slots are gone but records are intact: rebuild in place. */
		memset(kt->slots, 0, (kt->mask + 1) * sizeof(*kt->slots));
		for (size_t off = 0; off < kt->arena_len; off += rec_size(kt, at(kt, off)))
			place(kt, hash_of(kt, at(kt, off)), off);
	}
}

int keytab_remove(struct keytab *kt, uint64_t hash, uint8_t kind, const char *key, size_t len)
{
	size_t i = probe(kt, hash, kind, key, len);

	if (kt->slots[i] == 0)
		return -ENOENT;
	struct keytab_entry *victim = at(kt, SLOT_OFF(kt->slots[i]));
	victim->dead = 1;
	kt->dead_bytes += rec_size(kt, victim);
	kt->key_bytes -= victim->key_len;
	kt->count--;

	/* Backward-shift deletion keeps every probe chain unbroken. */
	kt->slots[i] = 0;
	for (size_t j = (i + 1) & kt->mask; kt->slots[j] != 0; j = (j + 1) & kt->mask) {
		uint64_t s = kt->slots[j];
		size_t home = hash_of(kt, at(kt, SLOT_OFF(s))) & kt->mask;
		/* Move s into the hole unless its home lies cyclically in (i, j]. */
		if (((j - home) & kt->mask) >= ((j - i) & kt->mask)) {
			kt->slots[i] = s;
			kt->slots[j] = 0;
			i = j;
		}
	}
	/* Removals are rare (forgotten age gauges); reclaim their bytes once
	 * they are half the arena. */
	if (kt->dead_bytes > kt->arena_len / 2 && kt->arena_len > MIN_ARENA)
		compact(kt);
	return 0;
}

struct keytab_entry *keytab_next(const struct keytab *kt, size_t *pos)
{
	while (*pos < kt->arena_len) {
		struct keytab_entry *e = at(kt, *pos);
		*pos += rec_size(kt, e);
		if (!e->dead)
			return e;
	}
	return NULL;
}

void keytab_clear(struct keytab *kt)
{
	size_t want = MIN_SLOTS;

	while (want < kt->peak * 2)
		want *= 2;
	/* Shrink only when far above the need, so that a steady working set
	 * never reallocates; memory then follows the working set after a
	 * flood. A failed shrink keeps the old block. */
	if (!(kt->mask + 1 > want * 4 && alloc_slots(kt, want) == 0))
		memset(kt->slots, 0, (kt->mask + 1) * sizeof(*kt->slots));
	size_t acap = kt->arena_len * 2 > MIN_ARENA ? kt->arena_len * 2 : MIN_ARENA;
	if (kt->arena_cap > acap * 2) {
		void *a = realloc(kt->arena, acap);
		if (a) {
			kt->arena = a;
			kt->arena_cap = acap;
		}
	}
	kt->count = 0;
	kt->arena_len = 0;
	kt->key_bytes = 0;
	kt->dead_bytes = 0;
	kt->peak = 0;
}

size_t keytab_memory(const struct keytab *kt)
{
	return (kt->mask + 1) * sizeof(*kt->slots) + kt->arena_cap;
}
