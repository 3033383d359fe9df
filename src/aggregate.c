/* aggregate.c - the merge rules of docs/protocol.md section 12.2. */
#include "aggregate.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <string.h>

int agg_table_init(struct agg_table *t, const struct agg_limits *lim)
{
	t->lim = *lim;
	if (keytab_init(&t->kt, sizeof(struct agg_value), lim->max_key_bytes) != 0)
		return -ENOMEM;
	/* Names are fewer than series and shorter than ids: the ids' bound
	 * covers them. */
	if (keytab_init(&t->names, sizeof(uint64_t), lim->max_key_bytes) != 0) {
		keytab_deinit(&t->kt);
		return -ENOMEM;
	}
	return 0;
}

void agg_table_deinit(struct agg_table *t)
{
	keytab_deinit(&t->kt);
	keytab_deinit(&t->names);
}

void agg_table_set_limits(struct agg_table *t, const struct agg_limits *lim)
{
	t->lim = *lim;
	t->kt.key_limit = lim->max_key_bytes;
	t->names.key_limit = lim->max_key_bytes;
}

/* With a per-name budget, counts one more key for s's name, or refuses. */
static enum reject_reason charge_name(struct agg_table *t, const struct sample *s)
{
	uint64_t h = keytab_hash('N', s->id, s->name_len);
	struct keytab_entry *e = keytab_find(&t->names, h, 'N', s->id, s->name_len);

	if (!e && keytab_insert(&t->names, h, 'N', s->id, s->name_len, &e) != 0)
		return REJECT_SERIES_LIMIT;
	uint64_t *n = keytab_val(e);
	if (*n >= t->lim.max_per_name)
		return REJECT_NAME_LIMIT;
	(*n)++;
	return REJECT_NONE;
}

static void refund_name(struct agg_table *t, const struct sample *s)
{
	uint64_t h = keytab_hash('N', s->id, s->name_len);
	struct keytab_entry *e = keytab_find(&t->names, h, 'N', s->id, s->name_len);

	if (e)
		(*(uint64_t *)keytab_val(e))--;
}

/* Ids are short and few (the limit defaults to 1000); bound the bytes
 * generously rather than by a second setting. */
#define AGES_KEY_LIMIT ((size_t)1 << 30)

int agg_ages_init(struct agg_ages *a, size_t limit)
{
	a->limit = limit;
	a->remote_limit = 0;
	a->remote_known = false;
	a->epoch = 1;
	a->mark_epoch = 1;
	return keytab_init(&a->kt, sizeof(uint64_t), AGES_KEY_LIMIT) != 0 ? -ENOMEM : 0;
}

void agg_ages_deinit(struct agg_ages *a)
{
	keytab_deinit(&a->kt);
}

static void merge(enum meter_type type, struct agg_value *v, const struct sample *s, double now)
{
	switch (type) {
	case METER_COUNTER:
		v->v.d += s->v.d;
		break;
	case METER_MAX:
		if (s->v.d > v->v.d)
			v->v.d = s->v.d;
		break;
	case METER_GAUGE:
		v->v.d = s->v.d;
		if (s->has_extra)
			v->ttl = s->extra;
		break;
	case METER_AGE:
		/* spectatord would stamp its own receive time; stamping ours, as
		 * explicit epoch seconds, keeps the age exact despite the window. */
		v->v.d = s->v.d == 0 ? now : s->v.d;
		break;
	case METER_MONO:
		v->v.d = s->v.d;
		break;
	case METER_MONO_U64:
		v->v.u = s->v.u;
		break;
	default:
		assert(!"pass-through types are never merged");
	}
}

/* The first line of a key starts from what an empty meter holds. */
static void start(enum meter_type type, struct agg_value *v)
{
	if (type == METER_MAX)
		v->v.d = -DBL_MAX;
}

uint64_t agg_key_hash(const struct sample *s)
{
	return keytab_hash((uint8_t)meter_symbol[s->type], s->id, s->id_len);
}

/* An age gauge id goes through the set: known ids pass, new ones take a
 * slot while there is one; either way the id is stamped with this window.
 * Returns whether it may be forwarded, and sets *added when it took a slot. */
static bool admit_age(struct agg_ages *ages, uint64_t h, const struct sample *s, bool *added)
{
	struct keytab_entry *ae = keytab_find(&ages->kt, h, 'A', s->id, s->id_len);

	*added = false;
	if (!ae) {
		if (ages->kt.count >= agg_ages_limit(ages) ||
		    keytab_insert(&ages->kt, h, 'A', s->id, s->id_len, &ae) != 0)
			return false;
		*added = true;
	}
	*(uint64_t *)keytab_val(ae) = ages->epoch;
	return true;
}

enum reject_reason agg_table_record(struct agg_table *t, struct agg_ages *ages,
				    const struct sample *s, double now)
{
	uint8_t kind = (uint8_t)meter_symbol[s->type];
	uint64_t h = s->hash ? s->hash : agg_key_hash(s);
	struct keytab_entry *e = keytab_find(&t->kt, h, kind, s->id, s->id_len);
	bool new_age = false;

	if (!e) {
		if (t->kt.count >= t->lim.max_series)
			return REJECT_SERIES_LIMIT;
		if (t->lim.max_per_name) {
			enum reject_reason r = charge_name(t, s);
			if (r != REJECT_NONE)
				return r;
		}
		if (s->type == METER_AGE && !admit_age(ages, h, s, &new_age)) {
			if (t->lim.max_per_name)
				refund_name(t, s);
			return REJECT_AGE_GAUGE_LIMIT;
		}
		if (keytab_insert(&t->kt, h, kind, s->id, s->id_len, &e) != 0) {
			if (new_age)
				keytab_remove(&ages->kt, h, kind, s->id, s->id_len);
			if (t->lim.max_per_name)
				refund_name(t, s);
			return REJECT_SERIES_LIMIT;
		}
		start(s->type, keytab_val(e));
	} else if (s->type == METER_AGE && !admit_age(ages, h, s, &new_age)) {
		/* Forgotten (forget-age-gauge) while in this window: it must
		 * take a slot again before it is forwarded again. */
		return REJECT_AGE_GAUGE_LIMIT;
	}
	merge(s->type, keytab_val(e), s, now);
	return REJECT_NONE;
}

static enum meter_type entry_type(const struct keytab_entry *e)
{
	return (enum meter_type)meter_from_symbol(e->kind);
}

void agg_table_clear(struct agg_table *t)
{
	keytab_clear(&t->kt);
	keytab_clear(&t->names);
}

bool agg_entry_emits(const struct keytab_entry *e)
{
	const struct agg_value *v = keytab_val((struct keytab_entry *)e);

	switch (entry_type(e)) {
	case METER_COUNTER:
		return v->v.d != 0;
	case METER_MAX:
		return v->v.d != -DBL_MAX;
	default:
		return true;
	}
}

size_t agg_table_pending(const struct agg_table *t, size_t pos)
{
	size_t n = 0;
	struct keytab_entry *e;

	while ((e = keytab_next(&t->kt, &pos)))
		n += agg_entry_emits(e);
	return n;
}

size_t agg_ages_limit(const struct agg_ages *a)
{
	return a->remote_known ? a->remote_limit : a->limit;
}

size_t agg_ages_count(const struct agg_ages *a)
{
	return a->kt.count;
}

bool agg_ages_contains(const struct agg_ages *a, const char *id, size_t len)
{
	return keytab_find(&a->kt, keytab_hash('A', id, len), 'A', id, len) != NULL;
}

int agg_ages_forget(struct agg_ages *a, const char *id, size_t len)
{
	return keytab_remove(&a->kt, keytab_hash('A', id, len), 'A', id, len);
}

void agg_ages_forget_all(struct agg_ages *a)
{
	keytab_clear(&a->kt);
}

void agg_ages_mark(struct agg_ages *a)
{
	a->mark_epoch = a->epoch;
}

/* Windows before the mark whose lines may not have reached SpectatorD when
 * it answers: the one being delivered at the mark, and the one before it,
 * whose last datagrams may still sit in a socket buffer or in SpectatorD's
 * queue. (The open window at the mark, and later ones, are newer still.) */
#define AGES_IN_FLIGHT_WINDOWS 2

int agg_ages_replace(struct agg_ages *a, const struct agg_id *ids, size_t n)
{
	struct keytab fresh;
	struct keytab_entry *e, *f;
	size_t pos = 0;

	if (keytab_init(&fresh, sizeof(uint64_t), AGES_KEY_LIMIT) != 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = keytab_hash('A', ids[i].id, ids[i].len);
		if (!keytab_find(&fresh, h, 'A', ids[i].id, ids[i].len) &&
		    keytab_insert(&fresh, h, 'A', ids[i].id, ids[i].len, &f) != 0)
			goto fail; /* stamped 0: only SpectatorD has sent it */
	}
	/* Ours stay when SpectatorD has them too, or when they may still be on
	 * their way there; their stamps carry over. */
	while ((e = keytab_next(&a->kt, &pos))) {
		uint64_t seen = *(uint64_t *)keytab_val(e);
		const char *id = keytab_key(&a->kt, e);
		uint64_t h = keytab_hash('A', id, e->key_len);
		bool in_flight = seen && seen + AGES_IN_FLIGHT_WINDOWS >= a->mark_epoch;
		f = keytab_find(&fresh, h, 'A', id, e->key_len);
		if (!f && in_flight && keytab_insert(&fresh, h, 'A', id, e->key_len, &f) != 0)
			goto fail;
		if (f)
			*(uint64_t *)keytab_val(f) = seen;
	}
	keytab_deinit(&a->kt);
	a->kt = fresh;
	return 0;
fail:
	keytab_deinit(&fresh);
	return -ENOMEM;
}
