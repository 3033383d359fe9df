/* fuzz_check.c - see fuzz_check.h. The order below is the order of the data:
 * failing, the configuration, the reference for one line, the model of a
 * window table, the lines a closed window owes, then the simulated relay
 * that ties them together. */
#include "fuzz_check.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "encode.h"
#include "numfmt.h"
#include "percentile.h"
#include "protocol.h"

const uint8_t fuzz_header_roomy[FUZZ_HEADER] = { 0xff, 0xff, 0xff, 0xff, 0xff };
const uint8_t fuzz_header_tight[FUZZ_HEADER] = { 0x00, 0x00, 0x08, 0x02, 0x10 };

/* ------------------------------------------------------------------------
 * Failing
 * ------------------------------------------------------------------------ */

static const char *label;
static const char *cur_line; /* the line at hand, for the message */
static size_t cur_len;

void fuzz_check_label(const char *l)
{
	label = l;
}

static void print_escaped(const char *p, size_t n)
{
	for (size_t i = 0; i < n && i < 400; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	if (n > 400)
		fprintf(stderr, "... (%zu bytes)", n);
	fputc('\n', stderr);
}

__attribute__((format(printf, 3, 4), noreturn)) static void fail(const char *file, int line,
								   const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: invariant broken%s%s: ", file, line, label ? " by " : "",
		label ? label : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cur_line) {
		fputs("  at line: ", stderr);
		print_escaped(cur_line, cur_len);
	}
	abort();
}

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond))                                    \
			fail(__FILE__, __LINE__, __VA_ARGS__);  \
	} while (0)

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fputs("fuzz_check: out of memory\n", stderr);
		abort();
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("fuzz_check: out of memory\n", stderr);
		abort();
	}
	return p;
}

static bool same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

/* ------------------------------------------------------------------------
 * State kept between inputs: allocated once, freed by fuzz_check_cleanup()
 * ------------------------------------------------------------------------ */

struct ref_tag {
	const char *key, *val; /* replaced bytes, in ref_scratch */
	size_t key_len, val_len, order;
};

static struct {
	bool ready;
	struct proto_parser ps; /* ingest */
	struct proto_parser rp; /* re-parse of what was forwarded */
	struct proto_parser big; /* no line is too long for it */
	locale_t c_locale;
	char *ref_id, *ref_scratch, *ref_num; /* PROTO_MAX_LINE + 1 each */
	struct ref_tag *ref_tags;             /* PROTO_MAX_LINE / 2 + 1 */
	char *xid;                            /* an owed line's id: PROTO_MAX_LINE + 64 */
} g;

static void global_init(void)
{
	if (g.ready)
		return;
	if (proto_parser_init(&g.ps) != 0 || proto_parser_init(&g.rp) != 0 ||
	    proto_parser_init(&g.big) != 0) {
		fputs("fuzz_check: proto_parser_init failed\n", stderr);
		abort();
	}
	g.c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (g.c_locale == (locale_t)0)
		abort();
	g.ref_id = xmalloc(PROTO_MAX_LINE + 1);
	g.ref_scratch = xmalloc(PROTO_MAX_LINE + 1);
	g.ref_num = xmalloc(PROTO_MAX_LINE + 1);
	g.ref_tags = xmalloc((PROTO_MAX_LINE / 2 + 1) * sizeof(*g.ref_tags));
	g.xid = xmalloc(PROTO_MAX_LINE + 64);
	g.ready = true;
}

void fuzz_check_cleanup(void)
{
	if (!g.ready)
		return;
	proto_parser_deinit(&g.ps);
	proto_parser_deinit(&g.rp);
	proto_parser_deinit(&g.big);
	freelocale(g.c_locale);
	free(g.ref_id);
	free(g.ref_scratch);
	free(g.ref_num);
	free(g.ref_tags);
	free(g.xid);
	memset(&g, 0, sizeof(g));
}

/* ------------------------------------------------------------------------
 * Configuration from the header
 * ------------------------------------------------------------------------ */

struct config {
	size_t cap;           /* max_datagram, and the parser's max_line */
	size_t max_series;
	size_t age_limit;
	size_t max_key_bytes;
	bool merge_timers;
};

/* Half of the max_datagram values fall in 512..2559, where lines of a small
 * input fill datagrams and hit too-long; the other half spread to 65507. The
 * limits are small unless the top bit asks for the daemon's defaults. The
 * age-gauge byte has three spare bits: 0x10 alone among them turns
 * merge_timers off, so that inputs written before it existed, and seven in
 * eight random bytes, keep the default (on). */
static void limits_from(const uint8_t *h, size_t n, struct config *c)
{
	if (n > 0)
		c->max_series = h[0] & 0x80 ? 1000000 : 1 + (size_t)(h[0] & 0x7f);
	if (n > 1) {
		c->age_limit = h[1] & 0x80 ? 1000 : (size_t)(h[1] & 0x0f);
		c->merge_timers = (h[1] & 0x70) != 0x10;
	}
	if (n > 2)
		c->max_key_bytes =
			h[2] & 0x80 ? (size_t)256 << 20 : 16 * (1 + (size_t)(h[2] & 0x7f));
}

static void config_from(const uint8_t *h, struct config *c)
{
	unsigned v = (unsigned)h[0] << 8 | h[1];

	c->cap = v < 0x8000 ? 512 + v % 2048 : 512 + (size_t)(v - 0x8000) * (65507 - 512) / 0x7fff;
	limits_from(h + 2, 3, c);
}

/* ------------------------------------------------------------------------
 * The reference for one accepted line: written the slow, obvious way from
 * docs/protocol.md 12.7, independently of protocol.c
 * ------------------------------------------------------------------------ */

static bool ok_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       c == '-' || c == '.' || c == '_' || c == '~' || c == '^';
}

static bool ws_byte(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c != 0 ? c : (alen > blen) - (alen < blen);
}

static char *put_replaced(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		*dst++ = ok_byte((unsigned char)src[i]) ? src[i] : '_';
	return dst;
}

static int ref_tag_cmp(const void *pa, const void *pb)
{
	const struct ref_tag *a = pa, *b = pb;
	int c = bytes_cmp(a->key, a->key_len, b->key, b->key_len);

	return c != 0 ? c : (a->order > b->order) - (a->order < b->order);
}

/* The id is a canonical id: a name of allowed bytes, then ",key=value" tags
 * of allowed bytes, keys strictly ascending, none of them "name". */
static void check_canonical(const struct sample *s)
{
	const char *id = s->id;
	size_t n = s->id_len, i;

	CHECK(s->name_len > 0 && s->name_len <= n, "name_len %u of id_len %u", s->name_len,
	      s->id_len);
	for (i = 0; i < s->name_len; i++)
		CHECK(ok_byte((unsigned char)id[i]), "byte 0x%02x in the canonical name",
		      (unsigned char)id[i]);
	const char *prev = NULL;
	size_t prev_len = 0;
	while (i < n) {
		CHECK(id[i] == ',', "canonical id %.*s: ',' expected at %zu", (int)n, id, i);
		size_t k = ++i;
		while (i < n && ok_byte((unsigned char)id[i]))
			i++;
		size_t klen = i - k;
		CHECK(klen > 0 && i < n && id[i] == '=', "canonical id %.*s: bad key at %zu",
		      (int)n, id, k);
		size_t v = ++i;
		while (i < n && ok_byte((unsigned char)id[i]))
			i++;
		CHECK(i > v, "canonical id %.*s: empty value at %zu", (int)n, id, v);
		CHECK(!(klen == 4 && memcmp(id + k, "name", 4) == 0), "canonical id %.*s: key name",
		      (int)n, id);
		CHECK(!prev || bytes_cmp(prev, prev_len, id + k, klen) < 0,
		      "canonical id %.*s: keys not strictly ascending", (int)n, id);
		prev = id + k;
		prev_len = klen;
	}
}

/* Rebuilds the canonical id from the line; returns where the value starts. */
static const char *check_ref_id(const char *line, size_t len, const struct sample *s)
{
	const char *end = line + len;
	const char *p = line + 1;

	if (*p == ',')
		p = memchr(p, ':', (size_t)(end - p));
	CHECK(p && *p == ':', "accepted without ':' after the type");
	const char *name = ++p;
	while (p < end && *p != ',' && *p != ':')
		p++;
	CHECK(p < end, "accepted without a value");
	char *w = put_replaced(g.ref_id, name, (size_t)(p - name));
	size_t name_len = (size_t)(w - g.ref_id);

	if (*p == ',') {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		CHECK(colon, "accepted tags without ':'");
		char *sc = g.ref_scratch;
		size_t ntags = 0;
		for (const char *seg = p + 1; seg <= colon; ntags++) {
			const char *seg_end = seg;
			while (seg_end < colon && *seg_end != ',')
				seg_end++;
			const char *eq = memchr(seg, '=', (size_t)(seg_end - seg));
			CHECK(eq && eq > seg && eq + 1 < seg_end, "accepted a malformed tag");
			struct ref_tag *t = &g.ref_tags[ntags];
			t->key = sc;
			t->key_len = (size_t)(eq - seg);
			sc = put_replaced(sc, seg, t->key_len);
			t->val = sc;
			t->val_len = (size_t)(seg_end - eq - 1);
			sc = put_replaced(sc, eq + 1, t->val_len);
			t->order = ntags;
			CHECK(!(t->key_len == 4 && memcmp(t->key, "name", 4) == 0),
			      "accepted the reserved key name");
			seg = seg_end + 1;
		}
		qsort(g.ref_tags, ntags, sizeof(*g.ref_tags), ref_tag_cmp);
		for (size_t i = 0; i < ntags; i++) {
			const struct ref_tag *t = &g.ref_tags[i];
			if (i + 1 < ntags &&
			    bytes_cmp(t->key, t->key_len, t[1].key, t[1].key_len) == 0)
				continue; /* the last of equal keys wins */
			*w++ = ',';
			memcpy(w, t->key, t->key_len);
			w += t->key_len;
			*w++ = '=';
			memcpy(w, t->val, t->val_len);
			w += t->val_len;
		}
		p = colon;
	}
	size_t n = (size_t)(w - g.ref_id);
	CHECK(n == s->id_len && memcmp(g.ref_id, s->id, n) == 0 && name_len == s->name_len,
	      "id %.*s (name %u bytes), reference %.*s (name %zu bytes)", (int)s->id_len, s->id,
	      s->name_len, (int)n, g.ref_id, name_len);
	return p + 1;
}

/* The value as strtod, strtoull and strtoll read it in the C locale. */
static void check_ref_value(const char *p, const char *end, const struct sample *s)
{
	while (p < end && ws_byte((unsigned char)*p))
		p++;
	while (end > p && ws_byte((unsigned char)end[-1]))
		end--;
	size_t n = (size_t)(end - p);
	CHECK(n > 0, "accepted an empty value");
	memcpy(g.ref_num, p, n);
	g.ref_num[n] = '\0';

	char *e;
	if (s->type == METER_MONO_U64) {
		const char *q = g.ref_num + (g.ref_num[0] == '+');
		CHECK(*q >= '0' && *q <= '9', "U value %s does not start with a digit", g.ref_num);
		errno = 0;
		unsigned long long u = strtoull(q, &e, 10);
		CHECK(errno == 0, "U value %s out of range for strtoull", g.ref_num);
		if (*e == '.')
			for (e++; *e >= '0' && *e <= '9'; e++)
				;
		CHECK(*e == '\0', "U value %s: strtoull stops at '%s'", g.ref_num, e);
		CHECK(u == s->v.u, "U value %s: parsed %llu, strtoull %llu", g.ref_num,
		      (unsigned long long)s->v.u, u);
		return;
	}
	double d = strtod_l(g.ref_num, &e, g.c_locale);
	CHECK(*e == '\0', "value %s: strtod stops at '%s'", g.ref_num, e);
	if (isnan(d)) {
		CHECK(s->type == METER_GAUGE && isnan(s->v.d), "NaN accepted for %c",
		      meter_symbol[s->type]);
		return;
	}
	CHECK(isfinite(d), "non-finite value %s accepted", g.ref_num);
	CHECK(same_bits(d, s->v.d), "value %s: parsed %.17g, strtod %.17g", g.ref_num, s->v.d, d);
}

static void check_ref_extra(const char *line, size_t len, const struct sample *s)
{
	bool sent = line[1] == ',';

	if (s->type == METER_SAMPLED)
		CHECK(sent, "X accepted without a timestamp");
	if (!sent || (s->type != METER_GAUGE && s->type != METER_SAMPLED)) {
		CHECK(!s->has_extra && s->extra == 0, "extra %lld kept for %c", (long long)s->extra,
		      meter_symbol[s->type]);
		return;
	}
	const char *colon = memchr(line + 2, ':', len - 2);
	size_t n = (size_t)(colon - line - 2);
	memcpy(g.ref_num, line + 2, n);
	g.ref_num[n] = '\0';
	char *e;
	errno = 0;
	long long v = strtoll(g.ref_num, &e, 10);
	CHECK(n > 0 && *e == '\0' && errno == 0, "extra '%s' is not an int64", g.ref_num);
	CHECK(s->has_extra && s->extra == v && v > 0, "extra '%s': parsed %lld", g.ref_num,
	      (long long)s->extra);
	if (s->type == METER_SAMPLED)
		CHECK(v <= INT64_MAX / 1000000, "X timestamp %lld overflows as ns", v);
}

/* too-long refuses only what could not be sent: a line whose canonical
 * form, as forwarded alone, is longer than the datagram; for an age gauge
 * of 0, with the receive time (any number) in place of the 0. */
static void check_too_long(const struct sample *s, size_t cap, bool refused)
{
	size_t n = encode_sample_len(s);

	if (s->type == METER_AGE && s->v.d == 0)
		n = metric_line_len(s->id_len, 0, ENCODE_MAX_VALUE);
	CHECK(refused == (n > cap), "too-long %d for a %zu-byte datagram, but its line takes %zu",
	      refused, cap, n);
}

/* Everything an accepted line must satisfy on its own. */
static void check_accepted(const char *line, size_t len, const struct sample *s)
{
	CHECK(meter_symbol[s->type] == line[0], "type %c from a line of type %c",
	      meter_symbol[s->type], line[0]);
	check_canonical(s);
	check_ref_extra(line, len, s);
	check_ref_value(check_ref_id(line, len, s), line + len, s);
}

/* ------------------------------------------------------------------------
 * The model of a window table: docs/protocol.md 12.2, 12.9 and aggregate.h,
 * kept in a plain FNV hash over an array in insertion order
 * ------------------------------------------------------------------------ */

/* A timer or distribution summary series, as docs/protocol.md 12.9 defines
 * it, the slow way: every merged sample kept, every bucket a counter. */
struct mdist {
	uint64_t n;
	int64_t sum_ns, max_ns; /* t T: exact */
	double sum, max;        /* d D: in arrival order; max from 0 */
	double sumsq;           /* in arrival order */
	uint64_t *bucket;       /* T D: PCT_BUCKETS counts; NULL for t d */
	size_t nbuckets;        /* buckets not empty */
	double *v;              /* the merged samples as sent, in arrival order */
	size_t vcap;            /* n of them are used */
};

struct mentry {
	uint8_t kind;
	uint32_t len;
	const char *id;       /* in the run's arena */
	struct agg_value val; /* scalar series */
	struct mdist *dist;   /* t T d D series, owned; NULL for the others */
};

struct model {
	struct mentry *e;
	size_t n, cap;    /* every series, scalar or not: the limits count both */
	uint32_t *slot;   /* entry index + 1; 0 is empty */
	size_t nslot;     /* a power of two, or 0 before the first key */
	size_t key_bytes; /* the ids' bytes, which max_key_bytes bounds */
};

static bool kind_timer(uint8_t kind)
{
	return kind == 't' || kind == 'T';
}

static bool kind_pct(uint8_t kind)
{
	return kind == 'T' || kind == 'D';
}

static bool kind_dist(uint8_t kind)
{
	return kind_timer(kind) || kind == 'd' || kind == 'D';
}

static uint64_t fnv1a(uint8_t kind, const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = (h ^ kind) * 0x100000001b3ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	return h;
}

static void model_place(struct model *m, size_t index)
{
	const struct mentry *e = &m->e[index];
	size_t i = fnv1a(e->kind, e->id, e->len) & (m->nslot - 1);

	while (m->slot[i] != 0)
		i = (i + 1) & (m->nslot - 1);
	m->slot[i] = (uint32_t)index + 1;
}

static struct mentry *model_find(const struct model *m, uint8_t kind, const char *id, size_t len)
{
	if (m->nslot == 0)
		return NULL;
	for (size_t i = fnv1a(kind, id, len) & (m->nslot - 1);; i = (i + 1) & (m->nslot - 1)) {
		if (m->slot[i] == 0)
			return NULL;
		struct mentry *e = &m->e[m->slot[i] - 1];
		if (e->kind == kind && e->len == len && memcmp(e->id, id, len) == 0)
			return e;
	}
}

static void dist_free(struct mdist *d)
{
	if (d) {
		free(d->bucket);
		free(d->v);
		free(d);
	}
}

/* Appends a key the model does not hold. id must outlive the model. */
static struct mentry *model_add(struct model *m, uint8_t kind, const char *id, size_t len)
{
	if ((m->n + 1) * 2 > m->nslot) {
		free(m->slot);
		m->nslot = m->nslot ? m->nslot * 2 : 64;
		m->slot = calloc(m->nslot, sizeof(*m->slot));
		if (!m->slot)
			abort();
		for (size_t i = 0; i < m->n; i++)
			model_place(m, i);
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->e = xrealloc(m->e, m->cap * sizeof(*m->e));
	}
	struct mentry *e = &m->e[m->n];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->id = id;
	e->len = (uint32_t)len;
	if (kind == 'm')
		e->val.v.d = -DBL_MAX; /* what an empty max gauge holds */
	if (kind_dist(kind)) {
		e->dist = xmalloc(sizeof(*e->dist));
		memset(e->dist, 0, sizeof(*e->dist));
		if (kind_pct(kind)) {
			e->dist->bucket = xmalloc(PCT_BUCKETS * sizeof(*e->dist->bucket));
			memset(e->dist->bucket, 0, PCT_BUCKETS * sizeof(*e->dist->bucket));
		}
	}
	model_place(m, m->n++);
	m->key_bytes += len;
	return e;
}

/* Removes a key by rebuilding the slots: removals are rare, and the model
 * stays obviously right. The last entry takes the hole, as in keytab. */
static void model_remove(struct model *m, struct mentry *e)
{
	size_t i = (size_t)(e - m->e);

	m->key_bytes -= e->len;
	dist_free(e->dist);
	m->e[i] = m->e[--m->n];
	memset(m->slot, 0, m->nslot * sizeof(*m->slot));
	for (size_t j = 0; j < m->n; j++)
		model_place(m, j);
}

static void model_clear(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		dist_free(m->e[i].dist);
	m->n = 0;
	m->key_bytes = 0;
	if (m->slot)
		memset(m->slot, 0, m->nslot * sizeof(*m->slot));
}

static void model_free(struct model *m)
{
	model_clear(m);
	free(m->e);
	free(m->slot);
	memset(m, 0, sizeof(*m));
}

static bool model_emits(const struct mentry *e)
{
	if (e->kind == 'c')
		return e->val.v.d != 0;
	if (e->kind == 'm')
		return e->val.v.d != -DBL_MAX;
	return true;
}

static void model_merge(struct mentry *e, const struct sample *s, double now)
{
	switch (s->type) {
	case METER_COUNTER:
		e->val.v.d += s->v.d;
		break;
	case METER_MAX:
		if (s->v.d > e->val.v.d)
			e->val.v.d = s->v.d;
		break;
	case METER_GAUGE:
		e->val.v.d = s->v.d;
		if (s->has_extra)
			e->val.ttl = s->extra;
		break;
	case METER_AGE:
		e->val.v.d = s->v.d == 0 ? now : s->v.d;
		break;
	case METER_MONO_U64:
		e->val.v.u = s->v.u;
		break;
	default:
		e->val.v.d = s->v.d;
		break;
	}
}

/* ---- timers and distribution summaries: docs/protocol.md 12.9 ---- */

/* The sample x of the table in 12.9. The parser refuses every value these
 * conversions would overflow (12.7); a value it let through is its bug, not
 * undefined behaviour here. */
static int64_t spec_ns(double v)
{
	CHECK(v >= 0 && v * 1e9 < 9223372036854775808.0, "timer value %.17g accepted", v);
	return (int64_t)(v * 1e9);
}

static int64_t spec_a(double v)
{
	CHECK(v >= 0 && v < 9223372036854775808.0, "D value %.17g accepted", v);
	return (int64_t)v;
}

static double spec_x(uint8_t kind, double v)
{
	if (kind_timer(kind))
		return (double)spec_ns(v);
	return kind == 'D' ? (double)spec_a(v) : v;
}

/* T: the ns clamped to [1 ns, 24 h]; D: int64(v), unclamped. The index is
 * percentile.h's, which test_percentile checks row by row against the
 * shared table. */
static size_t spec_bucket(uint8_t kind, double v)
{
	int64_t b;

	if (kind == 'D')
		return pct_bucket_index(spec_a(v));
	b = spec_ns(v);
	if (b < 1)
		b = 1;
	if (b > 86400ll * 1000000000ll)
		b = 86400ll * 1000000000ll;
	return pct_bucket_index(b);
}

/* Whether adding v would take a total beyond what spectatord's own meter
 * holds: an int64 of ns, a finite double. Then the sample goes alone. */
static bool dist_overflows(uint8_t kind, const struct mdist *d, double v)
{
	double x = spec_x(kind, v);

	if (!isfinite(d->sumsq + x * x))
		return true;
	return kind_timer(kind) ? spec_ns(v) > INT64_MAX - d->sum_ns : !isfinite(d->sum + x);
}

static void dist_merge(uint8_t kind, struct mdist *d, double v)
{
	double x = spec_x(kind, v);

	if (kind_timer(kind)) {
		int64_t ns = spec_ns(v);
		d->sum_ns += ns;
		if (ns > d->max_ns)
			d->max_ns = ns;
	} else {
		d->sum += x;
		if (x > d->max)
			d->max = x;
	}
	d->sumsq += x * x;
	if (kind_pct(kind) && d->bucket[spec_bucket(kind, v)]++ == 0)
		d->nbuckets++;
	if (d->n == d->vcap) {
		d->vcap = d->vcap ? d->vcap * 2 : 8;
		d->v = xrealloc(d->v, d->vcap * sizeof(*d->v));
	}
	d->v[d->n++] = v;
}

/* ---- the blocks arena: what can be asserted about running out of it ----
 *
 * A series' bucket counts and kept samples live in blocks of 4, 8, ... 512
 * words, carved from one arena of max_key_bytes / 8 words per table
 * (blocks.h, aggregate.h); a block outgrown moves to one twice its size,
 * and freed blocks are reused only by their own size. Where exactly the
 * arena runs out depends on that reuse, which the model does not mirror.
 * What it can bound: each series carves each size of each kind of block at
 * most once, so the arena's use is at most the sum, over every series, of
 * every size up to the one its buckets need and the one its kept samples
 * needed (at most 4 beyond its buckets: aggregate.h). Only when that bound
 * plus the block asked for passes the limit may the relay be out of room;
 * below it, a forward or a lost samples form is a bug. */

static size_t block_words(size_t k)
{
	size_t w = 4;

	while (w < k)
		w *= 2;
	return w;
}

/* Words carved for a block that grew to hold k items: 4 + 8 + ... */
static size_t carved_upto(size_t k)
{
	return k == 0 ? 0 : 2 * block_words(k) - 4;
}

/* Whether holding k + 1 items takes a block that k did not have. */
static bool needs_block(size_t k)
{
	return k == 0 || (k >= 4 && (k & (k - 1)) == 0);
}

static size_t arena_limit_words(size_t max_key_bytes)
{
	size_t w = max_key_bytes / sizeof(uint64_t);

	return w < (size_t)UINT32_MAX - 1 ? w : (size_t)UINT32_MAX - 1;
}

static size_t arena_bound(const struct model *m)
{
	size_t u = 0;

	for (size_t i = 0; i < m->n; i++) {
		const struct mdist *d = m->e[i].dist;
		if (!d)
			continue;
		size_t kept = d->n < 4 + d->nbuckets ? d->n : 4 + d->nbuckets;
		u += carved_upto(d->nbuckets) + carved_upto(kept);
	}
	return u;
}

/* ------------------------------------------------------------------------
 * What a closed window must become: its lines, in order, from the model
 * ------------------------------------------------------------------------ */

/* One line the window owes, as text and as the sample it re-parses to. */
struct xline {
	size_t text, len;     /* in struct expect's text, '\n' included */
	size_t id, id_len;    /* its id, within the text */
	uint32_t name_len;
	enum meter_type type;
	bool has_extra;
	int64_t extra;
	double d;
	uint64_t u;
	size_t group;         /* its series */
	bool dist;            /* from a t T d D series */
};

/* The lines of one series, which go in one datagram when they fit one. */
struct xgroup {
	size_t first, n, bytes;
};

/* A closed window's lines: rebuilt from the model when it closes, then
 * consumed datagram by datagram. */
struct expect {
	struct xline *l;
	size_t n, cap;
	size_t pos;           /* lines delivered */
	struct xgroup *g;
	size_t ng, gcap;
	char *text;           /* every line's text, back to back */
	size_t text_len, text_cap;
};

static void expect_reset(struct expect *x)
{
	x->n = x->ng = x->pos = x->text_len = 0;
}

static void expect_free(struct expect *x)
{
	free(x->l);
	free(x->g);
	free(x->text);
	memset(x, 0, sizeof(*x));
}

static void expect_group(struct expect *x)
{
	if (x->ng == x->gcap) {
		x->gcap = x->gcap ? x->gcap * 2 : 64;
		x->g = xrealloc(x->g, x->gcap * sizeof(*x->g));
	}
	x->g[x->ng++] = (struct xgroup){ x->n, 0, 0 };
}

/* Appends a line "sym[,extra]:id:num\n" to the open group. */
static void expect_line(struct expect *x, enum meter_type type, bool has_extra, int64_t extra,
			const char *id, size_t id_len, const char *num, size_t nlen, double d,
			uint64_t u, bool dist)
{
	char ext[NUMFMT_MAX];
	size_t elen = has_extra ? numfmt_i64(ext, extra) : 0;
	size_t len = metric_line_len(id_len, elen, nlen) + 1;

	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 256;
		x->l = xrealloc(x->l, x->cap * sizeof(*x->l));
	}
	while (x->text_len + len > x->text_cap) {
		x->text_cap = x->text_cap ? x->text_cap * 2 : 4096;
		x->text = xrealloc(x->text, x->text_cap);
	}
	char *w = x->text + x->text_len;
	struct xline *l = &x->l[x->n];
	const char *comma = memchr(id, ',', id_len); /* a canonical name has none */
	*l = (struct xline){
		.text = x->text_len, .len = len, .id_len = id_len,
		.name_len = (uint32_t)(comma ? (size_t)(comma - id) : id_len),
		.type = type, .has_extra = has_extra, .extra = extra, .d = d, .u = u,
		.group = x->ng - 1, .dist = dist,
	};
	*w++ = meter_symbol[type];
	if (has_extra) {
		*w++ = ',';
		memcpy(w, ext, elen);
		w += elen;
	}
	*w++ = ':';
	l->id = (size_t)(w - x->text);
	memcpy(w, id, id_len);
	w += id_len;
	*w++ = ':';
	memcpy(w, num, nlen);
	w += nlen;
	*w++ = '\n';
	x->text_len += len;
	x->g[x->ng - 1].n++;
	x->g[x->ng - 1].bytes += len;
	x->n++;
}

static void expect_scalar(struct expect *x, const struct mentry *e)
{
	enum meter_type type = (enum meter_type)meter_from_symbol(e->kind);
	char num[NUMFMT_MAX];
	size_t nlen = type == METER_MONO_U64 ? numfmt_u64(num, e->val.v.u)
					     : numfmt_double(num, e->val.v.d);

	expect_group(x);
	expect_line(x, type, type == METER_GAUGE && e->val.ttl != 0, e->val.ttl, e->id, e->len,
		    num, nlen, e->val.v.d, e->val.v.u, false);
}

/* id with the statistic tag (and for a bucket the percentile tag) set, the
 * slow way: the client's tags of those keys dropped, the forced ones added,
 * every tag sorted by its key's bytes (12.1's canonical order). Writes into
 * dst (room for id_len + 64) and returns the length. */
static size_t forced_id(char *dst, const char *id, size_t len, const char *stat, const char *pct)
{
	const char *end = id + len, *p = memchr(id, ',', len);
	size_t name_len = p ? (size_t)(p - id) : len, nt = 0;
	struct ref_tag *t = g.ref_tags;

	while (p) {
		const char *key = p + 1;
		const char *eq = memchr(key, '=', (size_t)(end - key));
		const char *stop = memchr(eq, ',', (size_t)(end - eq));
		size_t klen = (size_t)(eq - key);
		bool forced = (klen == 9 && memcmp(key, "statistic", 9) == 0) ||
			      (pct && klen == 10 && memcmp(key, "percentile", 10) == 0);
		if (!forced) {
			t[nt] = (struct ref_tag){ key, eq + 1, klen,
						  (size_t)((stop ? stop : end) - eq - 1), nt };
			nt++;
		}
		p = stop;
	}
	t[nt] = (struct ref_tag){ "statistic", stat, 9, strlen(stat), nt };
	nt++;
	if (pct) {
		t[nt] = (struct ref_tag){ "percentile", pct, 10, strlen(pct), nt };
		nt++;
	}
	qsort(t, nt, sizeof(*t), ref_tag_cmp);

	char *w = dst;
	memcpy(w, id, name_len);
	w += name_len;
	for (size_t i = 0; i < nt; i++) {
		*w++ = ',';
		memcpy(w, t[i].key, t[i].key_len);
		w += t[i].key_len;
		*w++ = '=';
		memcpy(w, t[i].val, t[i].val_len);
		w += t[i].val_len;
	}
	return (size_t)(w - dst);
}

/* One statistic of 12.9: a counter (or for max, a max gauge) line. */
struct stat_line {
	enum meter_type type;
	const char *stat;
	size_t bucket; /* percentile lines */
	double v;
};

/* The statistics form of a series, without the zero rule's first sample.
 * Returns the lines whose value changes anything: a counter of 0 does
 * nothing in spectatord (6.2). */
static size_t dist_stats(uint8_t kind, const struct mdist *d, bool zero, struct stat_line *st)
{
	bool timer = kind_timer(kind);
	size_t n = 0, from = zero;
	double total, sumsq = 0, max = 0;
	uint64_t count[PCT_BUCKETS] = { 0 };

	/* Under the zero rule the first sample goes as it came and these are
	 * the statistics of the other n - 1, computed again from the samples,
	 * but for one: their total is the window's S less the first sample's
	 * x, so that spectatord's first-sample meter plus this counter add up
	 * to S as arrival order made it (aggregate.c's reading of 12.9; only
	 * d can differ from the others' own sum, by a rounding). A max no
	 * higher than the first sample's adds nothing to what its meter
	 * publishes. */
	for (size_t i = from; i < d->n; i++) {
		double x = spec_x(kind, d->v[i]);
		sumsq += x * x;
		if (x > max)
			max = x;
		if (kind_pct(kind))
			count[spec_bucket(kind, d->v[i])]++;
	}
	if (!zero)
		CHECK(same_bits(sumsq, d->sumsq) && (timer ? max == (double)d->max_ns : same_bits(max, d->max)),
		      "model: recomputed statistics differ");
	if (timer)
		total = (double)(d->sum_ns - (zero ? spec_ns(d->v[0]) : 0)) / 1e9;
	else
		total = zero ? d->sum - spec_x(kind, d->v[0]) : d->sum;
	if (zero && !(max > spec_x(kind, d->v[0])))
		max = 0;

	st[n++] = (struct stat_line){ METER_COUNTER, "count", 0, (double)(d->n - zero) };
	st[n++] = (struct stat_line){ METER_COUNTER, timer ? "totalTime" : "totalAmount", 0, total };
	st[n++] = (struct stat_line){ METER_COUNTER, "totalOfSquares", 0,
				      timer ? sumsq / 1e18 : sumsq };
	st[n++] = (struct stat_line){ METER_MAX, "max", 0, timer ? max / 1e9 : max };
	for (size_t b = 0; b < PCT_BUCKETS; b++)
		if (count[b])
			st[n++] = (struct stat_line){ METER_COUNTER, "percentile", b,
						      (double)count[b] };
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (st[i].v != 0)
			st[kept++] = st[i];
	return kept;
}
/* ------------------------------------------------------------------------
 * The simulated relay: what listener.c and window.c do with the pure core
 * ------------------------------------------------------------------------ */

/* Fixed, and not a short decimal, so that a rewritten age gauge 0 needs all
 * 17 digits. */
#define FUZZ_NOW 1711234567.123456789

struct run {
	struct config cfg;
	struct agg_table tab[2], *open, *closed;
	struct agg_cursor cursor; /* in closed: the first line not delivered */
	struct agg_ages ages;
	struct model mod[2], *mopen, *mclosed;
	struct model mages; /* the age-gauge set: ids forwarded, minus those forgotten */
	/* The lowest blocks arena limit each table had since it was last
	 * emptied, in words: a reload may lower it for a while. */
	size_t open_min_words, closed_min_words;
	struct expect want; /* the closed window's lines */

	char *arena; /* copies of accepted ids; lives for the run */
	size_t arena_len, arena_cap;

	char *pt_buf; /* the open pass-through datagram, cap + 1 bytes */
	struct packer pt;
	struct sample *ptq; /* what each of its lines must re-parse to */
	size_t ptq_len, ptq_cap;

	char *out_buf; /* table datagrams, cap + 1 bytes */
	char *undone_buf; /* a datagram the upstream failed to send, cap + 1 bytes */
	size_t undone_len;
	bool undone; /* it must come again, byte for byte */
};

static const char *arena_copy(struct run *r, const char *p, size_t n)
{
	/* A canonical id is never longer than the bytes it came from, every
	 * line is made of distinct input bytes, and a line's id is copied at
	 * most twice (a new t T d D series whose first sample is forwarded
	 * anyway): twice the input is enough. */
	CHECK(r->arena_len + n <= r->arena_cap, "arena: %zu + %zu > %zu", r->arena_len, n,
	      r->arena_cap);
	char *dst = r->arena + r->arena_len;
	memcpy(dst, p, n);
	r->arena_len += n;
	return dst;
}

/* Walks the lines of a datagram the relay built. */
static bool next_out_line(const char **p, const char *end, const char **line, size_t *len)
{
	if (*p >= end)
		return false;
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	CHECK(nl, "datagram does not end in '\\n'");
	*line = *p;
	*len = (size_t)(nl - *p);
	*p = nl + 1;
	return true;
}

/* A datagram as spectatord will read it: no larger than the cap, whole lines
 * only, no empty line (an empty first line is a parse error there), no NUL
 * (spectatord stops at it). */
static void check_frame(const struct run *r, const char *buf, size_t len, size_t lines)
{
	/* The last '\n' may go one past the cap, unsent on a datagram socket. */
	CHECK(len > 0 && len <= r->cfg.cap + 1, "datagram of %zu bytes, cap %zu", len, r->cfg.cap);
	CHECK(buf[0] != '\n', "datagram starts with '\\n'");
	CHECK(buf[len - 1] == '\n', "datagram does not end in '\\n'");
	CHECK(!memchr(buf, '\0', len), "NUL in a datagram");
	size_t nl = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			CHECK(i == 0 || buf[i - 1] != '\n', "empty line in a datagram");
			nl++;
		}
	}
	CHECK(nl == lines, "%zu lines in a datagram the packer says holds %zu", nl, lines);
}

static void check_same_sample(const struct sample *got, const struct sample *want)
{
	CHECK(got->type == want->type, "re-parsed as %c, sent %c", meter_symbol[got->type],
	      meter_symbol[want->type]);
	CHECK(got->id_len == want->id_len && memcmp(got->id, want->id, want->id_len) == 0,
	      "re-parsed id %.*s, sent %.*s", (int)got->id_len, got->id, (int)want->id_len,
	      want->id);
	CHECK(got->name_len == want->name_len, "re-parsed name_len %u, sent %u", got->name_len,
	      want->name_len);
	CHECK(got->has_extra == want->has_extra && got->extra == want->extra,
	      "re-parsed extra %d/%lld, sent %d/%lld", got->has_extra, (long long)got->extra,
	      want->has_extra, (long long)want->extra);
	if (want->type == METER_MONO_U64)
		CHECK(got->v.u == want->v.u, "re-parsed %llu, sent %llu",
		      (unsigned long long)got->v.u, (unsigned long long)want->v.u);
	else
		CHECK(same_bits(got->v.d, want->v.d), "re-parsed %.17g, sent %.17g", got->v.d,
		      want->v.d);
}

/* ---- pass-through: packed as they arrive, like window.c's pt_record() ---- */

static void pt_push(struct run *r)
{
	if (r->pt.lines == 0)
		return;
	check_frame(r, r->pt.buf, r->pt.len, r->pt.lines);
	CHECK(r->pt.lines == r->ptq_len, "%zu lines packed, %zu samples", r->pt.lines, r->ptq_len);

	const char *p = r->pt.buf, *end = r->pt.buf + r->pt.len, *line;
	size_t len;
	for (size_t i = 0; next_out_line(&p, end, &line, &len); i++) {
		struct sample got;
		cur_line = line;
		cur_len = len;
		enum reject_reason rr = proto_parse_line(&g.rp, line, len, &got);
		CHECK(rr == REJECT_NONE, "forwarded pass-through line refused: %s",
		      reject_reason_name[rr]);
		check_same_sample(&got, &r->ptq[i]);
	}
	cur_line = NULL;
	packer_reset(&r->pt);
	r->ptq_len = 0;
}

static void pt_record(struct run *r, const struct sample *s)
{
	size_t want = encode_sample_len(s) + 1;
	size_t before = r->pt.len;

	if (!packer_add_sample(&r->pt, s)) {
		CHECK(r->pt.len == before, "a refused line changed the datagram");
		CHECK(before + want > r->cfg.cap,
		      "%zu-byte line refused with %zu of %zu bytes used", want, before, r->cfg.cap);
		pt_push(r);
		before = 0;
		CHECK(packer_add_sample(&r->pt, s),
		      "%zu-byte accepted line fits no %zu-byte datagram", want, r->cfg.cap);
	}
	CHECK(r->pt.len == before + want, "line took %zu bytes, encode_sample_len says %zu",
	      r->pt.len - before, want);
	if (r->ptq_len == r->ptq_cap) {
		r->ptq_cap = r->ptq_cap ? r->ptq_cap * 2 : 64;
		r->ptq = xrealloc(r->ptq, r->ptq_cap * sizeof(*r->ptq));
	}
	r->ptq[r->ptq_len] = *s;
	r->ptq[r->ptq_len].id = arena_copy(r, s->id, s->id_len);
	r->ptq_len++;
}

/* ---- merged: recorded into the open table and into the model ---- */

static void merged_record(struct run *r, const struct sample *s)
{
	uint8_t kind = (uint8_t)meter_symbol[s->type];
	struct agg_outcome out;
	enum reject_reason got = agg_table_record(r->open, &r->ages, s, FUZZ_NOW, &out);
	struct mentry *e = model_find(r->mopen, kind, s->id, s->id_len);

	if (!e) {
		bool series_full = r->mopen->n >= r->cfg.max_series;
		bool arena_full = r->mopen->key_bytes + s->id_len > r->cfg.max_key_bytes;
		bool new_age =
			s->type == METER_AGE && !model_find(&r->mages, 'A', s->id, s->id_len);
		bool age_full = new_age && r->mages.n >= r->cfg.age_limit;

		/* Which reason wins when both apply is not part of the contract. */
		if (series_full || arena_full || age_full) {
			CHECK((got == REJECT_SERIES_LIMIT && (series_full || arena_full)) ||
				      (got == REJECT_AGE_GAUGE_LIMIT && age_full),
			      "new key: got %s; series %zu/%zu, key bytes %zu+%u/%zu, ages %zu/%zu",
			      reject_reason_name[got], r->mopen->n, r->cfg.max_series,
			      r->mopen->key_bytes, s->id_len, r->cfg.max_key_bytes, r->mages.n,
			      r->cfg.age_limit);
		} else {
			CHECK(got == REJECT_NONE, "new key refused: %s", reject_reason_name[got]);
			const char *id = arena_copy(r, s->id, s->id_len);
			if (new_age)
				model_add(&r->mages, 'A', id, s->id_len);
			e = model_add(r->mopen, kind, id, s->id_len);
		}
	} else if (s->type == METER_AGE && !model_find(&r->mages, 'A', s->id, s->id_len)) {
		/* In the window but forgotten from the set: it needs a slot again. */
		if (r->mages.n >= r->cfg.age_limit) {
			CHECK(got == REJECT_AGE_GAUGE_LIMIT, "forgotten age gauge: got %s",
			      reject_reason_name[got]);
			e = NULL;
		} else {
			CHECK(got == REJECT_NONE, "forgotten age gauge refused: %s",
			      reject_reason_name[got]);
			model_add(&r->mages, 'A', e->id, e->len);
		}
	} else {
		CHECK(got == REJECT_NONE, "known key refused: %s", reject_reason_name[got]);
	}
	/* A counter sum that would leave the finite range, or whose text no
	 * longer fits a line, is not taken: the line goes out alone, the
	 * window's sum stays as it was. */
	bool unsendable = false, split = false;
	if (e && s->type == METER_COUNTER) {
		double sum = e->val.v.d + s->v.d;
		char num[NUMFMT_MAX];
		unsendable = isinf(sum) || metric_line_len(e->len, 0, numfmt_double(num, sum)) >
						     r->cfg.cap;
	}
	/* A gauge whose value cannot share a line with an earlier line's TTL
	 * splits: the series as it stood goes out first. */
	if (e && s->type == METER_GAUGE && !s->has_extra && e->val.ttl != 0) {
		char num[NUMFMT_MAX], ext[NUMFMT_MAX];
		split = metric_line_len(e->len, numfmt_i64(ext, e->val.ttl),
					numfmt_double(num, s->v.d)) > r->cfg.cap;
	}
	CHECK(out.forward == unsendable, "forward %d for a line whose merge %s", out.forward,
	      unsendable ? "cannot be sent" : "is exact");
	CHECK(out.split == split, "split %d, model %d", out.split, split);
	if (split) {
		struct sample old = *s;
		old.has_extra = true;
		old.extra = e->val.ttl;
		old.v.d = e->val.v.d;
		CHECK(same_bits(out.old.v.d, e->val.v.d) && out.old.ttl == e->val.ttl,
		      "split off %.17g/%lld, model %.17g/%lld", out.old.v.d,
		      (long long)out.old.ttl, e->val.v.d, (long long)e->val.ttl);
		pt_record(r, &old);
		e->val.v.d = 0;
		e->val.ttl = 0;
	}
	if (out.forward)
		pt_record(r, s);
	else if (e)
		model_merge(e, s, FUZZ_NOW);

	CHECK(agg_table_count(r->open) == r->mopen->n, "table holds %zu keys, model %zu",
	      agg_table_count(r->open), r->mopen->n);
	CHECK(agg_ages_count(&r->ages) == r->mages.n, "age set holds %zu ids, model %zu",
	      agg_ages_count(&r->ages), r->mages.n);
	if (s->type == METER_AGE)
		CHECK(agg_ages_contains(&r->ages, s->id, s->id_len) ==
			      (model_find(&r->mages, 'A', s->id, s->id_len) != NULL),
		      "age set membership differs from the model");
}


/* A t T d D sample with merge_timers on, as window_record() gives it to the
 * table. None is refused: spectatord takes each alone, so what the table
 * cannot merge exactly is forwarded as it came (aggregate.h). */
static void dist_record(struct run *r, const struct sample *s)
{
	uint8_t kind = (uint8_t)meter_symbol[s->type];
	struct agg_outcome out;
	enum reject_reason got = agg_table_record(r->open, &r->ages, s, FUZZ_NOW, &out);
	struct mentry *e = model_find(r->mopen, kind, s->id, s->id_len);
	double v = s->v.d;

	CHECK(got == REJECT_NONE, "%c sample refused: %s", kind, reject_reason_name[got]);
	CHECK(!out.split, "%c sample split", kind);
	if (!e && r->mopen->n < r->cfg.max_series &&
	    r->mopen->key_bytes + s->id_len <= r->cfg.max_key_bytes)
		e = model_add(r->mopen, kind, arena_copy(r, s->id, s->id_len), s->id_len);
	if (!e) {
		CHECK(out.forward, "a new series past max_series or max_key_bytes was merged");
	} else if (dist_overflows(kind, e->dist, v)) {
		CHECK(out.forward, "merged %.17g into %c:%.*s, whose totals it overflows", v, kind,
		      (int)e->len, e->id);
	} else if (out.forward) {
		/* Forwarded for want of room in the blocks arena: only a bucket
		 * the series did not have can need a new block, and only past
		 * the bound on what the arena can hold. */
		const struct mdist *d = e->dist;
		size_t u = arena_bound(r->mopen), limit = arena_limit_words(r->cfg.max_key_bytes);
		CHECK(kind_pct(kind) && d->bucket[spec_bucket(kind, v)] == 0 &&
			      needs_block(d->nbuckets) && u + block_words(d->nbuckets + 1) > limit,
		      "%.17g forwarded, not merged into %c:%.*s (%zu buckets; arena at most %zu of "
		      "%zu words)",
		      v, kind, (int)e->len, e->id, d->nbuckets, u, limit);
	} else {
		dist_merge(kind, e->dist, v);
	}
	if (out.forward)
		pt_record(r, s);
	CHECK(agg_table_count(r->open) == r->mopen->n, "table holds %zu keys, model %zu",
	      agg_table_count(r->open), r->mopen->n);
}

/* The table is the model, entry by entry, in insertion order: the scalar
 * series with their values, the distribution series by key (their lines
 * are checked on delivery). */
static void check_table(const struct agg_table *t, const struct model *m)
{
	CHECK(agg_table_count(t) == m->n, "table holds %zu keys, model %zu", agg_table_count(t),
	      m->n);
	size_t pos = 0, dpos = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct mentry *me = &m->e[i];
		const struct keytab *kt = me->dist ? &t->dt : &t->kt;
		struct keytab_entry *e = keytab_next(kt, me->dist ? &dpos : &pos);
		CHECK(e != NULL, "the table ends at entry %zu of %zu", i, m->n);
		const struct agg_value *v = keytab_val(e);
		const char *key = keytab_key(kt, e);

		CHECK(e->kind == me->kind && e->key_len == me->len &&
			      memcmp(key, me->id, me->len) == 0,
		      "entry %zu is %c:%.*s, model %c:%.*s", i, e->kind, (int)e->key_len, key,
		      me->kind, (int)me->len, me->id);
		if (me->dist)
			continue;
		if (me->kind == 'U')
			CHECK(v->v.u == me->val.v.u, "U:%.*s holds %llu, model %llu", (int)me->len,
			      me->id, (unsigned long long)v->v.u, (unsigned long long)me->val.v.u);
		else
			CHECK(same_bits(v->v.d, me->val.v.d), "%c:%.*s holds %.17g, model %.17g",
			      me->kind, (int)me->len, me->id, v->v.d, me->val.v.d);
		CHECK(v->ttl == me->val.ttl, "%c:%.*s has ttl %lld, model %lld", me->kind,
		      (int)me->len, me->id, (long long)v->ttl, (long long)me->val.ttl);
		CHECK(agg_entry_emits(e) == model_emits(me), "%c:%.*s emits: %d, model %d",
		      me->kind, (int)me->len, me->id, agg_entry_emits(e), model_emits(me));
	}
	CHECK(keytab_next(&t->kt, &pos) == NULL && keytab_next(&t->dt, &dpos) == NULL,
	      "the table holds more than the model");
}

/* ---- what the closed window owes ---- */

/* A series' lines (12.9): its samples when they take no more lines than
 * its statistics, else the statistics, after the first sample under the
 * zero rule. relay_samples is the form the relay chose (agg_dist_plan()):
 * it may fall back to the statistics when its arena had no room to keep
 * the samples, and only then. */
static void expect_dist(struct run *r, const struct mentry *e, bool relay_samples)
{
	const struct mdist *d = e->dist;
	enum meter_type type = (enum meter_type)meter_from_symbol(e->kind);
	struct expect *x = &r->want;
	struct stat_line st[4 + PCT_BUCKETS];
	char num[NUMFMT_MAX], pct[8];

	if (d->n == 0)
		return; /* every sample was forwarded as it came */
	bool zero = (kind_timer(e->kind) ? d->sum_ns == 0 : d->sum == 0) || d->sumsq == 0;
	size_t nst = dist_stats(e->kind, d, zero, st);
	bool samples = d->n <= zero + nst;
	if (samples != relay_samples) {
		size_t u = arena_bound(r->mclosed);
		CHECK(samples && u + block_words(d->n) > r->closed_min_words,
		      "%c:%.*s: %zu samples, %zu statistics lines; the relay sends its %s (arena "
		      "at most %zu of %zu words)",
		      e->kind, (int)e->len, e->id, (size_t)d->n, zero + nst,
		      relay_samples ? "samples" : "statistics", u, r->closed_min_words);
		samples = false;
	}

	expect_group(x);
	for (size_t i = 0; i < (samples ? d->n : zero); i++)
		expect_line(x, type, false, 0, e->id, e->len, num, numfmt_double(num, d->v[i]),
			    d->v[i], 0, true);
	if (samples)
		return;
	for (size_t i = 0; i < nst; i++) {
		if (st[i].type == METER_COUNTER && strcmp(st[i].stat, "percentile") == 0)
			snprintf(pct, sizeof(pct), "%c%04X", e->kind, (unsigned)st[i].bucket);
		size_t n = forced_id(g.xid, e->id, e->len, st[i].stat,
				     strcmp(st[i].stat, "percentile") == 0 ? pct : NULL);
		expect_line(x, st[i].type, false, 0, g.xid, n, num, numfmt_double(num, st[i].v),
			    st[i].v, 0, true);
	}
}

/* Everything the closed window owes, in order: the scalar series in
 * insertion order, then the distribution series in insertion order. */
static void expect_window(struct run *r)
{
	const struct agg_table *t = r->closed;
	const struct model *m = r->mclosed;
	size_t dpos = 0;
	struct agg_cursor c;

	expect_reset(&r->want);
	for (size_t i = 0; i < m->n; i++)
		if (!m->e[i].dist && model_emits(&m->e[i]))
			expect_scalar(&r->want, &m->e[i]);
	for (size_t i = 0; i < m->n; i++) {
		if (!m->e[i].dist)
			continue;
		struct keytab_entry *e = keytab_next(&t->dt, &dpos); /* check_table() matched it */
		struct agg_plan plan;
		size_t before = r->want.n;
		agg_dist_plan(t, e, &plan);
		expect_dist(r, &m->e[i], plan.samples);
		CHECK(plan.lines == r->want.n - before, "%c:%.*s: the plan has %zu lines, the model %zu",
		      m->e[i].kind, (int)m->e[i].len, m->e[i].id, plan.lines, r->want.n - before);
	}
	agg_cursor_start(&c);
	CHECK(agg_table_pending(t, &c) == r->want.n, "%zu lines pending in a window that owes %zu",
	      agg_table_pending(t, &c), r->want.n);
}

/* ---- delivery: window.c's source_next() and source_undo() ---- */

/* One line of a table datagram against the line the window owes. */
static void check_table_line(const struct run *r, size_t i, const char *line, size_t len)
{
	const struct xline *x = &r->want.l[i];
	const char *text = r->want.text + x->text;
	struct sample got, want = {
		.type = x->type, .has_extra = x->has_extra, .extra = x->extra,
		.id = r->want.text + x->id, .id_len = (uint32_t)x->id_len, .name_len = x->name_len,
	};

	cur_line = line;
	cur_len = len;
	if (x->type == METER_MONO_U64)
		want.v.u = x->u;
	else
		want.v.d = x->d;
	enum reject_reason rr = proto_parse_line(&g.rp, line, len, &got);
	CHECK(rr == REJECT_NONE, "line %zu of the window refused: %s; owed %.*s", i,
	      reject_reason_name[rr], (int)x->len - 1, text);
	check_canonical(&got);
	check_same_sample(&got, &want);
	/* The very text: the id's bytes already canonical, the number the
	 * shortest that reads back (numfmt.h). */
	CHECK(len + 1 == x->len && memcmp(line, text, len) == 0, "line %zu of the window: owed %.*s",
	      i, (int)x->len - 1, text);
	cur_line = NULL;
}

/* One datagram of the closed window, holding the next `lines` lines owed. */
static void check_datagram(const struct run *r, const struct packer *pk, size_t lines,
			   size_t dist)
{
	const struct expect *x = &r->want;
	size_t from = x->pos, end = from + lines, ndist = 0, cap = r->cfg.cap;
	const char *p = pk->buf, *stop = pk->buf + pk->len, *line;
	size_t len;

	CHECK(end <= x->n, "%zu lines in a datagram, %zu owed", lines, x->n - from);
	for (size_t i = from; i < end; i++) {
		CHECK(next_out_line(&p, stop, &line, &len), "datagram short of line %zu", i);
		check_table_line(r, i, line, len);
		ndist += x->l[i].dist;
		/* A series that starts after other lines ends in the same
		 * datagram: its statistics reach one spectatord step. */
		const struct xgroup *gr = &x->g[x->l[i].group];
		CHECK(gr->first != i || i == from || gr->first + gr->n <= end,
		      "the series at line %zu (%zu lines, %zu bytes) split after %zu lines", i,
		      gr->n, gr->bytes, end - i);
	}
	CHECK(p == stop, "more lines in a datagram than it says");
	CHECK(ndist == dist, "%zu distribution lines, the packer says %zu", ndist, dist);
	const struct xgroup *g0 = &x->g[x->l[from].group];
	CHECK(g0->first != from || g0->first + g0->n <= end || g0->bytes > cap + 1,
	      "a %zu-byte series split though one datagram holds it", g0->bytes);
	/* Greedy: the datagram ends only where the next line does not fit, or
	 * the next series, whole, does not fit the rest. */
	if (end < x->n) {
		const struct xline *next = &x->l[end];
		const struct xgroup *gn = &x->g[next->group];
		size_t room = cap + 1 - pk->len;
		CHECK(next->len > room || (gn->first == end && gn->bytes > room),
		      "a datagram ended with %zu bytes of room, next line %zu bytes (its series "
		      "%zu bytes%s)",
		      room, next->len, gn->bytes, gn->first == end ? "" : ", under way");
	}
}

/* The upstream pulls up to `take` datagrams of the closed window; with
 * send_fails, sending the one after them fails: the window takes it back
 * (source_undo()) and must give the very same datagram next time. Returns
 * the datagrams taken. */
static size_t deliver(struct run *r, size_t take, bool send_fails)
{
	const struct agg_table *t = r->closed;
	size_t k = 0;

	while (!agg_cursor_done(t, &r->cursor) && (k < take || (send_fails && k == take))) {
		struct agg_cursor before = r->cursor;
		struct packer pk;
		size_t dist;

		packer_init(&pk, r->out_buf, r->cfg.cap);
		size_t lines = packer_add_table(&pk, t, &r->cursor, &dist);
		CHECK(pk.lines == lines, "packer holds %zu lines, returned %zu", pk.lines, lines);
		if (lines == 0) {
			/* Only series that emit nothing may be left: every line
			 * owed fits an empty datagram. */
			CHECK(agg_cursor_done(t, &r->cursor), "line %zu fits no %zu-byte datagram",
			      r->want.pos, r->cfg.cap);
			break;
		}
		check_frame(r, pk.buf, pk.len, lines);
		if (r->undone) {
			CHECK(pk.len == r->undone_len && memcmp(pk.buf, r->undone_buf, pk.len) == 0,
			      "a datagram taken back came again different");
			r->undone = false;
		}
		check_datagram(r, &pk, lines, dist);
		if (k == take) {
			r->cursor = before;
			memcpy(r->undone_buf, pk.buf, pk.len);
			r->undone_len = pk.len;
			r->undone = true;
			break;
		}
		r->want.pos += lines;
		k++;
		CHECK(agg_table_pending(t, &r->cursor) == r->want.n - r->want.pos,
		      "%zu lines pending, %zu owed", agg_table_pending(t, &r->cursor),
		      r->want.n - r->want.pos);
	}
	if (agg_cursor_done(t, &r->cursor))
		CHECK(r->want.pos == r->want.n && !r->undone, "the window ended at line %zu of %zu",
		      r->want.pos, r->want.n);
	return k;
}

/* window_flush(): push the pass-through datagram; if the upstream has not
 * taken all of the last window, it takes more now, and if that is still not
 * all, the open window stays open (it is not folded or dropped); otherwise
 * the tables swap and the upstream takes what it can of the new one. */
static void flush(struct run *r, size_t take, bool send_fails)
{
	pt_push(r);
	if (!agg_cursor_done(r->closed, &r->cursor)) {
		size_t taken = deliver(r, take, send_fails);
		if (!agg_cursor_done(r->closed, &r->cursor))
			return;
		take = take == SIZE_MAX ? SIZE_MAX : take - taken;
	}
	agg_table_clear(r->closed);
	model_clear(r->mclosed);
	CHECK(agg_table_count(r->closed) == 0, "cleared table holds keys");

	struct agg_table *t = r->closed;
	r->closed = r->open;
	r->open = t;
	struct model *m = r->mclosed;
	r->mclosed = r->mopen;
	r->mopen = m;
	r->closed_min_words = r->open_min_words;
	r->open_min_words = arena_limit_words(r->cfg.max_key_bytes);
	agg_cursor_start(&r->cursor);

	check_table(r->closed, r->mclosed);
	expect_window(r);
	deliver(r, take, send_fails);
}

/* window_reconfigure(), minus max_datagram (see fuzz_check.h). */
static void reload(struct run *r, const uint8_t *p, size_t n)
{
	limits_from(p, n, &r->cfg);
	struct agg_limits lim = { r->cfg.max_series, r->cfg.max_key_bytes, 0, r->cfg.cap };
	agg_table_set_limits(&r->tab[0], &lim);
	agg_table_set_limits(&r->tab[1], &lim);
	r->ages.limit = r->cfg.age_limit;
	size_t words = arena_limit_words(r->cfg.max_key_bytes);
	if (words < r->open_min_words)
		r->open_min_words = words;
}

/* What a resynchronisation with spectatord's /metrics or an admin DELETE
 * will do to the age-gauge set. */
static void forget(struct run *r, const char *id, size_t len)
{
	if (len == 0) {
		agg_ages_forget_all(&r->ages);
		model_clear(&r->mages);
	} else {
		struct mentry *e = model_find(&r->mages, 'A', id, len);
		int rc = agg_ages_forget(&r->ages, id, len);
		CHECK(rc == (e ? 0 : -ENOENT), "agg_ages_forget: %d, model %s", rc,
		      e ? "has it" : "does not");
		if (e)
			model_remove(&r->mages, e);
	}
	CHECK(agg_ages_count(&r->ages) == r->mages.n, "age set holds %zu ids, model %zu",
	      agg_ages_count(&r->ages), r->mages.n);
	for (size_t i = 0; i < r->mages.n; i++)
		CHECK(agg_ages_contains(&r->ages, r->mages.e[i].id, r->mages.e[i].len),
		      "age set lost %.*s", (int)r->mages.e[i].len, r->mages.e[i].id);
	if (len > 0)
		CHECK(!agg_ages_contains(&r->ages, id, len), "age set kept a forgotten id");
}

/* window_record(): too-long first; X, and t T d D that are not merged
 * (merge_timers off, or an id too long for their statistics' lines), are
 * forwarded as they came; everything else goes through the table. */
static void record(struct run *r, const struct sample *s)
{
	if (s->type == METER_SAMPLED)
		pt_record(r, s);
	else if (!agg_is_dist(s->type))
		merged_record(r, s);
	else if (r->cfg.merge_timers && encode_dist_fits(s->id_len, r->cfg.cap))
		dist_record(r, s);
	else
		pt_record(r, s);
}

/* listener.c's ingest_datagram(), minus the stats. */
static void ingest(struct run *r, const char *buf, size_t len, bool truncated)
{
	struct proto_lines it;
	const char *line;
	size_t n;
	bool partial;
	const char *nul = memchr(buf, '\0', len);

	proto_lines_init(&it, buf, len, truncated);
	CHECK(it.nul_cut == (nul != NULL), "nul_cut %d", it.nul_cut);
	const char *end = nul ? nul : buf + len;
	bool cut = truncated && !nul && len > 0 && buf[len - 1] != '\n', saw_partial = false;
	while (proto_lines_next(&it, &line, &n, &partial)) {
		CHECK(n > 0 && line >= buf && line + n <= end, "line outside the datagram");
		CHECK(!memchr(line, '\n', n), "line holds '\\n'");
		CHECK(line + n == end || line[n] == '\n', "line does not end at '\\n'");
		CHECK(!partial || (truncated && !nul && line + n == buf + len),
		      "partial line in a datagram that was not cut");
		if (partial) {
			saw_partial = true;
			continue; /* refused as REJECT_TRUNCATED */
		}

		struct sample s;
		cur_line = line;
		cur_len = n;
		enum reject_reason rr = proto_parse_line(&g.ps, line, n, &s);
		CHECK(rr < REJECT_TRUNCATED, "parser returned %s", reject_reason_name[rr]);
		if (rr == REJECT_NONE) {
			bool fits = encode_fits(&s, r->cfg.cap);
			check_too_long(&s, r->cfg.cap, !fits);
			if (!fits)
				rr = REJECT_TOO_LONG;
		}
		if (rr == REJECT_NONE) {
			check_accepted(line, n, &s);
			record(r, &s);
		}
		cur_line = NULL;
	}
	CHECK(saw_partial == cut, "the cut last line was %s as partial",
	      cut ? "not flagged" : "flagged");
}

static void run_init(struct run *r, const uint8_t *header, size_t size)
{
	memset(r, 0, sizeof(*r));
	config_from(header, &r->cfg);
	struct agg_limits lim = { r->cfg.max_series, r->cfg.max_key_bytes, 0, r->cfg.cap };
	if (agg_table_init(&r->tab[0], &lim) != 0 || agg_table_init(&r->tab[1], &lim) != 0 ||
	    agg_ages_init(&r->ages, r->cfg.age_limit) != 0)
		abort();
	r->open = &r->tab[0];
	r->closed = &r->tab[1];
	agg_cursor_start(&r->cursor);
	r->mopen = &r->mod[0];
	r->mclosed = &r->mod[1];
	r->open_min_words = r->closed_min_words = arena_limit_words(r->cfg.max_key_bytes);
	r->arena_cap = 2 * size;
	r->arena = xmalloc(r->arena_cap);
	/* Exactly cap + 1 bytes each, so that ASan sees any write past them. */
	r->pt_buf = xmalloc(r->cfg.cap + 1);
	r->out_buf = xmalloc(r->cfg.cap + 1);
	r->undone_buf = xmalloc(r->cfg.cap + 1);
	packer_init(&r->pt, r->pt_buf, r->cfg.cap);
}

static void run_deinit(struct run *r)
{
	agg_table_deinit(&r->tab[0]);
	agg_table_deinit(&r->tab[1]);
	agg_ages_deinit(&r->ages);
	model_free(&r->mod[0]);
	model_free(&r->mod[1]);
	model_free(&r->mages);
	expect_free(&r->want);
	free(r->arena);
	free(r->pt_buf);
	free(r->out_buf);
	free(r->undone_buf);
	free(r->ptq);
}

int fuzz_check(const uint8_t *data, size_t size)
{
	struct run r;

	if (size < FUZZ_HEADER)
		return 0;
	global_init();
	run_init(&r, data, size);

	const uint8_t *p = data + FUZZ_HEADER, *end = data + size;
	while (p <= end) {
		const uint8_t *sep = memchr(p, FUZZ_SEP, (size_t)(end - p));
		const uint8_t *rec_end = sep ? sep : end;
		size_t len = (size_t)(rec_end - p);

		if (len > 0 && p[0] == FUZZ_FLUSH) {
			flush(&r, len > 1 && p[1] != 0xff ? p[1] : SIZE_MAX, len > 2 && p[2] != 0);
		} else if (len > 0 && p[0] == FUZZ_LIMITS) {
			reload(&r, p + 1, len - 1);
		} else if (len > 0 && p[0] == FUZZ_FORGET) {
			forget(&r, (const char *)p + 1, len - 1);
		} else {
			bool truncated = len > 0 && p[0] == FUZZ_TRUNC;
			const uint8_t *d = p + truncated;
			size_t dlen = len - truncated;
			/* The listener reads at most 65535 bytes and flags the rest. */
			if (dlen > PROTO_MAX_LINE) {
				dlen = PROTO_MAX_LINE;
				truncated = true;
			}
			/* A datagram of its own, exactly its size, for ASan. */
			char *buf = xmalloc(dlen);
			memcpy(buf, d, dlen);
			ingest(&r, buf, dlen, truncated);
			free(buf);
		}
		if (!sep)
			break;
		p = sep + 1;
	}
	flush(&r, SIZE_MAX, false);
	flush(&r, SIZE_MAX, false); /* the window left open by a partial delivery, if any */
	CHECK(agg_cursor_done(r.closed, &r.cursor) && agg_table_count(r.open) == 0,
	      "the last window was not delivered");

	run_deinit(&r);
	return 0;
}
