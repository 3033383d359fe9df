/* aggregate.c - the merge rules of docs/protocol.md section 12.2. */
#include "aggregate.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "numfmt.h"
#include "percentile.h"

int agg_table_init(struct agg_table *t, const struct agg_limits *lim)
{
	t->lim = *lim;
	blocks_init(&t->blocks, lim->max_key_bytes);
	if (keytab_init(&t->kt, sizeof(struct agg_value), lim->max_key_bytes) != 0)
		return -ENOMEM;
	if (keytab_init(&t->dt, sizeof(struct agg_dist), lim->max_key_bytes) != 0) {
		keytab_deinit(&t->kt);
		return -ENOMEM;
	}
	/* Names are fewer than series and shorter than ids: the ids' bound
	 * covers them. */
	if (keytab_init(&t->names, sizeof(uint64_t), lim->max_key_bytes) != 0) {
		keytab_deinit(&t->kt);
		keytab_deinit(&t->dt);
		return -ENOMEM;
	}
	return 0;
}

void agg_table_deinit(struct agg_table *t)
{
	keytab_deinit(&t->kt);
	keytab_deinit(&t->dt);
	keytab_deinit(&t->names);
	blocks_deinit(&t->blocks);
}

void agg_table_set_limits(struct agg_table *t, const struct agg_limits *lim)
{
	t->lim = *lim;
	t->kt.key_limit = lim->max_key_bytes;
	t->dt.key_limit = lim->max_key_bytes;
	t->names.key_limit = lim->max_key_bytes;
	blocks_set_limit(&t->blocks, lim->max_key_bytes);
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
		assert(!"distribution and X lines are not scalar");
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

/* Room for one more key, within the limits the two tables share. */
static bool room_for(const struct agg_table *t, const struct sample *s)
{
	return agg_table_count(t) < t->lim.max_series &&
	       t->kt.key_bytes + t->dt.key_bytes + s->id_len <= t->lim.max_key_bytes;
}

/* Whether a line of this id with this value and TTL fits max_line. Formats
 * nothing unless the id is within a line's widest overhead of the limit,
 * which only long ids are. */
static bool line_fits(const struct agg_table *t, const struct sample *s, double value, int64_t ttl)
{
	char num[NUMFMT_MAX], ext[NUMFMT_MAX];

	if (metric_line_len(s->id_len, NUMFMT_I64_MAX, NUMFMT_DOUBLE_MAX) <= t->lim.max_line)
		return true;
	return metric_line_len(s->id_len, ttl ? numfmt_i64(ext, ttl) : 0, numfmt_double(num, value)) <=
	       t->lim.max_line;
}

static enum reject_reason record_scalar(struct agg_table *t, struct agg_ages *ages,
					const struct sample *s, double now,
					struct agg_outcome *out)
{
	uint8_t kind = (uint8_t)meter_symbol[s->type];
	uint64_t h = s->hash ? s->hash : agg_key_hash(s);
	struct keytab_entry *e = keytab_find(&t->kt, h, kind, s->id, s->id_len);
	bool new_age = false;

	if (!e) {
		if (!room_for(t, s))
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
	struct agg_value *v = keytab_val(e);
	if (s->type == METER_COUNTER &&
	    (isinf(v->v.d + s->v.d) || !line_fits(t, s, v->v.d + s->v.d, 0))) {
		/* The sum's line cannot be sent: spectatord's own sum would
		 * overflow too, but a line saying "inf" is one the relay itself
		 * refuses; or the sum's text is too long. Forwarded alone, the
		 * line keeps the window's sum as it was, and spectatord adds the
		 * two as it would have added the lines. */
		out->forward = true;
		return REJECT_NONE;
	}
	if (s->type == METER_GAUGE && !s->has_extra && v->ttl != 0 &&
	    !line_fits(t, s, s->v.d, v->ttl)) {
		/* One line cannot carry an earlier line's TTL with this value:
		 * the series as it stood goes first, then this line starts it
		 * again. spectatord sees the TTL, then the value, as it would
		 * have. */
		out->split = true;
		out->old = *v;
		uint64_t lines = v->lines;
		memset(v, 0, sizeof(*v));
		v->lines = lines;
	}
	merge(s->type, v, s, now);
	v->lines++;
	return REJECT_NONE;
}

/* ------------------------------------------------------------------------
 * Distribution series (docs/protocol.md 12.9)
 * ------------------------------------------------------------------------ */

#define BUCKET_MASK (((uint64_t)1 << AGG_BUCKET_SHIFT) - 1)
#define BUCKET_ONE ((uint64_t)1 << AGG_BUCKET_SHIFT)
/* Forwarding the samples takes n lines; the statistics take at most 4 plus
 * one per bucket. n - nbuckets never falls, so once it passes this, the
 * samples are never needed again. */
#define KEEP_BEYOND_BUCKETS 4

static bool is_timer(enum meter_type t)
{
	return t == METER_TIMER || t == METER_PCT_TIMER;
}

/* spectatord's conversions: t and T in whole nanoseconds, truncated; D to
 * int64. The parser has refused every value these would overflow. */
static int64_t sample_ns(double v)
{
	return (int64_t)(v * 1e9);
}

static double sample_x(enum meter_type t, double v)
{
	if (is_timer(t))
		return (double)sample_ns(v);
	return t == METER_PCT_DIST ? (double)(int64_t)v : v;
}

/* The bucket a T or D sample counts in. */
static size_t sample_bucket(enum meter_type t, double v)
{
	if (t == METER_PCT_DIST)
		return pct_bucket_index((int64_t)v);
	int64_t ns = sample_ns(v);
	if (ns < PCT_TIMER_MIN_NS)
		ns = PCT_TIMER_MIN_NS;
	else if (ns > PCT_TIMER_MAX_NS)
		ns = PCT_TIMER_MAX_NS;
	return pct_bucket_index(ns);
}

/* Moves a block to the next size class up (or gives a first one). Returns
 * false, changing nothing, when there is no room. */
static bool grow_block(struct blocks *b, uint32_t *off, uint8_t *cls, size_t used)
{
	unsigned next = *off == BLOCKS_NONE ? 0 : *cls + 1u;

	if (next >= BLOCKS_CLASSES)
		return false;
	uint32_t fresh = blocks_alloc(b, next);
	if (fresh == BLOCKS_NONE)
		return false;
	if (*off != BLOCKS_NONE) {
		memcpy(blocks_at(b, fresh), blocks_at(b, *off), used * sizeof(uint64_t));
		blocks_free(b, *off, *cls);
	}
	*off = fresh;
	*cls = (uint8_t)next;
	return true;
}

/* Counts one sample in bucket i. The buckets are few (a series' latencies
 * spread over a dozen or a few dozen): a binary search, and an insertion when
 * the bucket is new. Returns false, changing nothing, when there is no room.
 *
 * The search is branch-free (a conditional move per step, Khuong and Morin's
 * lower bound): with samples spread over the buckets, each comparison of a
 * branching search goes either way at random, and its mispredictions cost
 * more than the rest of a T line's merge (bench/bench_core --profile T). */
static bool count_bucket(struct agg_table *t, struct agg_dist *d, size_t i)
{
	uint64_t *b = d->buckets == BLOCKS_NONE ? NULL : blocks_at(&t->blocks, d->buckets);
	size_t lo = 0;

	if (d->nbuckets > 0) {
		/* The first index >= i lies in [base, base + n]. */
		const uint64_t *base = b;
		size_t n = d->nbuckets;
		while (n > 1) {
			size_t half = n / 2;
			base = (base[half] & BUCKET_MASK) < i ? base + half : base;
			n -= half;
		}
		lo = (size_t)(base - b) + ((base[0] & BUCKET_MASK) < i);
	}
	if (lo < d->nbuckets && (b[lo] & BUCKET_MASK) == i) {
		b[lo] += BUCKET_ONE;
		return true;
	}
	if ((d->buckets == BLOCKS_NONE || d->nbuckets == blocks_size(d->bclass)) &&
	    !grow_block(&t->blocks, &d->buckets, &d->bclass, d->nbuckets))
		return false;
	b = blocks_at(&t->blocks, d->buckets);
	memmove(b + lo + 1, b + lo, (d->nbuckets - lo) * sizeof(*b));
	b[lo] = BUCKET_ONE | i;
	d->nbuckets++;
	return true;
}

static void drop_samples(struct agg_table *t, struct agg_dist *d)
{
	blocks_free(&t->blocks, d->kept, d->kclass);
	d->kept = BLOCKS_NONE;
	d->nkept = 0;
	d->dropped = true;
}

/* Keeps v while forwarding the samples could still be the shorter form.
 * Without room the statistics are forwarded instead: longer, as exact. */
static void keep_sample(struct agg_table *t, struct agg_dist *d, double v)
{
	if (d->dropped)
		return;
	if (d->n - d->nbuckets > KEEP_BEYOND_BUCKETS) {
		drop_samples(t, d);
		return;
	}
	if ((d->kept == BLOCKS_NONE || d->nkept == blocks_size(d->kclass)) &&
	    !grow_block(&t->blocks, &d->kept, &d->kclass, d->nkept)) {
		drop_samples(t, d);
		return;
	}
	memcpy(blocks_at(&t->blocks, d->kept) + d->nkept++, &v, sizeof(v));
}

/* Adds one sample to the statistics, as spectatord's meter would. Returns
 * false, changing nothing, when the sample cannot be merged exactly: a total
 * would leave what spectatord's own arithmetic holds (an int64 of ns, a
 * finite double), or the bucket has no room. */
static bool merge_dist(struct agg_table *t, struct agg_dist *d, enum meter_type type, double v)
{
	double x = sample_x(type, v);
	double sq = d->sumsq + x * x;

	if (!isfinite(sq))
		return false;
	if (is_timer(type) ? sample_ns(v) > INT64_MAX - d->sum.ns : !isfinite(d->sum.d + x))
		return false;
	if ((type == METER_PCT_TIMER || type == METER_PCT_DIST) &&
	    !count_bucket(t, d, sample_bucket(type, v)))
		return false;
	if (d->n == 0)
		d->first = v;
	d->n++;
	d->sumsq = sq;
	if (is_timer(type)) {
		int64_t ns = sample_ns(v);
		d->sum.ns += ns;
		if (ns > d->max.ns)
			d->max.ns = ns;
	} else {
		d->sum.d += x;
		if (x > d->max.d)
			d->max.d = x;
	}
	keep_sample(t, d, v);
	return true;
}

static enum reject_reason record_dist(struct agg_table *t, const struct sample *s,
				      struct agg_outcome *out)
{
	uint8_t kind = (uint8_t)meter_symbol[s->type];
	uint64_t h = s->hash ? s->hash : agg_key_hash(s);
	struct keytab_entry *e = keytab_find(&t->dt, h, kind, s->id, s->id_len);

	if (!e) {
		/* A table that cannot take the series forwards its samples as
		 * they came, as the relay did before it merged them: spectatord
		 * takes each alone, so none is refused. */
		if (!room_for(t, s) ||
		    (t->lim.max_per_name && charge_name(t, s) != REJECT_NONE)) {
			out->forward = true;
			return REJECT_NONE;
		}
		if (keytab_insert(&t->dt, h, kind, s->id, s->id_len, &e) != 0) {
			if (t->lim.max_per_name)
				refund_name(t, s);
			out->forward = true;
			return REJECT_NONE;
		}
		struct agg_dist *d = keytab_val(e);
		d->buckets = d->kept = BLOCKS_NONE;
	}
	if (!merge_dist(t, keytab_val(e), s->type, s->v.d))
		out->forward = true;
	return REJECT_NONE;
}

enum reject_reason agg_table_record(struct agg_table *t, struct agg_ages *ages,
				    const struct sample *s, double now, struct agg_outcome *out)
{
	out->forward = out->split = false;
	assert(s->type != METER_SAMPLED);
	if (agg_is_dist(s->type))
		return record_dist(t, s, out);
	return record_scalar(t, ages, s, now, out);
}

static enum meter_type entry_type(const struct keytab_entry *e)
{
	return (enum meter_type)meter_from_symbol(e->kind);
}

void agg_table_clear(struct agg_table *t)
{
	keytab_clear(&t->kt);
	keytab_clear(&t->dt);
	keytab_clear(&t->names);
	blocks_clear(&t->blocks);
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

/* ------------------------------------------------------------------------
 * A distribution series' lines
 * ------------------------------------------------------------------------ */

/* Slots of the statistics form (agg_plan). */
enum { SLOT_FIRST, SLOT_COUNT, SLOT_TOTAL, SLOT_TOTAL_SQ, SLOT_MAX, SLOT_BUCKETS };

static const struct agg_dist *dist_of(const struct keytab_entry *e)
{
	return keytab_val((struct keytab_entry *)e);
}

static const uint64_t *buckets_of(const struct agg_table *t, const struct agg_dist *d)
{
	return d->buckets == BLOCKS_NONE ? NULL : blocks_at(&t->blocks, d->buckets);
}

/* A statistic slot's line, as spectatord's meter would publish it:
 * timers' totals are seconds, their sum of squares seconds squared. */
static bool stat_slot(const struct agg_table *t, const struct keytab_entry *e,
		      const struct agg_plan *p, size_t i, struct agg_line *out)
{
	const struct agg_dist *d = dist_of(e);
	enum meter_type type = (enum meter_type)meter_from_symbol(e->kind);
	bool timer = is_timer(type);
	double first_x = sample_x(type, d->first);

	out->bucket = 0;
	switch (i) {
	case SLOT_FIRST:
		out->what = AGG_SAMPLE;
		out->value = d->first;
		return p->zero;
	case SLOT_COUNT:
		out->what = AGG_COUNT;
		out->value = (double)(d->n - p->zero);
		break;
	case SLOT_TOTAL:
		out->what = AGG_TOTAL;
		/* Under the zero rule the first sample's meter publishes its own
		 * total. Only d can have one above 0 there (a value whose
		 * square underflows); the difference is within a rounding of
		 * the window's total. */
		if (timer)
			out->value = (double)d->sum.ns / 1e9;
		else
			out->value = p->zero ? d->sum.d - first_x : d->sum.d;
		break;
	case SLOT_TOTAL_SQ:
		out->what = AGG_TOTAL_SQ;
		out->value = timer ? d->sumsq / 1e18 : d->sumsq;
		break;
	case SLOT_MAX:
		out->what = AGG_MAX;
		out->value = timer ? (double)d->max.ns / 1e9 : d->max.d;
		/* The first sample's meter publishes its max; a max no higher
		 * adds nothing. */
		if (p->zero && (timer ? (double)d->max.ns : d->max.d) == first_x)
			return false;
		break;
	default: {
		uint64_t w = buckets_of(t, d)[i - SLOT_BUCKETS];
		out->what = AGG_BUCKET;
		out->bucket = (size_t)(w & BUCKET_MASK);
		out->value = (double)((w >> AGG_BUCKET_SHIFT) -
				      (p->zero && out->bucket == p->first_bucket));
		break;
	}
	}
	return out->value != 0;
}

void agg_dist_plan(const struct agg_table *t, const struct keytab_entry *e, struct agg_plan *p)
{
	const struct agg_dist *d = dist_of(e);
	enum meter_type type = (enum meter_type)meter_from_symbol(e->kind);
	struct agg_line l;

	memset(p, 0, sizeof(*p));
	if (d->n == 0)
		return; /* its one sample was forwarded as it came */
	/* Every term is >= 0, so the sum of squares is 0 only if each is. */
	p->zero = d->sumsq == 0;
	if (p->zero && (type == METER_PCT_TIMER || type == METER_PCT_DIST))
		p->first_bucket = sample_bucket(type, d->first);
	p->slots = SLOT_BUCKETS + d->nbuckets;
	for (size_t i = 0; i < p->slots; i++)
		p->lines += stat_slot(t, e, p, i, &l);
	if (!d->dropped && d->nkept == d->n && d->n <= p->lines) {
		p->samples = true;
		p->slots = p->lines = d->n;
	}
}

bool agg_dist_slot(const struct agg_table *t, const struct keytab_entry *e,
		   const struct agg_plan *p, size_t i, struct agg_line *out)
{
	if (!p->samples)
		return stat_slot(t, e, p, i, out);
	out->what = AGG_SAMPLE;
	out->bucket = 0;
	memcpy(&out->value, blocks_at(&t->blocks, dist_of(e)->kept) + i, sizeof(out->value));
	return true;
}

/* ------------------------------------------------------------------------
 * Cursors
 * ------------------------------------------------------------------------ */

static const struct keytab *part_table(const struct agg_table *t, unsigned part)
{
	return part == 0 ? &t->kt : &t->dt;
}

struct keytab_entry *agg_cursor_entry(const struct agg_table *t, struct agg_cursor *c)
{
	while (c->part < 2) {
		const struct keytab *kt = part_table(t, c->part);
		size_t pos = c->pos;
		struct keytab_entry *e = keytab_next(kt, &pos);
		if (e) {
			c->pos = (size_t)((const char *)e - kt->arena);
			return e;
		}
		c->part++;
		c->pos = 0;
		c->slot = 0;
	}
	return NULL;
}

void agg_cursor_next_entry(const struct agg_table *t, struct agg_cursor *c)
{
	if (c->part < 2)
		keytab_next(part_table(t, c->part), &c->pos);
	c->slot = 0;
}

void agg_cursor_skip_line(const struct agg_table *t, struct agg_cursor *c)
{
	struct keytab_entry *e = agg_cursor_entry(t, c);
	struct agg_plan p;
	struct agg_line l;

	if (!e)
		return;
	if (c->part == 1) {
		agg_dist_plan(t, e, &p);
		while (c->slot < p.slots && !agg_dist_slot(t, e, &p, c->slot, &l))
			c->slot++;
		if (++c->slot < p.slots)
			return;
	}
	agg_cursor_next_entry(t, c);
}

/* Lines of the entry at c from c->slot on. */
static size_t entry_lines_from(const struct agg_table *t, const struct keytab_entry *e,
			       const struct agg_cursor *c)
{
	struct agg_plan p;
	struct agg_line l;
	size_t n = 0;

	if (c->part == 0)
		return c->slot == 0 && agg_entry_emits(e);
	agg_dist_plan(t, e, &p);
	for (size_t i = c->slot; i < p.slots; i++)
		n += agg_dist_slot(t, e, &p, i, &l);
	return n;
}

size_t agg_table_pending(const struct agg_table *t, const struct agg_cursor *from)
{
	struct agg_cursor c = *from;
	struct keytab_entry *e;
	size_t n = 0;

	while ((e = agg_cursor_entry(t, &c))) {
		n += entry_lines_from(t, e, &c);
		agg_cursor_next_entry(t, &c);
	}
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
