/* keytab.c - open addressing over a dense record array. See keytab.h. */
#include "keytab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MIN_SLOTS 64u
#define MIN_ARENA 4096u
#define SLOT_INDEX(s) ((uint32_t)(s))
#define SLOT_TAG(h) ((h) & 0xffffffff00000000ull)

uint64_t keytab_hash(uint8_t kind, const char *key, size_t len)
{
	return XXH3_64bits_withSeed(key, len, kind);
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

int keytab_init(struct keytab *kt, size_t val_size, size_t arena_limit)
{
	memset(kt, 0, sizeof(*kt));
	kt->stride = sizeof(struct keytab_entry) + ((val_size + 7) & ~(size_t)7);
	kt->arena_limit = arena_limit < UINT32_MAX ? arena_limit : UINT32_MAX;
	if (alloc_slots(kt, MIN_SLOTS) != 0)
		return -ENOMEM;
	return 0;
}

void keytab_deinit(struct keytab *kt)
{
	free(kt->slots);
	free(kt->entries);
	free(kt->arena);
	memset(kt, 0, sizeof(*kt));
}

static inline uint64_t hash_of(const struct keytab *kt, const struct keytab_entry *e)
{
	return keytab_hash(keytab_kind(kt, e), keytab_key(kt, e), e->key_len);
}

/* Index of the slot holding the key, or of the empty slot where it would go. */
static size_t probe(const struct keytab *kt, uint64_t hash, uint8_t kind, const char *key,
		    size_t len)
{
	size_t i = hash & kt->mask;
	uint64_t tag = SLOT_TAG(hash);

	for (;; i = (i + 1) & kt->mask) {
		uint64_t s = kt->slots[i];
		if (s == 0)
			return i;
		if (SLOT_TAG(s) != tag)
			continue;
		const struct keytab_entry *e = keytab_at(kt, SLOT_INDEX(s) - 1);
		if (e->key_len == len && (uint8_t)kt->arena[e->key_off] == kind &&
		    memcmp(kt->arena + e->key_off + 1, key, len) == 0)
			return i;
	}
}

struct keytab_entry *keytab_find(const struct keytab *kt, uint64_t hash, uint8_t kind,
				 const char *key, size_t len)
{
	uint64_t s = kt->slots[probe(kt, hash, kind, key, len)];

	return s ? keytab_at(kt, SLOT_INDEX(s) - 1) : NULL;
}

static void place(struct keytab *kt, uint64_t hash, uint32_t index)
{
	size_t i = hash & kt->mask;

	while (kt->slots[i] != 0)
		i = (i + 1) & kt->mask;
	kt->slots[i] = SLOT_TAG(hash) | (index + 1);
}

static int rehash(struct keytab *kt, size_t nslots)
{
	if (alloc_slots(kt, nslots) != 0)
		return -ENOMEM;
	for (size_t i = 0; i < kt->count; i++)
		place(kt, hash_of(kt, keytab_at(kt, i)), (uint32_t)i);
	return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t unit, size_t min)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : min;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * unit);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int keytab_insert(struct keytab *kt, uint64_t hash, uint8_t kind, const char *key, size_t len,
		  struct keytab_entry **out)
{
	size_t need = kt->arena_len + 1 + len;

	if (need > kt->arena_limit || kt->count >= UINT32_MAX - 1)
		return -ENOSPC;
	/* Keep the load at or below one half: short probes, 16 bytes a key. */
	if ((kt->count + 1) * 2 > kt->mask + 1 && rehash(kt, (kt->mask + 1) * 2) != 0)
		return -ENOMEM;
	if (grow((void **)&kt->entries, &kt->entries_cap, kt->count + 1, kt->stride, 64) != 0 ||
	    grow((void **)&kt->arena, &kt->arena_cap, need, 1, MIN_ARENA) != 0)
		return -ENOMEM;

	struct keytab_entry *e = keytab_at(kt, kt->count);
	e->key_off = (uint32_t)kt->arena_len;
	e->key_len = (uint32_t)len;
	memset(keytab_val(e), 0, kt->stride - sizeof(*e));
	kt->arena[kt->arena_len] = (char)kind;
	memcpy(kt->arena + kt->arena_len + 1, key, len);
	kt->arena_len = need;
	place(kt, hash, (uint32_t)kt->count);
	kt->count++;
	if (kt->count > kt->peak)
		kt->peak = kt->count;
	*out = e;
	return 0;
}

/* Copies the live keys to the front of the arena after removals. */
static void compact_arena(struct keytab *kt)
{
	char *fresh = malloc(kt->arena_cap);
	size_t off = 0;

	if (!fresh)
		return; /* keep the holes; correctness does not depend on this */
	for (size_t i = 0; i < kt->count; i++) {
		struct keytab_entry *e = keytab_at(kt, i);
		memcpy(fresh + off, kt->arena + e->key_off, e->key_len + 1u);
		e->key_off = (uint32_t)off;
		off += e->key_len + 1u;
	}
	free(kt->arena);
	kt->arena = fresh;
	kt->arena_len = off;
	kt->arena_dead = 0;
}

int keytab_remove(struct keytab *kt, uint64_t hash, uint8_t kind, const char *key, size_t len)
{
	size_t i = probe(kt, hash, kind, key, len);

	if (kt->slots[i] == 0)
		return -ENOENT;
	uint32_t victim = SLOT_INDEX(kt->slots[i]) - 1;

	kt->arena_dead += keytab_at(kt, victim)->key_len + 1u;

	/* Backward-shift deletion keeps every probe chain unbroken. */
	kt->slots[i] = 0;
	for (size_t j = (i + 1) & kt->mask; kt->slots[j] != 0; j = (j + 1) & kt->mask) {
		uint64_t s = kt->slots[j];
		size_t home = hash_of(kt, keytab_at(kt, SLOT_INDEX(s) - 1)) & kt->mask;
		/* Move s into the hole unless its home lies cyclically in (i, j]. */
		if (((j - home) & kt->mask) >= ((j - i) & kt->mask)) {
			kt->slots[i] = s;
			kt->slots[j] = 0;
			i = j;
		}
	}

	/* Fill the hole in the dense array with the last record. */
	uint32_t last = (uint32_t)kt->count - 1;
	if (victim != last) {
		struct keytab_entry *le = keytab_at(kt, last);
		size_t k = hash_of(kt, le) & kt->mask;
		while (SLOT_INDEX(kt->slots[k]) != last + 1)
			k = (k + 1) & kt->mask;
		kt->slots[k] = SLOT_TAG(kt->slots[k]) | (victim + 1);
		memcpy(keytab_at(kt, victim), le, kt->stride);
	}
	kt->count--;
	/* Removals are rare (forgotten age gauges); reclaim their key bytes
	 * once they are half the arena. */
	if (kt->arena_dead > kt->arena_len / 2 && kt->arena_len > MIN_ARENA)
		compact_arena(kt);
	return 0;
}

void keytab_clear(struct keytab *kt)
{
	size_t want = MIN_SLOTS;

	while (want < kt->peak * 2)
		want *= 2;
	/* Shrink only when far above the need, so that a steady working set
	 * never reallocates; memory then follows the working set after a flood.
	 * A failed shrink keeps the old block. */
	if (kt->mask + 1 > want * 4 && alloc_slots(kt, want) == 0) {
		size_t ecap = kt->peak > 64 ? kt->peak : 64;
		void *e = realloc(kt->entries, ecap * kt->stride);
		if (e) {
			kt->entries = e;
			kt->entries_cap = ecap;
		}
	} else {
		memset(kt->slots, 0, (kt->mask + 1) * sizeof(*kt->slots));
	}
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
	kt->arena_dead = 0;
	kt->peak = 0;
}

size_t keytab_memory(const struct keytab *kt)
{
	return (kt->mask + 1) * sizeof(*kt->slots) + kt->entries_cap * kt->stride + kt->arena_cap;
}
