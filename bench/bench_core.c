/* bench_core.c - ns per line for the pure core: framing, parsing, merging.
 *
 * Run by `make bench`, never by ctest. The machine is shared and noisy, so
 * every figure is also printed as a ratio to a baseline measured in the same
 * run, and a figure is the best of several runs.
 *
 * 1. The mixed workload: a realistic mix (70% c, 8% g, 5% m, 8% t, 4% d,
 *    3% T, 2% D) over N series whose ids look like what thin clients send;
 *    half of the series carry their tags unsorted, as spectator-go/-cpp/-js
 *    do. Baseline: framing alone (finding the lines without parsing them).
 *
 * 2. One type at a time: c, t, T, d and D, each a workload of only that
 *    type, with the values a real client sends: counters add 1 to 3, t and T
 *    are latencies in seconds spread log-uniformly over a factor of 100 (a
 *    few dozen percentile buckets per series), d and D byte sizes spread the
 *    same way. Baseline: the c row. The types' runs are interleaved, one run
 *    of each in turn, so that a burst of other work on the machine hits
 *    every row alike. "merge" is agg_table_record() alone, hash included,
 *    over samples parsed beforehand and laid out as a datagram would hold
 *    them; "parse+merge" is what the relay pays per line after framing.
 *
 * 3. What one T series costs in a window table beyond its key, from the
 *    tables' own accounting (100,000 series of about 30 buckets each), and
 *    what closing a window costs per series.
 *
 * `bench_core --profile TYPE` runs only the merge of one type, for a
 * profiler (see profile() below). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregate.h"
#include "encode.h"
#include "protocol.h"
#include "top.h"
#include "xorshift.h"

#define MAX_DGRAM 61440
#define ROUNDS 5
#define TYPE_ROUNDS 7

struct workload {
	char *buf;        /* all datagrams back to back */
	size_t *off;      /* start of each datagram, plus the end */
	size_t ndgrams, nlines;
};

static uint64_t rng = 0x853c49e6748fea9bull;

static uint64_t rnd(void)
{
	return xorshift64(&rng);
}

/* Uniform in [0, 1). */
static double rnd_unit(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static char pick_type(void)
{
	unsigned r = (unsigned)(rnd() % 100);
	return r < 70 ? 'c' : r < 78 ? 'g' : r < 83 ? 'm' : r < 91 ? 't' : r < 95 ? 'd' : r < 98 ? 'T' : 'D';
}

/* A value as a client of that type sends it (one-type workloads). Each
 * series has its own scale: t and T from 0.2-2 ms up to 100 times that, d
 * and D from 100-1000 bytes up to 100 times that, log-uniform, so that a T
 * or D series with a few hundred samples fills about 30 buckets. */
static int format_value(char *w, char type, uint64_t series)
{
	double scale = pow(10.0, (double)((series * 0x9e3779b97f4a7c15ull) >> 11) /
					 9007199254740992.0);
	double spread = pow(100.0, rnd_unit());

	switch (type) {
	case 't':
	case 'T': {
		unsigned long long ns = (unsigned long long)(200000.0 * scale * spread);
		return sprintf(w, "%llu.%09llu", ns / 1000000000ull, ns % 1000000000ull);
	}
	case 'd':
	case 'D':
		return sprintf(w, "%llu", (unsigned long long)(100.0 * scale * spread));
	default:
		return sprintf(w, "%u", (unsigned)(1 + rnd() % 3));
	}
}

/* One line; type 0 picks one from the mix, with the mix's values. */
static int format_line(char *w, uint64_t series, char type)
{
	static const char *names[] = { "server.requestCount", "server.requestLatency",
				       "db.queryTime",        "cache.hits",
				       "queue.depth",         "http.client.bytes" };
	static const char *status[] = { "200", "404", "500", "503" };
	const char *name = names[series % 6];
	unsigned long long inst = (unsigned long long)(series / 6);
	char value[48];

	if (type) {
		format_value(value, type, series);
	} else {
		type = pick_type();
		if (series % 2 == 0)
			sprintf(value, "%llu", (unsigned long long)(rnd() % 1000));
		else
			sprintf(value, "%.3f", (double)(rnd() % 100000) / 1000.0);
	}
	/* spectator-py sorts its tags; the other clients do not. */
	if (series % 2 == 0)
		return sprintf(w, "%c:%s,instance=i-%06llu,method=GET,nf.app=shop,status=%s:%s\n",
			       type, name, inst, status[series % 4], value);
	return sprintf(w, "%c:%s,status=%s,nf.app=shop,method=POST,instance=i-%06llu:%s\n", type,
		       name, status[series % 4], inst, value);
}

static void workload_make(struct workload *wl, size_t nlines, size_t lines_per_dgram,
			  uint64_t nseries, char type)
{
	wl->buf = malloc(nlines * 128 + MAX_DGRAM);
	wl->off = malloc((nlines / lines_per_dgram + 2) * sizeof(size_t));
	if (!wl->buf || !wl->off)
		abort();
	wl->ndgrams = 0;
	wl->nlines = 0;
	size_t len = 0;
	while (wl->nlines + lines_per_dgram <= nlines) {
		wl->off[wl->ndgrams++] = len;
		for (size_t i = 0; i < lines_per_dgram; i++)
			len += (size_t)format_line(wl->buf + len, rnd() % nseries, type);
		wl->nlines += lines_per_dgram;
	}
	wl->off[wl->ndgrams] = len;
}

static void workload_free(struct workload *wl)
{
	free(wl->buf);
	free(wl->off);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const struct agg_limits bench_limits = { 10000000, (size_t)1 << 31, 0, 61440 };

/* ------------------------------------------------------------------------
 * Timed passes
 * ------------------------------------------------------------------------ */

enum mode { FRAME, PARSE, MERGE };

/* Everything a pass works with; the table keeps its memory between passes. */
struct ctx {
	struct proto_parser ps;
	struct agg_table t;
	struct agg_ages ages;
	struct packer pk;
	char out[MAX_DGRAM + 1];
};

static struct ctx *ctx_new(void)
{
	struct ctx *c = malloc(sizeof(*c));

	if (!c || proto_parser_init(&c->ps) != 0 || agg_table_init(&c->t, &bench_limits) != 0 ||
	    agg_ages_init(&c->ages, 1000) != 0)
		abort();
	packer_init(&c->pk, c->out, sizeof(c->out) - 1);
	return c;
}

static void ctx_free(struct ctx *c)
{
	agg_table_deinit(&c->t);
	agg_ages_deinit(&c->ages);
	proto_parser_deinit(&c->ps);
	free(c);
}

/* One pass over the workload into an empty table; returns its ns. */
static double pass(struct ctx *c, const struct workload *wl, enum mode mode)
{
	volatile size_t sink = 0;

	agg_table_clear(&c->t);
	double t0 = now_ns();
	for (size_t d = 0; d < wl->ndgrams; d++) {
		struct proto_lines it;
		const char *line;
		size_t n;
		bool partial;
		proto_lines_init(&it, wl->buf + wl->off[d], wl->off[d + 1] - wl->off[d], false);
		while (proto_lines_next(&it, &line, &n, &partial)) {
			if (mode == FRAME) {
				sink += n;
				continue;
			}
			struct sample s;
			if (proto_parse_line(&c->ps, line, n, &s) != REJECT_NONE)
				abort();
			if (mode == PARSE) {
				sink += s.id_len;
				continue;
			}
			struct agg_outcome oc = { .forward = s.type == METER_SAMPLED };
			if (!oc.forward)
				agg_table_record(&c->t, &c->ages, &s, 1e9, &oc);
			if (oc.forward && !packer_add_sample(&c->pk, &s)) {
				packer_reset(&c->pk);
				packer_add_sample(&c->pk, &s);
			}
		}
	}
	(void)sink;
	return now_ns() - t0;
}

/* Samples parsed beforehand, their ids one after the other as the lines of
 * a datagram hold them, for timing agg_table_record() alone. */
struct parsed {
	struct sample *s;
	char *ids;
	size_t n;
};

static void parsed_make(struct parsed *p, const struct workload *wl)
{
	struct proto_parser ps;
	size_t len = 0;

	if (proto_parser_init(&ps) != 0)
		abort();
	p->s = malloc(wl->nlines * sizeof(*p->s));
	p->ids = malloc(wl->off[wl->ndgrams]);
	p->n = 0;
	if (!p->s || !p->ids)
		abort();
	for (size_t d = 0; d < wl->ndgrams; d++) {
		struct proto_lines it;
		const char *line;
		size_t n;
		bool partial;
		proto_lines_init(&it, wl->buf + wl->off[d], wl->off[d + 1] - wl->off[d], false);
		while (proto_lines_next(&it, &line, &n, &partial)) {
			struct sample *s = &p->s[p->n++];
			if (proto_parse_line(&ps, line, n, s) != REJECT_NONE)
				abort();
			memcpy(p->ids + len, s->id, s->id_len);
			s->id = p->ids + len;
			s->num = NULL;
			s->num_len = 0;
			s->hash = 0; /* hashing is part of merging */
			len += s->id_len;
		}
	}
	proto_parser_deinit(&ps);
}

static void parsed_free(struct parsed *p)
{
	free(p->s);
	free(p->ids);
}

/* Not inlined, so that callgrind --toggle-collect=pass_record counts it
 * alone (--profile). */
__attribute__((noinline)) static double pass_record(struct ctx *c, const struct parsed *p)
{
	agg_table_clear(&c->t);
	double t0 = now_ns();
	for (size_t i = 0; i < p->n; i++) {
		struct agg_outcome oc;
		agg_table_record(&c->t, &c->ages, &p->s[i], 1e9, &oc);
	}
	return now_ns() - t0;
}

/* What the table holds after a pass. */
struct memory {
	size_t series, keys, tables, blocks, blocks_in_use;
	size_t dist_series, dist_keys, dist_table; /* the distribution table alone */
	double buckets; /* non-empty buckets per distribution series */
};

static struct memory memory_of(const struct agg_table *t)
{
	struct memory m = { 0 };
	size_t pos = 0, buckets = 0;
	struct keytab_entry *e;

	m.series = agg_table_count(t);
	m.keys = t->kt.key_bytes + t->dt.key_bytes;
	m.tables = keytab_memory(&t->kt) + keytab_memory(&t->dt);
	m.blocks = blocks_memory(&t->blocks);
	m.blocks_in_use = t->blocks.in_use * sizeof(uint64_t);
	m.dist_series = t->dt.count;
	m.dist_keys = t->dt.key_bytes;
	m.dist_table = keytab_memory(&t->dt);
	while ((e = keytab_next(&t->dt, &pos)))
		buckets += ((const struct agg_dist *)keytab_val(e))->nbuckets;
	m.buckets = t->dt.count ? (double)buckets / (double)t->dt.count : 0;
	return m;
}

/* Cost of closing a window: every series of the table c->t holds encoded
 * into datagrams; best of `rounds`, since encoding leaves the table as it
 * was. Returns ns, and the lines in *lines. */
static double flush(struct ctx *c, int rounds, size_t *lines)
{
	double best = 1e30;

	for (int r = 0; r < rounds; r++) {
		struct agg_cursor cursor;
		size_t n = 0, dist;
		double t0 = now_ns();
		agg_cursor_start(&cursor);
		while (!agg_cursor_done(&c->t, &cursor)) {
			packer_reset(&c->pk);
			n += packer_add_table(&c->pk, &c->t, &cursor, &dist);
		}
		double el = now_ns() - t0;
		if (el < best)
			best = el;
		*lines = n;
	}
	return best;
}

/* ------------------------------------------------------------------------
 * 1. The mixed workload
 * ------------------------------------------------------------------------ */

static void mixed(size_t nlines)
{
	const size_t per_dgram[] = { 1, 20 };
	const uint64_t series[] = { 1000, 100000 };

	printf("1. mixed workload: %zu lines per run, best of %d runs\n\n", nlines, ROUNDS);
	printf("%-10s %-8s %8s %8s %8s %7s %7s %9s %10s %12s\n", "lines/dg", "series", "frame", "parse",
	       "merge", "parse/", "merge/", "flush", "table B/", "key B/");
	printf("%-10s %-8s %8s %8s %8s %7s %7s %9s %10s %12s\n", "", "", "ns/line", "ns/line",
	       "ns/line", "frame", "frame", "ns/series", "series", "series");
	for (size_t i = 0; i < 2; i++) {
		for (size_t j = 0; j < 2; j++) {
			struct workload wl;
			struct ctx *c = ctx_new();
			double best[3] = { 1e30, 1e30, 1e30 };
			rng = 0x853c49e6748fea9bull;
			workload_make(&wl, nlines, per_dgram[i], series[j], 0);
			for (int mode = FRAME; mode <= MERGE; mode++)
				for (int r = 0; r < ROUNDS; r++) {
					double el = pass(c, &wl, (enum mode)mode);
					if (el < best[mode])
						best[mode] = el;
				}
			/* The table holds the last MERGE pass. */
			struct memory m = memory_of(&c->t);
			size_t lines;
			double fl = flush(c, ROUNDS, &lines);
			double f = best[FRAME] / (double)wl.nlines;
			double p = best[PARSE] / (double)wl.nlines;
			double g = best[MERGE] / (double)wl.nlines;
			printf("%-10zu %-8llu %8.1f %8.1f %8.1f %7.1f %7.1f %9.1f %10.1f %12.1f\n",
			       per_dgram[i], (unsigned long long)series[j], f, p, g, p / f, g / f,
			       fl / (double)m.series,
			       (double)(m.tables + m.blocks - m.keys) / (double)m.series,
			       (double)m.keys / (double)m.series);
			workload_free(&wl);
			ctx_free(c);
		}
	}
}

/* ------------------------------------------------------------------------
 * 2. One type at a time
 * ------------------------------------------------------------------------ */

#define NTYPES 5
static const char type_syms[NTYPES] = { 'c', 't', 'T', 'd', 'D' };

struct type_row {
	struct workload wl;
	struct parsed parsed;
	double parse, full, merge; /* best ns per pass */
	struct memory mem;
	double flush;              /* ns to encode the table */
	size_t flush_lines;
};

static void by_type(size_t nlines, uint64_t nseries)
{
	struct type_row rows[NTYPES];
	struct ctx *c = ctx_new();

	for (int k = 0; k < NTYPES; k++) {
		rng = 0x853c49e6748fea9bull;
		workload_make(&rows[k].wl, nlines, 20, nseries, type_syms[k]);
		parsed_make(&rows[k].parsed, &rows[k].wl);
		rows[k].parse = rows[k].full = rows[k].merge = 1e30;
	}
	for (int r = 0; r < TYPE_ROUNDS; r++) {
		for (int k = 0; k < NTYPES; k++) {
			struct type_row *row = &rows[k];
			double el = pass(c, &row->wl, PARSE);
			if (el < row->parse)
				row->parse = el;
			el = pass(c, &row->wl, MERGE);
			if (el < row->full)
				row->full = el;
			el = pass_record(c, &row->parsed);
			if (el < row->merge)
				row->merge = el;
		}
	}
	/* Memory and flush each in a table of their own, so that one type's
	 * leftover capacity is not counted against another. */
	for (int k = 0; k < NTYPES; k++) {
		struct ctx *f = ctx_new();
		pass_record(f, &rows[k].parsed);
		rows[k].mem = memory_of(&f->t);
		rows[k].flush = flush(f, ROUNDS, &rows[k].flush_lines);
		ctx_free(f);
	}

	double n = (double)rows[0].wl.nlines;
	double c_full = rows[0].full / n, c_merge = rows[0].merge / n;
	printf("%-4s %-8s %8s %8s %8s %8s %8s %9s %9s %8s %9s %9s\n", "type", "series", "parse",
	       "p+merge", "merge", "p+merge/", "merge/", "flush", "flush", "lines/", "table B/",
	       "buckets/");
	printf("%-4s %-8s %8s %8s %8s %8s %8s %9s %9s %8s %9s %9s\n", "", "", "ns/line", "ns/line",
	       "ns/line", "c", "c", "ns/series", "ns/line", "series", "series", "series");
	for (int k = 0; k < NTYPES; k++) {
		struct type_row *row = &rows[k];
		const struct memory *m = &row->mem;
		double full = row->full / n, merge = row->merge / n;
		printf("%-4c %-8llu %8.1f %8.1f %8.1f %8.2f %8.2f %9.1f %9.1f %8.1f %9.1f %9.1f\n",
		       type_syms[k], (unsigned long long)nseries, row->parse / n, full, merge,
		       full / c_full, merge / c_merge, row->flush / (double)m->series,
		       row->flush / (double)(row->flush_lines ? row->flush_lines : 1),
		       (double)row->flush_lines / (double)m->series,
		       k == 0 ? (double)(m->tables - m->keys) / (double)m->series
			      : (double)(m->dist_table + m->blocks - m->dist_keys) /
					(double)m->dist_series,
		       m->buckets);
	}
	printf("\n");
	for (int k = 0; k < NTYPES; k++) {
		workload_free(&rows[k].wl);
		parsed_free(&rows[k].parsed);
	}
	ctx_free(c);
}

/* bench_core --profile TYPE [LINES [SERIES]]: only the merge of one type's
 * workload (default 2,000,000 lines over 1,000 series), three passes, for a
 * profiler:
 *
 *     valgrind --tool=callgrind --toggle-collect=pass_record \
 *         build/bench/bench_core --profile T 200000 */
static int profile(char type, size_t nlines, uint64_t nseries)
{
	struct workload wl;
	struct parsed p;
	struct ctx *c = ctx_new();
	double best = 1e30;

	workload_make(&wl, nlines, 20, nseries ? nseries : 1, type);
	parsed_make(&p, &wl);
	for (int r = 0; r < 3; r++) {
		double el = pass_record(c, &p);
		if (el < best)
			best = el;
	}
	printf("%c: merge %.1f ns/line, %zu series\n", type, best / (double)p.n,
	       agg_table_count(&c->t));
	parsed_free(&p);
	workload_free(&wl);
	ctx_free(c);
	return 0;
}

/* ------------------------------------------------------------------------
 * 3. One T series' memory and flush
 * ------------------------------------------------------------------------ */

#define T_SERIES 100000
#define T_SAMPLES 300 /* per series: about 30 buckets with the spread above */

static void t_series(void)
{
	static const char *status[] = { "200", "404", "500", "503" };
	struct ctx *c = ctx_new();
	char *ids = malloc((size_t)T_SERIES * 96);
	uint32_t *lens = malloc(T_SERIES * sizeof(*lens));
	size_t lines;

	if (!ids || !lens)
		abort();
	rng = 0x853c49e6748fea9bull;
	for (uint64_t k = 0; k < T_SERIES; k++)
		lens[k] = (uint32_t)sprintf(ids + k * 96,
					    "server.requestLatency,instance=i-%06llu,method=GET,"
					    "nf.app=shop,status=%s",
					    (unsigned long long)k, status[k % 4]);
	/* Samples of random series, as a window receives them. */
	for (size_t i = 0; i < (size_t)T_SERIES * T_SAMPLES; i++) {
		uint64_t k = rnd() % T_SERIES;
		char v[48];
		struct sample s = { .type = METER_PCT_TIMER, .id = ids + k * 96, .id_len = lens[k],
				    .name_len = 21 };
		format_value(v, 'T', k);
		s.v.d = strtod(v, NULL);
		struct agg_outcome oc;
		agg_table_record(&c->t, &c->ages, &s, 1e9, &oc);
	}
	struct memory m = memory_of(&c->t);
	double fl = flush(c, 3, &lines);
	double n = (double)m.dist_series;
	printf("3. one T series: %d series, %d samples each on average, in random order\n\n",
	       T_SERIES, T_SAMPLES);
	printf("buckets per series                                  %8.1f\n", m.buckets);
	printf("key, bytes                                          %8.1f\n", (double)m.dist_keys / n);
	printf("table beyond the key: slots, header, value, slack   %8.1f B\n",
	       (double)(m.dist_table - m.dist_keys) / n);
	printf("blocks in use (bucket counts, kept samples)         %8.1f B\n",
	       (double)m.blocks_in_use / n);
	printf("  = beyond the key, in use                          %8.1f B\n",
	       (double)(m.dist_table - m.dist_keys + m.blocks_in_use) / n);
	printf("block arena held (outgrown blocks, growth slack)    %8.1f B\n",
	       (double)m.blocks / n);
	printf("  = beyond the key, held from the allocator         %8.1f B\n",
	       (double)(m.dist_table - m.dist_keys + m.blocks) / n);
	printf("flush                                               %8.1f ns/series, %.1f ns/line, "
	       "%.1f lines/series\n",
	       fl / n, fl / (double)lines, (double)lines / n);
	free(ids);
	free(lens);
	ctx_free(c);
}

/* ------------------------------------------------------------------------
 * 4. What top's sketch adds to a line forwarded as it came
 * ------------------------------------------------------------------------ */

#define SKETCH_LINES 4000000
#define SKETCH_IDS_MAX 1000

/* ns per X line: packed (what the window pays for it anyway), and with
 * the sketch counting it too; ids are taken round robin. */
static double sketch_pass(struct ctx *c, struct top_sketch *k, const struct sample *x,
			  size_t nids, bool sketch)
{
	top_sketch_clear(k);
	packer_reset(&c->pk);
	double t0 = now_ns();
	for (size_t i = 0; i < SKETCH_LINES; i++) {
		const struct sample *s = &x[i % nids];
		if (!packer_add_sample(&c->pk, s)) {
			packer_reset(&c->pk);
			packer_add_sample(&c->pk, s);
		}
		if (sketch)
			top_sketch_add(k, 'X', s->id, s->id_len, 0);
	}
	return (now_ns() - t0) / SKETCH_LINES;
}

static void sketch_cost(void)
{
	static const size_t nids[] = { 1, 10, 64, 100, 1000 };
	static char ids[SKETCH_IDS_MAX][96];
	static struct sample x[SKETCH_IDS_MAX];
	struct top_sketch *k = malloc(sizeof(*k));
	struct ctx *c = ctx_new();

	if (!k)
		abort();
	for (size_t i = 0; i < SKETCH_IDS_MAX; i++) {
		int n = sprintf(ids[i], "server.queueDepth,instance=i-%06zu,nf.app=shop", i);
		x[i] = (struct sample){ .type = METER_SAMPLED, .id = ids[i], .id_len = (uint32_t)n,
					.name_len = 17, .has_extra = true, .extra = 1700000000000,
					.num = "3", .num_len = 1, .v.d = 3 };
	}
	printf("\n4. top's sketch: X lines, %d per run, ids round robin, best of %d runs\n\n",
	       SKETCH_LINES, ROUNDS);
	printf("ids      packed  +sketch   sketch  +sketch/\n");
	printf("        ns/line  ns/line  ns/line    packed\n");
	for (size_t i = 0; i < sizeof(nids) / sizeof(nids[0]); i++) {
		double base = 1e30, with = 1e30;
		for (int r = 0; r < ROUNDS; r++) {
			base = fmin(base, sketch_pass(c, k, x, nids[i], false));
			with = fmin(with, sketch_pass(c, k, x, nids[i], true));
		}
		printf("%-6zu %9.1f %8.1f %8.1f %9.2f\n", nids[i], base, with, with - base,
		       with / base);
	}
	ctx_free(c);
	free(k);
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--profile") == 0 && strlen(argv[2]) == 1 &&
	    strchr("ctTdD", argv[2][0]))
		return profile(argv[2][0], argc > 3 ? strtoull(argv[3], NULL, 10) : 2000000,
			       argc > 4 ? strtoull(argv[4], NULL, 10) : 1000);
	size_t nlines = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;

	mixed(nlines);
	printf("\n2. one type at a time: %zu lines per run in 20-line datagrams, best of %d runs, "
	       "types interleaved\n", nlines, TYPE_ROUNDS);
	printf("   merge = agg_table_record() alone (hash, lookup, merge) over parsed samples; "
	       "p+merge = parse and merge;\n   ratios to the c row of the same run\n\n");
	by_type(nlines, 1000);
	by_type(nlines, 100000);
	t_series();
	sketch_cost();
	return 0;
}
