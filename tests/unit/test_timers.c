/* test_timers.c - t T d D lines merged into the statistics SpectatorD
 * publishes for them (docs/protocol.md 12.9), through the pure core: the
 * parser, the window table and the encoder, as window.c drives them.
 *
 * The exact-line tests spell out SpectatorD's arithmetic for each type, the
 * zero rule, the shorter form and the tags. The model-based test then checks
 * random windows: what SpectatorD would publish from the lines the relay
 * forwards must be what it would publish from the samples as sent. Its model
 * of SpectatorD (6.2) is written from the protocol document, not from
 * aggregate.c or encode.c; it shares only the bucket index (percentile.h),
 * which test_percentile checks row by row against the shared table. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "encode.h"
#include "percentile.h"
#include "protocol.h"
#include "testutil.h"

static struct proto_parser ps;
/* Reads back what the relay sent: a sample from ps still in use is not
 * overwritten (an id rebuilt by the parser lives in its scratch). */
static struct proto_parser back;

/* Check records every ck_assert that passes (a write(2) each): the hot
 * paths of the random test use this, which costs nothing until it fails. */
#define require(cond, ...)                         \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

static void setup(void)
{
	ck_assert_int_eq(proto_parser_init(&ps), 0);
	ck_assert_int_eq(proto_parser_init(&back), 0);
}

static void teardown(void)
{
	proto_parser_deinit(&ps);
	proto_parser_deinit(&back);
}

/* A growing string. */
struct text {
	char *p;
	size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		while (t->len + n + 1 > t->cap)
			t->cap = t->cap ? t->cap * 2 : 4096;
		t->p = realloc(t->p, t->cap);
		require(t->p != NULL, "out of memory");
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

/* ------------------------------------------------------------------------
 * A model of SpectatorD's publish (docs/protocol.md 6.1, 6.2)
 *
 * Meters by id: counters (a c line's id gets statistic=count unless it has
 * a statistic tag; percentile buckets are counters too), max gauges
 * (statistic=max forced), timers (t and T of one id share one) and
 * distribution summaries (d and D share one). publish() lists every
 * measurement with its op (add for count, totalTime, totalAmount,
 * totalOfSquares and percentile; max for the rest) and folds those of one id
 * as Atlas does: add ops summed, max ops maxed.
 * ------------------------------------------------------------------------ */

#define MODEL_SLOTS 1024
#define MODEL_ID_MAX 1024

struct meter {
	struct meter *next;
	uint64_t count;
	/* Timers: wider than SpectatorD's int64, so that a window whose total
	 * the relay had to split at an int64 overflow compares with the true
	 * sum; SpectatorD itself would overflow on the samples sent directly. */
	__int128 total_ns;
	int64_t max_ns;
	double sum;     /* counters; summaries' total */
	double sum_sq;
	double max;     /* max gauges (from -DBL_MAX); summaries (from 0) */
	char key[];     /* the meter's kind ('c' 'm' 't' 'd'), then its id */
};

struct model {
	struct meter *slot[MODEL_SLOTS];
};

static struct meter *meter_of(struct model *m, char kind, const char *id, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ (uint8_t)kind;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)id[i]) * 1099511628211ull;
	struct meter **p = &m->slot[h % MODEL_SLOTS];
	for (struct meter *e = *p; e; e = e->next)
		if (e->key[0] == kind && strlen(e->key + 1) == len && memcmp(e->key + 1, id, len) == 0)
			return e;
	struct meter *e = calloc(1, sizeof(*e) + len + 2);
	require(e != NULL, "out of memory");
	e->key[0] = kind;
	memcpy(e->key + 1, id, len);
	e->key[len + 1] = '\0';
	if (kind == 'm')
		e->max = -DBL_MAX;
	e->next = *p;
	*p = e;
	return e;
}

static void model_clear(struct model *m)
{
	for (size_t i = 0; i < MODEL_SLOTS; i++) {
		for (struct meter *e = m->slot[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
		m->slot[i] = NULL;
	}
}

struct tag {
	const char *k, *v;
	size_t kl, vl;
};

static int tag_cmp(const void *a, const void *b)
{
	const struct tag *x = a, *y = b;
	int c = memcmp(x->k, y->k, x->kl < y->kl ? x->kl : y->kl);

	return c != 0 ? c : (x->kl > y->kl) - (x->kl < y->kl);
}

/* Writes into dst (MODEL_ID_MAX bytes, NUL-terminated) the id with tag
 * key=val: replacing one of that key when force (SpectatorD's WithStat), or
 * only when there is none (WithDefaultStat). Tags come out sorted by key.
 * Returns the length. */
static size_t id_with(char *dst, const char *id, size_t len, const char *key, const char *val,
		      bool force)
{
	struct tag tags[64];
	size_t n = 0, klen = strlen(key), w;
	const char *end = id + len, *p = memchr(id, ',', len);
	size_t name_len = p ? (size_t)(p - id) : len;
	bool found = false;

	while (p) {
		const char *k = p + 1, *comma = memchr(k, ',', (size_t)(end - k));
		const char *stop = comma ? comma : end, *eq = memchr(k, '=', (size_t)(stop - k));
		require(eq != NULL, "tag without '=' in %.*s", (int)len, id);
		require(n < 63, "too many tags in %.*s", (int)len, id);
		tags[n] = (struct tag){ k, eq + 1, (size_t)(eq - k), (size_t)(stop - eq - 1) };
		if (tags[n].kl == klen && memcmp(k, key, klen) == 0) {
			found = true;
			if (force)
				tags[n].v = val, tags[n].vl = strlen(val);
		}
		n++;
		p = comma;
	}
	if (!found)
		tags[n++] = (struct tag){ key, val, klen, strlen(val) };
	qsort(tags, n, sizeof(tags[0]), tag_cmp);
	require(name_len < MODEL_ID_MAX, "id too long");
	memcpy(dst, id, name_len);
	w = name_len;
	for (size_t i = 0; i < n; i++) {
		require(w + 2 + tags[i].kl + tags[i].vl < MODEL_ID_MAX, "id too long");
		dst[w++] = ',';
		memcpy(dst + w, tags[i].k, tags[i].kl);
		w += tags[i].kl;
		dst[w++] = '=';
		memcpy(dst + w, tags[i].v, tags[i].vl);
		w += tags[i].vl;
	}
	dst[w] = '\0';
	return w;
}

static void count_bucket(struct model *m, const char *id, size_t len, char prefix, size_t index)
{
	char tag[8], a[MODEL_ID_MAX], b[MODEL_ID_MAX];

	snprintf(tag, sizeof(tag), "%c%04zX", prefix, index);
	size_t n = id_with(a, id, len, "percentile", tag, true);
	n = id_with(b, a, n, "statistic", "percentile", true);
	meter_of(m, 'c', b, n)->sum += 1;
}

/* One line as SpectatorD applies it. */
static void model_feed(struct model *m, const struct sample *s)
{
	char id[MODEL_ID_MAX];
	size_t n;
	struct meter *e;

	switch (s->type) {
	case METER_COUNTER:
		if (!(s->v.d >= 0))
			return; /* negative and NaN deltas are ignored */
		n = id_with(id, s->id, s->id_len, "statistic", "count", false);
		meter_of(m, 'c', id, n)->sum += s->v.d;
		return;
	case METER_MAX:
		n = id_with(id, s->id, s->id_len, "statistic", "max", true);
		e = meter_of(m, 'm', id, n);
		if (s->v.d > e->max)
			e->max = s->v.d;
		return;
	case METER_TIMER:
	case METER_PCT_TIMER: {
		int64_t ns = (int64_t)(s->v.d * 1e9);
		e = meter_of(m, 't', s->id, s->id_len);
		if (ns >= 0) {
			e->count++;
			e->total_ns += ns;
			e->sum_sq += (double)ns * (double)ns;
			if (ns > e->max_ns)
				e->max_ns = ns;
		}
		if (s->type == METER_PCT_TIMER) {
			int64_t c = ns < 1 ? 1 : ns > 86400000000000ll ? 86400000000000ll : ns;
			count_bucket(m, s->id, s->id_len, 'T', pct_bucket_index(c));
		}
		return;
	}
	case METER_DIST:
	case METER_PCT_DIST: {
		double x = s->type == METER_PCT_DIST ? (double)(int64_t)s->v.d : s->v.d;
		if (!(x >= 0))
			return;
		e = meter_of(m, 'd', s->id, s->id_len);
		e->count++;
		e->sum += x;
		e->sum_sq += x * x;
		if (x > e->max)
			e->max = x;
		if (s->type == METER_PCT_DIST)
			count_bucket(m, s->id, s->id_len, 'D', pct_bucket_index((int64_t)s->v.d));
		return;
	}
	default:
		ck_abort_msg("the relay forwarded a line of type %c", meter_symbol[s->type]);
	}
}

enum op { OP_ADD, OP_MAX };

struct meas {
	char *id;
	enum op op;
	double v;
};

struct pub {
	struct meas *m;
	size_t n, cap;
};

/* The op SpectatorD gives a measurement, by its statistic tag. */
static enum op op_of(const char *id)
{
	static const char *const add[] = { "count", "totalTime", "totalAmount", "totalOfSquares",
					   "percentile" };
	const char *p = strstr(id, ",statistic=");

	require(p != NULL, "%s: no statistic tag", id);
	p += strlen(",statistic=");
	size_t len = strcspn(p, ",");
	for (size_t i = 0; i < sizeof(add) / sizeof(add[0]); i++)
		if (strlen(add[i]) == len && memcmp(add[i], p, len) == 0)
			return OP_ADD;
	return OP_MAX;
}

static void pub_add(struct pub *p, const char *id, enum op op, double v)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 256;
		p->m = realloc(p->m, p->cap * sizeof(*p->m));
		require(p->m != NULL, "out of memory");
	}
	p->m[p->n].id = strdup(id);
	p->m[p->n].op = op;
	p->m[p->n].v = v;
	p->n++;
}

static void pub_stat(struct pub *p, const char *base, const char *stat, enum op op, double v)
{
	char id[MODEL_ID_MAX];

	id_with(id, base, strlen(base), "statistic", stat, true);
	pub_add(p, id, op, v);
}

static int meas_cmp(const void *a, const void *b)
{
	return strcmp(((const struct meas *)a)->id, ((const struct meas *)b)->id);
}

/* One step's measurements, folded by id, sorted, into p (emptied first). */
static void model_publish(const struct model *m, struct pub *p)
{
	struct pub raw = { 0 };

	for (size_t i = 0; i < MODEL_SLOTS; i++) {
		for (const struct meter *e = m->slot[i]; e; e = e->next) {
			const char *id = e->key + 1;
			switch (e->key[0]) {
			case 'c':
				if (e->sum > 0) /* a counter summing to 0 is not published */
					pub_add(&raw, id, op_of(id), e->sum);
				break;
			case 'm':
				if (e->max != -DBL_MAX)
					pub_add(&raw, id, OP_MAX, e->max);
				break;
			case 't':
				if (e->count == 0)
					break;
				pub_stat(&raw, id, "count", OP_ADD, (double)e->count);
				pub_stat(&raw, id, "totalTime", OP_ADD, (double)e->total_ns / 1e9);
				pub_stat(&raw, id, "totalOfSquares", OP_ADD, e->sum_sq / 1e18);
				pub_stat(&raw, id, "max", OP_MAX, (double)e->max_ns / 1e9);
				break;
			case 'd':
				if (e->count == 0)
					break;
				pub_stat(&raw, id, "count", OP_ADD, (double)e->count);
				pub_stat(&raw, id, "totalAmount", OP_ADD, e->sum);
				pub_stat(&raw, id, "totalOfSquares", OP_ADD, e->sum_sq);
				pub_stat(&raw, id, "max", OP_MAX, e->max);
				break;
			}
		}
	}
	qsort(raw.m, raw.n, sizeof(raw.m[0]), meas_cmp);
	for (size_t i = 0; i < p->n; i++)
		free(p->m[i].id);
	p->n = 0;
	for (size_t i = 0; i < raw.n; i++) {
		struct meas *prev = p->n ? &p->m[p->n - 1] : NULL;
		if (prev && strcmp(prev->id, raw.m[i].id) == 0) {
			require(prev->op == raw.m[i].op, "%s: two ops", prev->id);
			if (prev->op == OP_ADD)
				prev->v += raw.m[i].v;
			else if (raw.m[i].v > prev->v)
				prev->v = raw.m[i].v;
			free(raw.m[i].id);
			continue;
		}
		pub_add(p, raw.m[i].id, raw.m[i].op, raw.m[i].v);
		free(raw.m[i].id);
	}
	free(raw.m);
}

static void pub_free(struct pub *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->m[i].id);
	free(p->m);
	memset(p, 0, sizeof(*p));
}

static bool is_total(const char *id)
{
	return strstr(id, "statistic=totalTime") || strstr(id, "statistic=totalAmount") ||
	       strstr(id, "statistic=totalOfSquares");
}

/* Whether two publishes differ: other ids, or counts, buckets and maxima
 * not equal, or totals not within 1e-12 relative. why says where. */
static bool pub_differs(const struct pub *direct, const struct pub *relayed, char *why,
			size_t cap)
{
	for (size_t i = 0; i < direct->n || i < relayed->n; i++) {
		const char *a = i < direct->n ? direct->m[i].id : "(none)";
		const char *b = i < relayed->n ? relayed->m[i].id : "(none)";
		if (strcmp(a, b) != 0) {
			snprintf(why, cap, "published ids differ: direct %s, relayed %s", a, b);
			return true;
		}
		double x = direct->m[i].v, y = relayed->m[i].v;
		bool same = direct->m[i].op == relayed->m[i].op &&
			    (x == y || (is_total(a) && fabs(x - y) <= 1e-12 * fmax(fabs(x), fabs(y))));
		if (!same) {
			snprintf(why, cap, "%s: direct %.17g (op %d), relayed %.17g (op %d)", a, x,
				 direct->m[i].op, y, relayed->m[i].op);
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------------------
 * A window, as window.c runs one: each accepted line is merged into the
 * table or forwarded as it came (pass-through, sent before the table); at
 * the close, the table's lines in datagrams of max_datagram bytes. Every
 * line sent must read back through the parser as valid and canonical.
 * ------------------------------------------------------------------------ */

struct win {
	struct agg_table t;
	struct agg_ages ages;
	size_t max_datagram;
	char *pt_buf, *t_buf;  /* max_datagram + 1 bytes each */
	struct packer pt;      /* the open window's pass-through lines */
	struct text out;       /* every line sent, in order */
	struct model *relayed; /* fed every line sent, when set */
	size_t lines_in, unmerged, lines_out; /* as timers.* in stats */
	size_t datagrams;
};

static void win_init(struct win *w, const struct agg_limits *lim)
{
	memset(w, 0, sizeof(*w));
	ck_assert_int_eq(agg_table_init(&w->t, lim), 0);
	ck_assert_int_eq(agg_ages_init(&w->ages, 10), 0);
	w->max_datagram = lim->max_line;
	w->pt_buf = malloc(w->max_datagram + 1);
	w->t_buf = malloc(w->max_datagram + 1);
	ck_assert(w->pt_buf && w->t_buf);
	packer_init(&w->pt, w->pt_buf, w->max_datagram);
}

static void win_deinit(struct win *w)
{
	agg_table_deinit(&w->t);
	agg_ages_deinit(&w->ages);
	free(w->pt_buf);
	free(w->t_buf);
	free(w->out.p);
}

/* Sends one datagram: checks its shape and every line in it. */
static void ship(struct win *w, struct packer *pk)
{
	struct proto_lines it;
	const char *l;
	size_t len;
	bool partial;

	if (pk->lines == 0)
		return;
	require(pk->len <= pk->cap + 1, "datagram of %zu bytes, cap %zu", pk->len, pk->cap);
	require(pk->buf[0] != '\n' && pk->buf[pk->len - 1] == '\n', "datagram %.*s: not whole lines",
		(int)pk->len, pk->buf);
	proto_lines_init(&it, pk->buf, pk->len, false);
	size_t lines = 0;
	while (proto_lines_next(&it, &l, &len, &partial)) {
		struct sample s;
		enum reject_reason r = proto_parse_line(&back, l, len, &s);
		require(r == REJECT_NONE, "sent %.*s: %s", (int)len, l, reject_reason_name[r]);
		/* Canonical: no extra, and the id as written is the parser's. */
		require(l[1] == ':' && s.id_len + 3 < len && l[2 + s.id_len] == ':' &&
				memcmp(l + 2, s.id, s.id_len) == 0,
			"sent %.*s: not canonical", (int)len, l);
		if (w->relayed)
			model_feed(w->relayed, &s);
		text_add(&w->out, l, len);
		text_add(&w->out, "\n", 1);
		lines++;
	}
	require(lines == pk->lines, "%zu lines read back, %zu written", lines, pk->lines);
	w->datagrams++;
	packer_reset(pk);
}

/* One accepted line. Like window.c, it merges only a series whose every
 * line fits a datagram (encode_dist_fits()); the others go as they came. */
static void win_send(struct win *w, const char *line)
{
	struct sample s;
	enum reject_reason r = proto_parse_line(&ps, line, strlen(line), &s);

	require(r == REJECT_NONE, "%s: %s", line, reject_reason_name[r]);
	require(agg_is_dist(s.type), "%s: not t T d D", line);
	require(encode_fits(&s, w->max_datagram), "%s: too long", line);
	struct agg_outcome out = { .forward = true };
	if (encode_dist_fits(s.id_len, w->max_datagram)) {
		r = agg_table_record(&w->t, &w->ages, &s, 0, &out);
		require(r == REJECT_NONE, "%s refused: %s", line, reject_reason_name[r]);
		require(!out.split, "%s: split", line);
	}
	if (!out.forward) {
		w->lines_in++;
		return;
	}
	w->unmerged++;
	if (!packer_add_sample(&w->pt, &s)) {
		ship(w, &w->pt);
		require(packer_add_sample(&w->pt, &s), "%s: fits no datagram", line);
	}
}

static void win_close(struct win *w)
{
	struct agg_cursor c;
	struct packer pk;

	ship(w, &w->pt);
	packer_init(&pk, w->t_buf, w->max_datagram);
	agg_cursor_start(&c);
	for (size_t guard = 0; !agg_cursor_done(&w->t, &c); guard++) {
		size_t dist, n = packer_add_table(&pk, &w->t, &c, &dist);
		require(guard < 1000000, "the table never ends");
		/* Every line fits: no reload shrank max_datagram. */
		require(n > 0, "a line fits no datagram");
		require(n == dist, "scalar lines in a table of timers");
		w->lines_out += n;
		ship(w, &pk);
	}
	agg_table_clear(&w->t);
}

static const struct agg_limits roomy = { 100000, 1 << 24, 0, 65535 };

/* Sends the lines (NULL-terminated) through one window and checks what the
 * relay sent, line by line. */
static void expect_window(const char *const *in, const char *want)
{
	struct win w;

	win_init(&w, &roomy);
	for (size_t i = 0; in[i]; i++)
		win_send(&w, in[i]);
	win_close(&w);
	ck_assert_str_eq(w.out.p ? w.out.p : "", want);
	win_deinit(&w);
}

#define LINES(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The series' entry in the table. */
static const struct agg_dist *dist_of(const struct agg_table *t, char sym, const char *id)
{
	struct keytab_entry *e = keytab_find(&t->dt, keytab_hash((uint8_t)sym, id, strlen(id)),
					     (uint8_t)sym, id, strlen(id));
	ck_assert_msg(e != NULL, "%c:%s not in the table", sym, id);
	return keytab_val(e);
}

/* ------------------------------------------------------------------------
 * The arithmetic of each type
 * ------------------------------------------------------------------------ */

/* t: x = int64(v * 1e9), truncated: 1.5e-8 * 1e9 = 14.999999999999998 is
 * 14 ns, 1e-10 is 0 ns, 9.2233720368 is 9223372036 ns. The total is exact in
 * ns; the sum of squares a double sum in arrival order; the max in ns. */
START_TEST(timer_arithmetic)
{
	expect_window(LINES("t:lat:0.5", "t:lat:1.5e-8", "t:lat:1e-10", "t:lat:9.2233720368",
			    "t:lat:0.25"),
		      "c:lat,statistic=count:5\n"
		      "c:lat,statistic=totalTime:9.97337205\n"
		      /* (5e8^2 + 14^2 + 0 + 9223372036^2 + 2.5e8^2) / 1e18 */
		      "c:lat,statistic=totalOfSquares:85.38309171446679\n"
		      "m:lat,statistic=max:9.223372036\n");
}
END_TEST

/* T: as t, and each sample's bucket after the clamp to [1 ns, 24 h]: 0 and
 * 1e-10 s count in T0001 (1 ns), 86400.5 s, 100000 s and 200000 s in T00CC
 * (24 h); 14 ns in T000E, 16 ns in T000F (the top of its range spills).
 * The max is not clamped. */
START_TEST(percentile_timer_arithmetic)
{
	expect_window(LINES("T:rt:0", "T:rt:1e-10", "T:rt:86400.5", "T:rt:100000", "T:rt:1.5e-8",
			    "T:rt:1.6e-8", "T:rt:0.001", "T:rt:0.0011", "T:rt:5e-10",
			    "T:rt:200000", "T:rt:0.0010005"),
		      "c:rt,statistic=count:11\n"
		      "c:rt,statistic=totalTime:386400.50310053\n"
		      "c:rt,statistic=totalOfSquares:57465046400.25\n"
		      "m:rt,statistic=max:200000\n"
		      "c:rt,percentile=T0001,statistic=percentile:3\n"
		      "c:rt,percentile=T000E,statistic=percentile:1\n"
		      "c:rt,percentile=T000F,statistic=percentile:1\n"
		      "c:rt,percentile=T0056,statistic=percentile:2\n"
		      "c:rt,percentile=T0057,statistic=percentile:1\n"
		      "c:rt,percentile=T00CC,statistic=percentile:3\n");
}
END_TEST

/* d: the values themselves, summed in arrival order: 0.1 + 0.2 + 0.3 + 0.4
 * + 0.001 is 1.001 that way, 1.0010000000000001 the other way round. */
START_TEST(distribution_arithmetic)
{
	expect_window(LINES("d:amt:0.1", "d:amt:0.2", "d:amt:0.3", "d:amt:0.4", "d:amt:0.001"),
		      "c:amt,statistic=count:5\n"
		      "c:amt,statistic=totalAmount:1.001\n"
		      "c:amt,statistic=totalOfSquares:0.300001\n"
		      "m:amt,statistic=max:0.4\n");
}
END_TEST

/* D: int64(v), truncated, not rounded (1.9 is 1, 0.5 is 0), and a bucket
 * with no clamp: 0 counts in D0000, where a T sample of 0 would count in
 * T0001. */
START_TEST(percentile_distribution_arithmetic)
{
	expect_window(LINES("D:sz:1.9", "D:sz:2.5", "D:sz:0.5", "D:sz:1.2", "D:sz:2.7", "D:sz:3.9",
			    "D:sz:1.99", "D:sz:2.2", "D:sz:1.5"),
		      "c:sz,statistic=count:9\n"
		      "c:sz,statistic=totalAmount:13\n"
		      "c:sz,statistic=totalOfSquares:25\n"
		      "m:sz,statistic=max:3\n"
		      "c:sz,percentile=D0000,statistic=percentile:1\n"
		      "c:sz,percentile=D0001,statistic=percentile:4\n"
		      "c:sz,percentile=D0002,statistic=percentile:3\n"
		      "c:sz,percentile=D0003,statistic=percentile:1\n");
	/* Nor is the top clamped: 4e18 counts in D0112, 9.2e18 in D0113. */
	expect_window(LINES("D:big:4e18", "D:big:4e18", "D:big:4e18", "D:big:4e18", "D:big:4e18",
			    "D:big:4e18", "D:big:9.2e18"),
		      "c:big,statistic=count:7\n"
		      "c:big,statistic=totalAmount:3.32e+19\n"
		      "c:big,statistic=totalOfSquares:1.8064000000000002e+38\n"
		      "m:big,statistic=max:9.2e+18\n"
		      "c:big,percentile=D0112,statistic=percentile:6\n"
		      "c:big,percentile=D0113,statistic=percentile:1\n");
}
END_TEST

/* t and T of one id are two series in the relay, as c and C are; SpectatorD
 * adds their statistics in one timer, which the model test checks. */
START_TEST(types_are_part_of_the_key)
{
	expect_window(LINES("t:k:1", "T:k:2", "d:k:3", "D:k:4.5", "t:k:1", "t:k:1", "t:k:1",
			    "t:k:1"),
		      "c:k,statistic=count:5\n"
		      "c:k,statistic=totalTime:5\n"
		      "c:k,statistic=totalOfSquares:5\n"
		      "m:k,statistic=max:1\n"
		      "T:k:2\n"
		      "d:k:3\n"
		      "D:k:4.5\n");
}
END_TEST

/* ------------------------------------------------------------------------
 * The zero rule: a timer with samples publishes totalTime and
 * totalOfSquares of 0, which no counter can carry. When every sample
 * squares to 0, the first goes as it came and the rest are merged.
 * ------------------------------------------------------------------------ */

START_TEST(zero_rule)
{
	/* All zeros: no total, no sum of squares, no max line (the first
	 * sample's meter publishes all three). */
	expect_window(LINES("t:z:0", "t:z:0", "t:z:0", "t:z:0", "t:z:0", "t:z:0"),
		      "t:z:0\n"
		      "c:z,statistic=count:5\n");
	/* Below a nanosecond every t sample is 0 ns; the first keeps its text. */
	expect_window(LINES("t:s:1e-10", "t:s:4e-10", "t:s:9e-10", "t:s:0", "t:s:5e-10"),
		      "t:s:1e-10\n"
		      "c:s,statistic=count:4\n");
	/* T: all in T0001 (clamped to 1 ns); the first counts there itself. */
	expect_window(LINES("T:zb:0", "T:zb:1e-10", "T:zb:0", "T:zb:0", "T:zb:-0", "T:zb:0"),
		      "T:zb:0\n"
		      "c:zb,statistic=count:5\n"
		      "c:zb,percentile=T0001,statistic=percentile:5\n");
	/* D below 1 is 0, in D0000; the first goes as sent, not truncated. */
	expect_window(LINES("D:zd:0.5", "D:zd:0.2", "D:zd:0.9", "D:zd:0", "D:zd:0.1"),
		      "D:zd:0.5\n"
		      "c:zd,statistic=count:4\n"
		      "c:zd,percentile=D0000,statistic=percentile:4\n");
	/* d values whose squares underflow: a total above 0, a sum of squares
	 * of 0. The counter carries the others' total. */
	expect_window(LINES("d:u:1e-200", "d:u:1e-200", "d:u:1e-200", "d:u:1e-200", "d:u:1e-200"),
		      "d:u:1e-200\n"
		      "c:u,statistic=count:4\n"
		      "c:u,statistic=totalAmount:4e-200\n");
	/* A max above the first sample's goes as a max gauge. */
	expect_window(LINES("d:m:0", "d:m:1e-170", "d:m:0", "d:m:0", "d:m:0"),
		      "d:m:0\n"
		      "c:m,statistic=count:4\n"
		      "c:m,statistic=totalAmount:1e-170\n"
		      "m:m,statistic=max:1e-170\n");
	/* One sample of 0, of each type: forwarded as it came. */
	expect_window(LINES("t:one:0", "T:one:1e-10", "d:one:-0", "D:one:0.7"),
		      "t:one:0\n"
		      "T:one:1e-10\n"
		      "d:one:-0\n"
		      "D:one:0.7\n");
	/* One zero among samples that do not square to 0: no zero rule. */
	expect_window(LINES("t:mix:0", "t:mix:1", "t:mix:0", "t:mix:2", "t:mix:0"),
		      "c:mix,statistic=count:5\n"
		      "c:mix,statistic=totalTime:3\n"
		      "c:mix,statistic=totalOfSquares:5\n"
		      "m:mix,statistic=max:2\n");
}
END_TEST

/* ------------------------------------------------------------------------
 * The shorter form: n samples are forwarded as they came while n is no
 * larger than the lines of the statistics (4 + buckets; under the zero rule
 * the first sample plus what is not 0).
 * ------------------------------------------------------------------------ */

START_TEST(shorter_form_at_its_boundary)
{
	/* t: 4 samples take 4 lines, as many as the statistics: samples, each
	 * the shortest text of its double. 5 do not. */
	expect_window(LINES("t:b:0.0420", "t:b:1", "t:b:2", "t:b:3"),
		      "t:b:0.042\nt:b:1\nt:b:2\nt:b:3\n");
	expect_window(LINES("t:b:0.0420", "t:b:1", "t:b:2", "t:b:3", "t:b:4"),
		      "c:b,statistic=count:5\n"
		      "c:b,statistic=totalTime:10.042\n"
		      "c:b,statistic=totalOfSquares:30.001764\n"
		      "m:b,statistic=max:4\n");
	/* d and D likewise; D samples go as sent, not truncated. */
	expect_window(LINES("D:b:1.5", "D:b:1.25", "D:b:1.75", "D:b:1"),
		      "D:b:1.5\nD:b:1.25\nD:b:1.75\nD:b:1\n");
	expect_window(LINES("d:b:1.5", "d:b:1.25", "d:b:1.75", "d:b:1", "d:b:1"),
		      "c:b,statistic=count:5\n"
		      "c:b,statistic=totalAmount:6.5\n"
		      "c:b,statistic=totalOfSquares:8.875\n"
		      "m:b,statistic=max:1.75\n");
	/* T in distinct buckets: the statistics always take more lines. */
	expect_window(LINES("T:spread:0.001", "T:spread:0.01", "T:spread:0.1", "T:spread:1",
			    "T:spread:10", "T:spread:100", "T:spread:1000"),
		      "T:spread:0.001\nT:spread:0.01\nT:spread:0.1\nT:spread:1\n"
		      "T:spread:10\nT:spread:100\nT:spread:1000\n");
	/* T in 2 buckets: 6 samples are 4 + 2 lines either way; 7 are not. */
	expect_window(LINES("T:b2:0.001", "T:b2:1", "T:b2:0.001", "T:b2:1", "T:b2:0.001",
			    "T:b2:1"),
		      "T:b2:0.001\nT:b2:1\nT:b2:0.001\nT:b2:1\nT:b2:0.001\nT:b2:1\n");
	expect_window(LINES("T:b2:0.001", "T:b2:1", "T:b2:0.001", "T:b2:1", "T:b2:0.001",
			    "T:b2:1", "T:b2:0.001"),
		      "c:b2,statistic=count:7\n"
		      "c:b2,statistic=totalTime:3.004\n"
		      "c:b2,statistic=totalOfSquares:3.000004\n"
		      "m:b2,statistic=max:1\n"
		      "c:b2,percentile=T0056,statistic=percentile:4\n"
		      "c:b2,percentile=T0083,statistic=percentile:3\n");
	/* Zero rule: 2 zeros are 2 lines either way (the first, a count);
	 * the third is merged into that count. */
	expect_window(LINES("t:z:0", "t:z:0"), "t:z:0\nt:z:0\n");
	expect_window(LINES("t:z:0", "t:z:0", "t:z:0"), "t:z:0\nc:z,statistic=count:2\n");
	/* 0, 1e-170: the first, a count, a total and a max: 4 lines. */
	expect_window(LINES("d:m:0", "d:m:1e-170", "d:m:0", "d:m:0"),
		      "d:m:0\nd:m:1e-170\nd:m:0\nd:m:0\n");
}
END_TEST

/* ------------------------------------------------------------------------
 * Tags: the statistic (and for a bucket the percentile) tag replaces the
 * client's, in its sorted place; a client's percentile tag stays on the
 * other statistics of a T, as on SpectatorD's own timer ids.
 * ------------------------------------------------------------------------ */

START_TEST(client_statistic_and_percentile_tags_are_replaced)
{
	expect_window(LINES("t:lat,statistic=p99,zone=a:1", "t:lat,zone=a,statistic=p99:2",
			    "t:lat,statistic=p99,zone=a:3", "t:lat,statistic=p99,zone=a:4",
			    "t:lat,statistic=p99,zone=a:5"),
		      "c:lat,statistic=count,zone=a:5\n"
		      "c:lat,statistic=totalTime,zone=a:15\n"
		      "c:lat,statistic=totalOfSquares,zone=a:55\n"
		      "m:lat,statistic=max,zone=a:5\n");
	expect_window(LINES("T:q,percentile=mine,a=1:1", "T:q,percentile=mine,a=1:1",
			    "T:q,percentile=mine,a=1:1", "T:q,percentile=mine,a=1:1",
			    "T:q,percentile=mine,a=1:1", "T:q,percentile=mine,a=1:1"),
		      "c:q,a=1,percentile=mine,statistic=count:6\n"
		      "c:q,a=1,percentile=mine,statistic=totalTime:6\n"
		      "c:q,a=1,percentile=mine,statistic=totalOfSquares:6\n"
		      "m:q,a=1,percentile=mine,statistic=max:1\n"
		      "c:q,a=1,percentile=T0083,statistic=percentile:6\n");
	/* Keys that sort next to the forced ones: a prefix sorts first. */
	const char *tagged = "D:x,z=5,statistic2=4,stat=3,percentile0=2,p=1,statistic=mine:3";
	expect_window(LINES(tagged, tagged, tagged, tagged, tagged, tagged),
		      "c:x,p=1,percentile0=2,stat=3,statistic=count,statistic2=4,z=5:6\n"
		      "c:x,p=1,percentile0=2,stat=3,statistic=totalAmount,statistic2=4,z=5:18\n"
		      "c:x,p=1,percentile0=2,stat=3,statistic=totalOfSquares,statistic2=4,z=5:54\n"
		      "m:x,p=1,percentile0=2,stat=3,statistic=max,statistic2=4,z=5:3\n"
		      "c:x,p=1,percentile=D0003,percentile0=2,stat=3,statistic=percentile,"
		      "statistic2=4,z=5:6\n");
}
END_TEST

/* ------------------------------------------------------------------------
 * Memory and limits
 * ------------------------------------------------------------------------ */

static size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Issue 11: a T series with 30 non-empty buckets costs well under 512 B
 * beyond its key: its record, its share of the slots, and its share of the
 * blocks carved (free ones included), over many such series. */
START_TEST(a_busy_percentile_timer_costs_well_under_512_bytes)
{
	enum { SERIES = 1000, BUCKETS = 30 };
	struct agg_table t;
	struct agg_ages ages;
	int secs[BUCKETS];
	char line[96];

	/* Whole seconds in 30 distinct buckets. */
	size_t last = PCT_BUCKETS, n = 0;
	for (int v = 1; n < BUCKETS; v++) {
		ck_assert_int_lt(v, 86400);
		size_t b = pct_bucket_index((int64_t)v * 1000000000);
		if (b != last)
			secs[n++] = v;
		last = b;
	}
	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100000, 1 << 26, 0, 65535 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	for (int i = 0; i < SERIES; i++) {
		for (int rep = 0; rep < 3; rep++) {
			for (int b = 0; b < BUCKETS; b++) {
				struct agg_outcome out;
				struct sample s;
				snprintf(line, sizeof(line), "T:svc.latency,i=%04d:%d", i, secs[b]);
				require(proto_parse_line(&ps, line, strlen(line), &s) == REJECT_NONE &&
						agg_table_record(&t, &ages, &s, 0, &out) == REJECT_NONE &&
						!out.forward,
					"%s: not merged", line);
			}
		}
	}
	ck_assert_uint_eq(t.dt.count, SERIES);
	size_t keys = 0, pos = 0;
	for (struct keytab_entry *e; (e = keytab_next(&t.dt, &pos));) {
		const struct agg_dist *d = keytab_val(e);
		ck_assert_uint_eq(d->nbuckets, BUCKETS);
		ck_assert_uint_eq(d->n, 3 * BUCKETS);
		keys += round8(e->key_len);
	}
	double record = (double)(t.dt.arena_len - keys) / SERIES;
	double slots = (double)((t.dt.mask + 1) * sizeof(uint64_t)) / SERIES;
	double blocks = (double)(t.blocks.len * sizeof(uint64_t)) / SERIES;
	double per_series = record + slots + blocks;
	ck_assert_msg(per_series <= 400, "%.0f B per series: record %.0f, slots %.0f, blocks %.0f",
		      per_series, record, slots, blocks);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

static bool forwarded(struct agg_table *t, struct agg_ages *ages, const char *line)
{
	struct agg_outcome out;
	struct sample s;

	ck_assert_int_eq(proto_parse_line(&ps, line, strlen(line), &s), REJECT_NONE);
	/* Never refused: SpectatorD takes each sample alone. */
	ck_assert_int_eq(agg_table_record(t, ages, &s, 0, &out), REJECT_NONE);
	ck_assert(!out.split);
	return out.forward;
}

START_TEST(series_the_table_cannot_take_are_forwarded_not_refused)
{
	struct agg_table t;
	struct agg_ages ages;

	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	/* max_series: scalar and distribution series count together. */
	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 2, 1 << 20, 0, 65535 }), 0);
	ck_assert(!forwarded(&t, &ages, "c:a:1"));
	ck_assert(!forwarded(&t, &ages, "t:b:1"));
	ck_assert(forwarded(&t, &ages, "t:c:1"));
	ck_assert(forwarded(&t, &ages, "T:c:1"));
	ck_assert(forwarded(&t, &ages, "d:c:1"));
	ck_assert(forwarded(&t, &ages, "D:c:1"));
	ck_assert(forwarded(&t, &ages, "t:c:1")); /* and it stays out */
	ck_assert(!forwarded(&t, &ages, "t:b:2")); /* known series merge */
	ck_assert_uint_eq(agg_table_count(&t), 2);
	agg_table_deinit(&t);

	/* max_key_bytes. */
	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 10, 0, 65535 }), 0);
	ck_assert(!forwarded(&t, &ages, "t:abcdef:1"));
	ck_assert(forwarded(&t, &ages, "d:ghijk:1"));
	ck_assert(!forwarded(&t, &ages, "d:ghij:1"));
	agg_table_deinit(&t);

	/* max_series_per_name. */
	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 1, 65535 }), 0);
	ck_assert(!forwarded(&t, &ages, "t:n,a=1:1"));
	ck_assert(forwarded(&t, &ages, "t:n,a=2:1"));
	ck_assert(forwarded(&t, &ages, "D:n,a=1:1"));
	ck_assert(!forwarded(&t, &ages, "d:other:1"));
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

/* A sample whose merge would take a total past what SpectatorD's meter
 * holds goes as it came, before the table's lines; the series goes on. */
START_TEST(overflowing_totals_are_forwarded)
{
	/* 5e9 s is 5e18 ns; two of them pass INT64_MAX. The pass-through line
	 * keeps the client's text. */
	expect_window(LINES("t:big:5e9", "t:big:5e9", "t:big:1"),
		      "t:big:5e9\n"
		      "t:big:5000000000\nt:big:1\n");
	/* The largest timer sample there is (9223372036854774784 ns) still
	 * takes 1 ns more, but not itself again. */
	expect_window(LINES("T:top:9223372036.854775", "T:top:1e-9", "T:top:9223372036.854775"),
		      "T:top:9223372036.854775\n"
		      "T:top:9223372036.854774\nT:top:0.000000001\n");
	/* d: 1e154 squares to 1e308; two of them overflow the sum of squares.
	 * 1e200 alone does: the series' every sample goes as it came. */
	expect_window(LINES("d:sq:1e154", "d:sq:1e154", "d:inf:1e200", "d:sq:1"),
		      "d:sq:1e154\nd:inf:1e200\n"
		      "d:sq:1e+154\nd:sq:1\n");
}
END_TEST

/* The table's bucket counts and samples share an arena bounded by
 * max_key_bytes: a T sample with no room for a new bucket is forwarded,
 * and one whose bucket exists still merges. */
START_TEST(percentile_buckets_past_the_arena_are_forwarded)
{
	struct agg_table t;
	struct agg_ages ages;

	/* 64 bytes: 8 words, one 4-word block of buckets, one of samples. */
	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 64, 0, 65535 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	ck_assert(!forwarded(&t, &ages, "T:p:0.001"));
	ck_assert(!forwarded(&t, &ages, "T:p:0.01"));
	ck_assert(!forwarded(&t, &ages, "T:p:0.1"));
	ck_assert(!forwarded(&t, &ages, "T:p:1"));
	ck_assert(forwarded(&t, &ages, "T:p:10"));   /* a fifth bucket */
	ck_assert(!forwarded(&t, &ages, "T:p:0.001")); /* an existing one */
	ck_assert_uint_eq(dist_of(&t, 'T', "p")->nbuckets, 4);
	ck_assert_uint_eq(dist_of(&t, 'T', "p")->n, 5);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

/* A series' lines go in one datagram when they fit one, so that they reach
 * the same SpectatorD step. */
START_TEST(a_series_lines_share_one_datagram)
{
	struct agg_table t;
	struct agg_ages ages;
	struct agg_limits lim = roomy;
	char line[64];
	static char buf[451];
	struct packer pk;
	struct agg_cursor c;
	int where[40], dg;
	size_t lines = 0;

	/* A series' 7 lines take about 290 bytes: one fits with the start of
	 * the next, which must wait for the next datagram. */
	lim.max_line = sizeof(buf) - 1;
	ck_assert_int_eq(agg_table_init(&t, &lim), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	for (int i = 0; i < 40; i++) {
		where[i] = -1;
		for (int j = 0; j < 12; j++) {
			snprintf(line, sizeof(line), "T:s%02d,k=v:%s", i,
				 j % 3 == 0 ? "0.001" : j % 3 == 1 ? "1" : "2.5");
			ck_assert(!forwarded(&t, &ages, line));
		}
	}
	packer_init(&pk, buf, sizeof(buf) - 1);
	agg_cursor_start(&c);
	for (dg = 0; !agg_cursor_done(&t, &c); dg++) {
		size_t dist;
		ck_assert_int_lt(dg, 1000);
		lines += packer_add_table(&pk, &t, &c, &dist);
		ck_assert_uint_gt(pk.lines, 0);
		for (const char *q = buf; q < buf + pk.len; q = strchr(q, '\n') + 1) {
			int s = atoi(strchr(q, ':') + 2);
			ck_assert_msg(where[s] == -1 || where[s] == dg,
				      "series s%02d in datagrams %d and %d", s, where[s], dg);
			where[s] = dg;
		}
		packer_reset(&pk);
	}
	ck_assert_uint_eq(lines, 40 * 7);
	ck_assert_int_eq(dg, 40);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

/* ------------------------------------------------------------------------
 * Model-based: random windows
 * ------------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double unit(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static const char *pick(const char *const *from, size_t n)
{
	return from[rnd() % n];
}

#define PICK(...) pick((const char *const[]){ __VA_ARGS__ }, \
		       sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

/* A number as a client might write it. */
static void write_number(char *buf, size_t cap, double v)
{
	switch (rnd() % 4) {
	case 0: snprintf(buf, cap, "%.17g", v); break;
	case 1: snprintf(buf, cap, "%g", v); break;
	case 2: snprintf(buf, cap, "%.6f", v); break;
	default: snprintf(buf, cap, "%e", v); break;
	}
}

/* Seconds: zeros, below a nanosecond, around one, typical latencies, over
 * 24 h, and now and then one large enough to overflow an int64 total. */
static void timer_value(char *buf, size_t cap, bool zeros)
{
	unsigned k = (unsigned)(rnd() % (zeros ? 3 : 13));

	switch (k) {
	case 0: snprintf(buf, cap, "%s", PICK("0", "-0", "0.0", "0e5")); return;
	case 1: snprintf(buf, cap, "%s", PICK("1e-10", "5e-10", "9.99e-10", "1e-12", "4.9e-324"));
		return;
	case 2: write_number(buf, cap, unit() * 1e-9); return;
	case 3: snprintf(buf, cap, "%s", PICK("1e-9", "1.5e-8", "2.9e-9", "6.3e-8", "1.6e-8"));
		return;
	case 4: write_number(buf, cap, unit() * 1e-6); return;
	case 5:
	case 6: write_number(buf, cap, unit() * 0.5); return;
	case 7: snprintf(buf, cap, "%.6f", (double)(rnd() % 2000000) / 1e6); return;
	case 8: write_number(buf, cap, unit() * 20); return;
	case 9: write_number(buf, cap, 86400 + unit() * 1e6); return;
	case 10: snprintf(buf, cap, "%s", PICK("86400", "86400.000000001", "86399.999999999"));
		return;
	case 11: write_number(buf, cap, (double)(rnd() % 100000)); return;
	default:
		if (rnd() % 8 == 0)
			snprintf(buf, cap, "%s", PICK("4e9", "9.2e9", "3e9"));
		else
			write_number(buf, cap, unit());
		return;
	}
}

/* d amounts: zeros, values whose squares underflow, subnormals, ordinary
 * values, and rarely ones whose squares overflow. */
static void dist_value(char *buf, size_t cap, bool zeros)
{
	switch (rnd() % (zeros ? 3 : 10)) {
	case 0: snprintf(buf, cap, "%s", PICK("0", "-0", "0.0")); return;
	case 1: snprintf(buf, cap, "%s", PICK("1e-200", "3e-170", "1e-310", "4.9e-324")); return;
	case 2: write_number(buf, cap, unit() * 1e-300); return;
	case 3:
	case 4: write_number(buf, cap, unit() * 1000); return;
	case 5: snprintf(buf, cap, "%llu", (unsigned long long)(rnd() % 100000)); return;
	case 6: write_number(buf, cap, unit() * 1e12); return;
	case 7: write_number(buf, cap, unit()); return;
	default:
		if (rnd() % 6 == 0)
			snprintf(buf, cap, "%s", PICK("1e154", "1e200", "1.7e308", "1e300"));
		else
			write_number(buf, cap, unit() * 10);
		return;
	}
}

/* D amounts: fractions (truncated by SpectatorD), integers, and values up
 * to just below 2^63. */
static void pct_dist_value(char *buf, size_t cap, bool zeros)
{
	switch (rnd() % (zeros ? 2 : 9)) {
	case 0: snprintf(buf, cap, "%s", PICK("0", "-0", "0.5", "0.99", "1e-300")); return;
	case 1: write_number(buf, cap, unit()); return;
	case 2: snprintf(buf, cap, "%s", PICK("1.9", "2.5", "3.999", "1000000000000000.5")); return;
	case 3:
	case 4: write_number(buf, cap, unit() * 1000); return;
	case 5: snprintf(buf, cap, "%llu", (unsigned long long)(rnd() % 1000000)); return;
	case 6: write_number(buf, cap, unit() * 1e15); return;
	case 7: snprintf(buf, cap, "%s", PICK("4.5e18", "9.2e18", "9223372036854774784")); return;
	default: write_number(buf, cap, unit() * 100); return;
	}
}

/* Ids: tags out of order, a client's own statistic and percentile tags,
 * bytes SpectatorD replaces, a shared name, and one long enough that its
 * statistics fit no small datagram. */
static const char *const ids[] = {
	"lat",
	"lat,zone=a",
	"lat,statistic=p99,zone=b",
	"req,percentile=mine",
	"req,z=1,a=2",
	"sz,host=x y",
	"sz",
	"long.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,k=v",
};
#define NIDS (sizeof(ids) / sizeof(ids[0]))

/* What the random windows reached, so that the test fails if a change to
 * the generator stops it from covering a case. */
struct coverage {
	size_t stats, samples, zero, unmerged, overflow, lines_in;
};

static void tally(const struct agg_table *t, struct coverage *cov)
{
	size_t pos = 0;

	for (struct keytab_entry *e; (e = keytab_next(&t->dt, &pos));) {
		struct agg_plan p;
		agg_dist_plan(t, e, &p);
		if (p.slots == 0)
			continue;
		cov->samples += p.samples;
		cov->stats += !p.samples;
		cov->zero += p.zero && !p.samples;
	}
}

/* One random line of id, sent to the relay and to SpectatorD directly. */
static void random_line(struct win *w, struct model *direct, const char *id, bool zeros)
{
	char num[64], line[512];
	char type = "tTdD"[rnd() % 4];
	struct sample s;

	if (type == 't' || type == 'T')
		timer_value(num, sizeof(num), zeros);
	else if (type == 'd')
		dist_value(num, sizeof(num), zeros);
	else
		pct_dist_value(num, sizeof(num), zeros);
	snprintf(line, sizeof(line), "%c:%s:%s", type, id, num);
	require(proto_parse_line(&ps, line, strlen(line), &s) == REJECT_NONE, "%s: refused", line);
	model_feed(direct, &s);
	win_send(w, line);
}

/* Random windows, each SpectatorD step receiving one to three of them:
 * SpectatorD publishes the same from the relay's lines as from the samples
 * sent. Limits vary by step so that the table forwards samples unmerged
 * too; those reach the model among the relay's lines. */
START_TEST(what_spectatord_publishes_is_unchanged)
{
	static const struct agg_limits configs[] = {
		{ 100000, 1 << 24, 0, 65535 },
		{ 100000, 1 << 24, 0, 1400 },
		{ 3, 1 << 24, 0, 65535 },     /* series past max_series */
		{ 100000, 600, 0, 65535 },    /* keys and blocks past max_key_bytes */
		{ 100000, 1 << 24, 1, 240 },  /* one series per name; the long id
					         fits no statistics line */
	};
	struct model direct = { 0 }, relayed = { 0 };
	struct pub a = { 0 }, b = { 0 };
	struct coverage cov = { 0 };
	char why[512];

	rng_state = 0x9e3779b97f4a7c15ull;
	for (int step = 0; step < 2000; step++) {
		size_t config = rnd() % (sizeof(configs) / sizeof(configs[0]));
		struct win w;
		win_init(&w, &configs[config]);
		w.relayed = &relayed;
		for (int k = 0, windows = 1 + (int)(rnd() % 3); k < windows; k++) {
			/* A few samples (often the shorter form), or many with
			 * most on one id (the statistics); now and then zeros only
			 * (the zero rule). */
			bool zeros = rnd() % 6 == 0;
			size_t n = rnd() % 3 == 0 ? 1 + rnd() % 6 : 1 + rnd() % 150;
			const char *focus = ids[rnd() % NIDS];
			for (size_t i = 0; i < n; i++)
				random_line(&w, &direct, rnd() % 4 ? focus : ids[rnd() % NIDS], zeros);
			tally(&w.t, &cov);
			win_close(&w);
		}
		cov.unmerged += w.unmerged;
		cov.lines_in += w.lines_in;
		if (config == 0)
			cov.overflow += w.unmerged;
		model_publish(&direct, &a);
		model_publish(&relayed, &b);
		ck_assert_msg(!pub_differs(&a, &b, why, sizeof(why)), "step %d: %s", step, why);
		model_clear(&direct);
		model_clear(&relayed);
		win_deinit(&w);
	}
	pub_free(&a);
	pub_free(&b);
	ck_assert_msg(cov.stats > 1000 && cov.samples > 1000 && cov.zero > 50 &&
			      cov.unmerged > 1000 && cov.overflow > 20 && cov.lines_in > 100000,
		      "coverage: %zu statistics, %zu samples, %zu zero rule, %zu unmerged (%zu "
		      "overflows), %zu merged",
		      cov.stats, cov.samples, cov.zero, cov.unmerged, cov.overflow, cov.lines_in);
}
END_TEST

/* Publishes what SpectatorD would for these lines. */
static void publish_lines(const char *const *lines, struct pub *p)
{
	struct model m = { 0 };
	struct sample s;

	for (size_t i = 0; lines[i]; i++) {
		ck_assert_int_eq(proto_parse_line(&ps, lines[i], strlen(lines[i]), &s), REJECT_NONE);
		model_feed(&m, &s);
	}
	model_publish(&m, p);
	model_clear(&m);
}

/* The comparison can fail: against two T samples and a d sample whose
 * square underflows, the right statistics pass, and each way of getting
 * them wrong is told apart. */
START_TEST(the_model_tells_a_difference)
{
	const char *const *direct = LINES("T:x:0.001", "T:x:0.002", "d:y:1e-200");
	static const char *const right[] = {
		"c:x,statistic=count:2",
		"c:x,statistic=totalTime:0.003",
		"c:x,statistic=totalOfSquares:5e-06",
		"m:x,statistic=max:0.002",
		"c:x,percentile=T0056,statistic=percentile:1",
		"c:x,percentile=T0059,statistic=percentile:1",
		"d:y:1e-200",
	};
	enum { N = sizeof(right) / sizeof(right[0]) };
	/* One line changed each: a lost sample, a wrong bucket, a max off by
	 * the last bit, a total off by more than rounding, and the zero totals
	 * lost by merging the only sample into a count. */
	static const struct {
		size_t at;
		const char *line;
	} wrong[] = {
		{ 0, "c:x,statistic=count:1" },
		{ 5, "c:x,percentile=T005A,statistic=percentile:1" },
		{ 3, "m:x,statistic=max:0.0020000000000000005" },
		{ 1, "c:x,statistic=totalTime:0.0030000001" },
		{ 6, "c:y,statistic=count:1" },
	};
	struct pub a = { 0 }, b = { 0 };
	char why[512];
	const char *lines[N + 1];

	publish_lines(direct, &a);
	memcpy(lines, right, sizeof(right));
	lines[N] = NULL;
	publish_lines(lines, &b);
	ck_assert_msg(!pub_differs(&a, &b, why, sizeof(why)), "%s", why);
	/* Within 1e-12 relative, a total is the same. */
	lines[1] = "c:x,statistic=totalTime:0.0030000000000000001";
	publish_lines(lines, &b);
	ck_assert_msg(!pub_differs(&a, &b, why, sizeof(why)), "%s", why);
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		memcpy(lines, right, sizeof(right));
		lines[wrong[i].at] = wrong[i].line;
		publish_lines(lines, &b);
		ck_assert_msg(pub_differs(&a, &b, why, sizeof(why)), "not told apart: %s",
			      wrong[i].line);
	}
	pub_free(&a);
	pub_free(&b);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("timers");
	TCase *tc = tcase_create("timers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, timer_arithmetic);
	tcase_add_test(tc, percentile_timer_arithmetic);
	tcase_add_test(tc, distribution_arithmetic);
	tcase_add_test(tc, percentile_distribution_arithmetic);
	tcase_add_test(tc, types_are_part_of_the_key);
	tcase_add_test(tc, zero_rule);
	tcase_add_test(tc, shorter_form_at_its_boundary);
	tcase_add_test(tc, client_statistic_and_percentile_tags_are_replaced);
	tcase_add_test(tc, a_busy_percentile_timer_costs_well_under_512_bytes);
	tcase_add_test(tc, series_the_table_cannot_take_are_forwarded_not_refused);
	tcase_add_test(tc, overflowing_totals_are_forwarded);
	tcase_add_test(tc, percentile_buckets_past_the_arena_are_forwarded);
	tcase_add_test(tc, a_series_lines_share_one_datagram);
	tcase_add_test(tc, what_spectatord_publishes_is_unchanged);
	tcase_add_test(tc, the_model_tells_a_difference);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
