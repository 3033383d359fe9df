/* fuzz_check.c - see fuzz_check.h. The order below is the order of the data:
 * failing, the configuration, the reference for one line, the model of a
 * window table, then the simulated relay that ties them together. */
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
};

/* Half of the max_datagram values fall in 512..2559, where lines of a small
 * input fill datagrams and hit too-long; the other half spread to 65507. The
 * limits are small unless the top bit asks for the daemon's defaults. */
static void limits_from(const uint8_t *h, size_t n, struct config *c)
{
	if (n > 0)
		c->max_series = h[0] & 0x80 ? 1000000 : 1 + (size_t)(h[0] & 0x7f);
	if (n > 1)
		c->age_limit = h[1] & 0x80 ? 1000 : (size_t)(h[1] & 0x0f);
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
 * The model of a window table: docs/protocol.md 12.2 and aggregate.h, kept
 * in a plain FNV hash over an array in insertion order
 * ------------------------------------------------------------------------ */

struct mentry {
	uint8_t kind;
	uint32_t len;
	const char *id; /* in the run's arena */
	struct agg_value val;
};

struct model {
	struct mentry *e;
	size_t n, cap;
	uint32_t *slot; /* entry index + 1; 0 is empty */
	size_t nslot;   /* a power of two, or 0 before the first key */
	size_t key_bytes; /* the ids' bytes, which max_key_bytes bounds */
};

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
	m->e[i] = m->e[--m->n];
	memset(m->slot, 0, m->nslot * sizeof(*m->slot));
	for (size_t j = 0; j < m->n; j++)
		model_place(m, j);
}

static void model_clear(struct model *m)
{
	m->n = 0;
	m->key_bytes = 0;
	if (m->slot)
		memset(m->slot, 0, m->nslot * sizeof(*m->slot));
}

static void model_free(struct model *m)
{
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

/* ------------------------------------------------------------------------
 * The simulated relay: what listener.c and window.c do with the pure core
 * ------------------------------------------------------------------------ */

/* Fixed, and not a short decimal, so that a rewritten age gauge 0 needs all
 * 17 digits. */
#define FUZZ_NOW 1711234567.123456789

struct run {
	struct config cfg;
	struct agg_table tab[2], *open, *closed;
	struct agg_cursor cursor; /* in closed: entries before it were delivered */
	size_t cursor_idx; /* the same, as an index of the model */
	struct keytab_entry **passed; /* the entries one datagram went past */
	size_t passed_cap;
	struct agg_ages ages;
	struct model mod[2], *mopen, *mclosed;
	struct model mages; /* the age-gauge set: ids forwarded, minus those forgotten */

	char *arena; /* copies of accepted ids; lives for the run */
	size_t arena_len, arena_cap;

	char *pt_buf; /* the open pass-through datagram, cap bytes */
	struct packer pt;
	struct sample *ptq; /* what each of its lines must re-parse to */
	size_t ptq_len, ptq_cap;

	char *out_buf, *spare_buf; /* table datagrams, cap bytes each */
};

static const char *arena_copy(struct run *r, const char *p, size_t n)
{
	/* A canonical id is never longer than the bytes it came from, and every
	 * line is made of distinct input bytes: the arena cannot run out. */
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

/* The table is the model, entry by entry, in insertion order. */
static void check_table(const struct agg_table *t, const struct model *m)
{
	CHECK(agg_table_count(t) == m->n, "table holds %zu keys, model %zu", agg_table_count(t),
	      m->n);
	size_t pos = 0;
	for (size_t i = 0; i < m->n; i++) {
		struct keytab_entry *e = keytab_next(&t->kt, &pos);
		CHECK(e != NULL, "the table ends at entry %zu of %zu", i, m->n);
		const struct agg_value *v = keytab_val(e);
		const struct mentry *me = &m->e[i];
		const char *key = keytab_key(&t->kt, e);

		CHECK(e->kind == me->kind && e->key_len == me->len &&
			      memcmp(key, me->id, me->len) == 0,
		      "entry %zu is %c:%.*s, model %c:%.*s", i, e->kind, (int)e->key_len, key,
		      me->kind, (int)me->len, me->id);
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
	CHECK(keytab_next(&t->kt, &pos) == NULL, "the table holds more than the model");
}

/* One forwarded line against the table entry it came from. */
static void check_entry_line(const struct agg_table *t, struct keytab_entry *e, const char *line,
			     size_t len)
{
	const struct agg_value *v = keytab_val(e);
	uint8_t kind = e->kind;
	enum meter_type type = (enum meter_type)meter_from_symbol(kind);
	struct sample got;

	cur_line = line;
	cur_len = len;
	enum reject_reason rr = proto_parse_line(&g.rp, line, len, &got);
	CHECK(rr == REJECT_NONE, "forwarded merged line refused: %s", reject_reason_name[rr]);

	const char *key = keytab_key(&t->kt, e);
	const char *comma = memchr(key, ',', e->key_len); /* a canonical name has none */
	struct sample want = {
		.type = type,
		.has_extra = type == METER_GAUGE && v->ttl != 0,
		.extra = type == METER_GAUGE ? v->ttl : 0,
		.id = key,
		.id_len = e->key_len,
		.name_len = comma ? (uint32_t)(comma - key) : e->key_len,
	};
	if (type == METER_MONO_U64)
		want.v.u = v->v.u;
	else
		want.v.d = v->v.d;
	check_same_sample(&got, &want);
	cur_line = NULL;
}

/* The upstream takes up to `take` datagrams of the closed window, as
 * window.c's source_next() hands them out. r->cursor is the table position
 * of the first undelivered entry, r->cursor_idx its index in the model.
 * Returns the datagrams taken. */
static size_t deliver(struct run *r, size_t take)
{
	const struct agg_table *t = r->closed;
	size_t count = agg_table_count(t), k;

	for (k = 0; k < take && !agg_cursor_done(t, &r->cursor); k++) {
		struct packer pk;
		size_t from = r->cursor.pos, from_idx = r->cursor_idx, dist;

		packer_init(&pk, r->out_buf, r->cfg.cap);
		size_t lines = packer_add_table(&pk, t, &r->cursor, &dist);
		size_t to = agg_cursor_done(t, &r->cursor) ? t->kt.arena_len : r->cursor.pos;
		CHECK(dist == 0, "distribution lines from a table without them");
		CHECK(to >= from && to <= t->kt.arena_len, "cursor moved from %zu to %zu of %zu",
		      from, to, t->kt.arena_len);
		CHECK(pk.lines == lines, "packer holds %zu lines, returned %zu", pk.lines, lines);
		/* The entries passed, in the model's order. */
		size_t pos = from;
		struct keytab_entry *e;
		size_t npassed = 0;
		while (pos < to && (e = keytab_next(&t->kt, &pos))) {
			if (npassed == r->passed_cap) {
				r->passed_cap = r->passed_cap ? r->passed_cap * 2 : 256;
				r->passed = xrealloc(r->passed, r->passed_cap * sizeof(*r->passed));
			}
			r->passed[npassed++] = e;
		}
		CHECK(pos == to, "cursor between entries");
		r->cursor_idx += npassed;
		CHECK(r->cursor_idx <= count, "passed %zu entries of %zu", r->cursor_idx, count);
		if (lines == 0) {
			/* Only entries that emit nothing may be left: any line of a
			 * table must fit an empty datagram, or it is never sent. */
			CHECK(agg_cursor_done(t, &r->cursor), "entry %zu fits no %zu-byte datagram",
			      r->cursor_idx, r->cfg.cap);
			for (size_t i = from_idx; i < count; i++)
				CHECK(!model_emits(&r->mclosed->e[i]), "entry %zu skipped", i);
			k++;
			break;
		}
		check_frame(r, pk.buf, pk.len, lines);

		const char *p = pk.buf, *end = pk.buf + pk.len, *line;
		size_t len;
		for (size_t i = 0; i < npassed; i++) {
			if (!model_emits(&r->mclosed->e[from_idx + i]))
				continue;
			CHECK(next_out_line(&p, end, &line, &len), "entry %zu has no line",
			      from_idx + i);
			check_entry_line(t, r->passed[i], line, len);
		}
		CHECK(p == end, "more lines than entries that emit");

		/* Greedy: the datagram ended because the next line did not fit. */
		if (!agg_cursor_done(t, &r->cursor)) {
			struct packer rest;
			struct agg_cursor c = r->cursor;
			CHECK(model_emits(&r->mclosed->e[r->cursor_idx]),
			      "stopped at entry %zu, which emits nothing", r->cursor_idx);
			packer_init(&rest, r->spare_buf, r->cfg.cap - pk.len);
			CHECK(packer_add_table(&rest, t, &c, &dist) == 0 && c.pos == r->cursor.pos,
			      "stopped at entry %zu with room for it", r->cursor_idx);
		}
	}
	return k;
}

/* window_flush(): push the pass-through datagram; if the upstream has not
 * taken all of the last window, it takes more now, and if that is still not
 * all, the open window stays open (it is not folded or dropped); otherwise
 * the tables swap and the upstream takes what it can of the new one. */
static void flush(struct run *r, size_t take)
{
	pt_push(r);
	if (!agg_cursor_done(r->closed, &r->cursor)) {
		size_t taken = deliver(r, take);
		take = take == SIZE_MAX ? SIZE_MAX : take - taken;
		if (!agg_cursor_done(r->closed, &r->cursor))
			return;
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
	agg_cursor_start(&r->cursor);
	r->cursor_idx = 0;

	check_table(r->closed, r->mclosed);
	deliver(r, take);
}

/* window_reconfigure(), minus max_datagram (see fuzz_check.h). */
static void reload(struct run *r, const uint8_t *p, size_t n)
{
	limits_from(p, n, &r->cfg);
	struct agg_limits lim = { r->cfg.max_series, r->cfg.max_key_bytes, 0, r->cfg.cap };
	agg_table_set_limits(&r->tab[0], &lim);
	agg_table_set_limits(&r->tab[1], &lim);
	r->ages.limit = r->cfg.age_limit;
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
			if (meter_keeps_text(s.type))
				pt_record(r, &s);
			else
				merged_record(r, &s);
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
	r->arena_cap = size;
	r->arena = xmalloc(r->arena_cap);
	/* Exactly cap bytes each, so that ASan sees any write past the cap. */
	r->pt_buf = xmalloc(r->cfg.cap + 1);
	r->out_buf = xmalloc(r->cfg.cap + 1);
	r->spare_buf = xmalloc(r->cfg.cap + 1);
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
	free(r->arena);
	free(r->pt_buf);
	free(r->out_buf);
	free(r->spare_buf);
	free(r->ptq);
	free(r->passed);
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
			flush(&r, len > 1 && p[1] != 0xff ? p[1] : SIZE_MAX);
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
	flush(&r, SIZE_MAX);
	flush(&r, SIZE_MAX); /* the window left open by a partial delivery, if any */
	CHECK(agg_cursor_done(r.closed, &r.cursor) && agg_table_count(r.open) == 0,
	      "the last window was not delivered");

	run_deinit(&r);
	return 0;
}
