/* top.c - see top.h. */
#include "top.h"

#include <stdlib.h>
#include <string.h>

void top_sketch_clear(struct top_sketch *k)
{
	k->n = 0;
	k->last = 0;
}

void top_sketch_add(struct top_sketch *k, uint8_t kind, const char *id, size_t len, uint64_t hash)
{
	uint64_t h = hash ? hash : keytab_hash(kind, id, len);
	size_t slot = k->last;

	/* A flood is one id over and over: its entry is the last one. */
	if (slot < k->n && k->hash[slot] == h && k->kind[slot] == kind) {
		k->lines[slot]++;
		return;
	}
	for (slot = 0; slot < k->n; slot++)
		if (k->hash[slot] == h && k->kind[slot] == kind)
			break;
	if (slot < k->n) {
		k->lines[slot]++;
		k->last = slot;
		return;
	}
	uint64_t inherited = 0;
	if (k->n < TOP_SKETCH) {
		slot = k->n++;
	} else {
		slot = 0;
		for (size_t i = 1; i < k->n; i++)
			if (k->lines[i] < k->lines[slot])
				slot = i;
		inherited = k->lines[slot];
	}
	k->hash[slot] = h;
	k->kind[slot] = kind;
	k->lines[slot] = inherited + 1;
	k->id[slot].len = (uint16_t)(len < TOP_ID_MAX ? len : TOP_ID_MAX);
	memcpy(k->id[slot].id, id, k->id[slot].len);
	k->last = slot;
}

/* A bounded min-heap of the heaviest entries seen so far. */
struct heap {
	struct top_entry *e;
	size_t n, cap;
};

static void sift_down(struct heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && h->e[l].lines < h->e[m].lines)
			m = l;
		if (r < h->n && h->e[r].lines < h->e[m].lines)
			m = r;
		if (m == i)
			return;
		struct top_entry t = h->e[i];
		h->e[i] = h->e[m];
		h->e[m] = t;
		i = m;
	}
}

static void offer(struct heap *h, const struct top_entry *x)
{
	if (h->n < h->cap) {
		size_t i = h->n++;
		h->e[i] = *x;
		while (i > 0 && h->e[(i - 1) / 2].lines > h->e[i].lines) {
			struct top_entry t = h->e[i];
			h->e[i] = h->e[(i - 1) / 2];
			h->e[(i - 1) / 2] = t;
			i = (i - 1) / 2;
		}
	} else if (h->cap && x->lines > h->e[0].lines) {
		h->e[0] = *x;
		sift_down(h, 0);
	}
}

static uint64_t entry_lines(int part, struct keytab_entry *e)
{
	return part ? ((const struct agg_dist *)keytab_val(e))->n
		    : ((const struct agg_value *)keytab_val(e))->lines;
}

/* Lines the series of this kind and id has in t, 0 if none. */
static uint64_t lines_in(const struct agg_table *t, int part, uint8_t kind, const char *id,
			 size_t len)
{
	const struct keytab *kt = part ? &t->dt : &t->kt;
	struct keytab_entry *e = keytab_find(kt, keytab_hash(kind, id, len), kind, id, len);

	return e ? entry_lines(part, e) : 0;
}

/* Every series of t, with its lines in other added; those other also has
 * are left out when skip_shared (they were offered from other). */
static void offer_series(struct heap *h, const struct agg_table *t, const struct agg_table *other,
			 bool skip_shared)
{
	for (int part = 0; part < 2; part++) {
		const struct keytab *kt = part ? &t->dt : &t->kt;
		size_t pos = 0;
		struct keytab_entry *e;
		while ((e = keytab_next(kt, &pos))) {
			const char *id = keytab_key(kt, e);
			uint64_t shared = lines_in(other, part, e->kind, id, e->key_len);
			struct top_entry x = { e->kind, true, entry_lines(part, e) + shared, id,
					       e->key_len };
			if (!(skip_shared && shared) && x.lines)
				offer(h, &x);
		}
	}
}

static int heavier_first(const void *a, const void *b)
{
	const struct top_entry *x = a, *y = b;

	return (x->lines < y->lines) - (x->lines > y->lines);
}

size_t top_collect(const struct agg_table *const tables[2], const struct top_sketch *const sketches[2],
		   struct top_entry *out, size_t n)
{
	struct heap h = { out, 0, n < TOP_MAX ? n : TOP_MAX };

	offer_series(&h, tables[0], tables[1], false);
	offer_series(&h, tables[1], tables[0], true);
	/* Lines forwarded as they came: the two sketches, an id in both once. */
	for (int w = 0; w < 2; w++) {
		const struct top_sketch *k = sketches[w], *o = sketches[w ^ 1];
		for (size_t i = 0; i < k->n; i++) {
			struct top_entry x = { k->kind[i], false, k->lines[i], k->id[i].id,
					       k->id[i].len };
			bool shared = false;
			for (size_t j = 0; j < o->n && !shared; j++) {
				if (o->hash[j] == k->hash[i] && o->kind[j] == k->kind[i]) {
					shared = true;
					x.lines += o->lines[j];
				}
			}
			if (!(shared && w == 1))
				offer(&h, &x);
		}
	}
	qsort(out, h.n, sizeof(*out), heavier_first);
	return h.n;
}
