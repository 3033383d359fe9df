/* encode.c - the line writer. */
#include "encode.h"

#include <stdio.h>
#include <string.h>

#include "numfmt.h"

static size_t value_text(char *dst, enum meter_type type, double d, uint64_t u)
{
	return type == METER_MONO_U64 ? numfmt_u64(dst, u) : numfmt_double(dst, d);
}

size_t encode_sample_len(const struct sample *s)
{
	char num[NUMFMT_MAX];
	size_t n = 1 + 1 + s->id_len + 1 +
		   (meter_keeps_text(s->type) ? s->num_len
					      : value_text(num, s->type, s->v.d, s->v.u));

	if (s->has_extra)
		n += 1 + numfmt_i64(num, s->extra);
	return n;
}

bool encode_fits(const struct sample *s, size_t max_datagram)
{
	/* A line adds at most ENCODE_LINE_OVERHEAD to its id, but for the text
	 * a client wrote, which can be any length. */
	if (!meter_keeps_text(s->type) && s->id_len + ENCODE_LINE_OVERHEAD <= max_datagram)
		return true;
	if (s->type == METER_AGE && s->v.d == 0)
		return metric_line_len(s->id_len, 0, ENCODE_MAX_VALUE) <= max_datagram;
	return encode_sample_len(s) <= max_datagram;
}

/* Room for a line of n bytes, '\n' included: the last '\n' may go one past
 * the cap (encode.h). */
static inline bool room(const struct packer *pk, size_t n)
{
	return pk->len + n <= pk->cap + 1;
}

/* Writes one line if it fits. The value is the given text, or formatted
 * once into a stack buffer, before anything is committed. */
static bool put_line(struct packer *pk, char sym, bool has_extra, int64_t extra, const char *id,
		     size_t id_len, const char *text, size_t nlen)
{
	char ext[NUMFMT_MAX];
	size_t elen = has_extra ? numfmt_i64(ext, extra) : 0;
	size_t total = 1 + (has_extra ? 1 + elen : 0) + 1 + id_len + 1 + nlen + 1;

	if (!room(pk, total))
		return false;
	char *w = pk->buf + pk->len;
	*w++ = sym;
	if (has_extra) {
		*w++ = ',';
		memcpy(w, ext, elen);
		w += elen;
	}
	*w++ = ':';
	memcpy(w, id, id_len);
	w += id_len;
	*w++ = ':';
	memcpy(w, text, nlen);
	w += nlen;
	*w++ = '\n';
	pk->len += total;
	pk->lines++;
	return true;
}

bool packer_add_sample(struct packer *pk, const struct sample *s)
{
	char num[NUMFMT_MAX];
	const char *text = s->num;
	size_t nlen = s->num_len;

	if (!meter_keeps_text(s->type)) {
		nlen = value_text(num, s->type, s->v.d, s->v.u);
		text = num;
	}
	return put_line(pk, meter_symbol[s->type], s->has_extra, s->extra, s->id, s->id_len, text,
			nlen);
}

/* ------------------------------------------------------------------------
 * Distribution series
 * ------------------------------------------------------------------------ */

/* Bounded appends to one line being written; ok turns false on overflow. */
struct writer {
	char *p, *end;
	bool ok;
};

static void put(struct writer *w, const char *src, size_t n)
{
	if (!w->ok || (size_t)(w->end - w->p) < n) {
		w->ok = false;
		return;
	}
	memcpy(w->p, src, n);
	w->p += n;
}

static void put_tag(struct writer *w, const char *key, size_t klen, const char *val, size_t vlen)
{
	put(w, ",", 1);
	put(w, key, klen);
	put(w, "=", 1);
	put(w, val, vlen);
}

/* A tag the id gets, replacing one of the same key. */
struct forced_tag {
	const char *key, *val;
	size_t klen, vlen;
};

/* Writes id with the forced tags (sorted by key, at most two) merged into
 * its sorted tags, so that the result is canonical: the name, then every tag
 * in ascending key order. A canonical id's bytes never include ',' or '='
 * but as separators. */
static void put_id(struct writer *w, const char *id, size_t len, const struct forced_tag *f,
		   size_t nf)
{
	const char *end = id + len;
	const char *p = memchr(id, ',', len);
	size_t next = 0;

	put(w, id, p ? (size_t)(p - id) : len);
	while (p) {
		const char *key = p + 1;
		const char *eq = memchr(key, '=', (size_t)(end - key));
		const char *stop = memchr(eq, ',', (size_t)(end - eq));
		size_t klen = (size_t)(eq - key);
		int c = 1;
		while (next < nf && (c = tag_key_cmp(f[next].key, f[next].klen, key, klen)) <= 0) {
			put_tag(w, f[next].key, f[next].klen, f[next].val, f[next].vlen);
			next++;
			if (c == 0)
				break; /* the client's tag is replaced */
		}
		if (c != 0)
			put(w, p, stop ? (size_t)(stop - p) : (size_t)(end - p));
		p = stop;
	}
	for (; next < nf; next++)
		put_tag(w, f[next].key, f[next].klen, f[next].val, f[next].vlen);
}

static bool put_dist_line(struct packer *pk, const struct keytab *dt, const struct keytab_entry *e,
			  const struct agg_line *l)
{
	static const char *const stat_name[] = {
		[AGG_COUNT] = "count",       [AGG_TOTAL] = "totalTime",
		[AGG_TOTAL_SQ] = "totalOfSquares", [AGG_MAX] = "max",
		[AGG_BUCKET] = "percentile",
	};
	const char *id = keytab_key(dt, e);
	char num[NUMFMT_MAX];
	size_t nlen = numfmt_double(num, l->value);

	if (l->what == AGG_SAMPLE)
		return put_line(pk, (char)e->kind, false, 0, id, e->key_len, num, nlen);

	bool timer = e->kind == 't' || e->kind == 'T';
	const char *stat = l->what == AGG_TOTAL && !timer ? "totalAmount" : stat_name[l->what];
	char pct[8];
	struct forced_tag tags[2];
	size_t ntags = 0;
	if (l->what == AGG_BUCKET) {
		int n = snprintf(pct, sizeof(pct), "%c%04zX", e->kind, l->bucket);
		tags[ntags++] = (struct forced_tag){ "percentile", pct, 10, (size_t)n };
	}
	tags[ntags++] = (struct forced_tag){ "statistic", stat, 9, strlen(stat) };

	struct writer w = { pk->buf + pk->len, pk->buf + pk->cap + 1, true };
	put(&w, l->what == AGG_MAX ? "m:" : "c:", 2);
	put_id(&w, id, e->key_len, tags, ntags);
	put(&w, ":", 1);
	put(&w, num, nlen);
	put(&w, "\n", 1);
	if (!w.ok)
		return false;
	pk->len = (size_t)(w.p - pk->buf);
	pk->lines++;
	return true;
}

/* ------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------ */

static bool put_scalar(struct packer *pk, const struct keytab *kt, const struct keytab_entry *e)
{
	const struct agg_value *v = keytab_val((struct keytab_entry *)e);
	enum meter_type type = (enum meter_type)meter_from_symbol(e->kind);
	char num[NUMFMT_MAX];
	size_t nlen = value_text(num, type, v->v.d, v->v.u);

	return put_line(pk, (char)e->kind, type == METER_GAUGE && v->ttl != 0, v->ttl,
			keytab_key(kt, e), e->key_len, num, nlen);
}

/* The lines of the distribution series at c, from c->slot on. Returns the
 * lines written, and whether the series ended. */
static size_t add_dist(struct packer *pk, const struct agg_table *t, const struct keytab_entry *e,
		       struct agg_cursor *c, bool *ended)
{
	struct agg_plan plan;
	struct agg_line l;
	size_t len0 = pk->len, lines0 = pk->lines, slot0 = c->slot, n = 0;

	agg_dist_plan(t, e, &plan);
	for (; c->slot < plan.slots; c->slot++) {
		if (!agg_dist_slot(t, e, &plan, c->slot, &l))
			continue;
		if (!put_dist_line(pk, &t->dt, e, &l)) {
			*ended = false;
			if (slot0 == 0 && len0 > 0) {
				/* Start it in the next datagram, whole if it fits. */
				pk->len = len0;
				pk->lines = lines0;
				c->slot = 0;
				return 0;
			}
			return n;
		}
		n++;
	}
	*ended = true;
	return n;
}

size_t packer_add_table(struct packer *pk, const struct agg_table *t, struct agg_cursor *c,
			size_t *dist_lines)
{
	size_t added = 0;
	struct keytab_entry *e;

	*dist_lines = 0;
	while ((e = agg_cursor_entry(t, c))) {
		if (c->part == 0) {
			if (agg_entry_emits(e)) {
				if (!put_scalar(pk, &t->kt, e))
					break;
				added++;
			}
		} else {
			bool ended;
			size_t n = add_dist(pk, t, e, c, &ended);
			added += n;
			*dist_lines += n;
			if (!ended)
				break;
		}
		agg_cursor_next_entry(t, c);
	}
	return added;
}
