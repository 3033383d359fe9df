/* bench_core.c - ns per line for the pure core: framing, parsing, merging.
 *
 * Run by `make bench`, never by ctest. Every figure is also printed as a
 * ratio to a baseline measured in the same run (framing alone: finding the
 * lines without parsing them), because the machine is shared and noisy.
 *
 * Workload: a realistic mix (70% c, 8% g, 5% m, 8% t, 4% d, 3% T, 2% D) over
 * N series whose ids look like what thin clients send; half of the series
 * carry their tags unsorted, as spectator-go/-cpp/-js do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregate.h"
#include "encode.h"
#include "protocol.h"

#define MAX_DGRAM 61440

struct workload {
	char *buf;        /* all datagrams back to back */
	size_t *off;      /* start of each datagram, plus the end */
	size_t ndgrams, nlines;
};

static uint64_t rng = 0x853c49e6748fea9bull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static char pick_type(void)
{
	unsigned r = (unsigned)(rnd() % 100);
	return r < 70 ? 'c' : r < 78 ? 'g' : r < 83 ? 'm' : r < 91 ? 't' : r < 95 ? 'd' : r < 98 ? 'T' : 'D';
}

static int format_line(char *w, uint64_t series)
{
	static const char *names[] = { "server.requestCount", "server.requestLatency",
				       "db.queryTime",        "cache.hits",
				       "queue.depth",         "http.client.bytes" };
	static const char *status[] = { "200", "404", "500", "503" };
	char type = pick_type();
	const char *name = names[series % 6];
	unsigned long long inst = (unsigned long long)(series / 6);
	/* spectator-py sorts its tags; the other clients do not. */
	if (series % 2 == 0)
		return sprintf(w, "%c:%s,instance=i-%06llu,method=GET,nf.app=shop,status=%s:%llu\n",
			       type, name, inst, status[series % 4],
			       (unsigned long long)(rnd() % 1000));
	return sprintf(w, "%c:%s,status=%s,nf.app=shop,method=POST,instance=i-%06llu:%.3f\n", type,
		       name, status[series % 4], inst, (double)(rnd() % 100000) / 1000.0);
}

static void workload_make(struct workload *wl, size_t nlines, size_t lines_per_dgram,
			  uint64_t nseries)
{
	wl->buf = malloc(nlines * 128 + MAX_DGRAM);
	wl->off = malloc((nlines / lines_per_dgram + 2) * sizeof(size_t));
	wl->ndgrams = 0;
	wl->nlines = 0;
	size_t len = 0;
	while (wl->nlines + lines_per_dgram <= nlines) {
		wl->off[wl->ndgrams++] = len;
		for (size_t i = 0; i < lines_per_dgram; i++)
			len += (size_t)format_line(wl->buf + len, rnd() % nseries);
		wl->nlines += lines_per_dgram;
	}
	wl->off[wl->ndgrams] = len;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

enum mode { FRAME, PARSE, MERGE };

struct result {
	double ns_per_line;
	size_t series, table_bytes, key_bytes;
};

static struct result run(const struct workload *wl, enum mode mode, int rounds)
{
	struct proto_parser ps;
	struct agg_table t;
	struct agg_ages ages;
	static char out[MAX_DGRAM + 1];
	struct packer pk;
	volatile size_t sink = 0;
	struct result res = { 0 };

	proto_parser_init(&ps);
	agg_table_init(&t, &(struct agg_limits){ 10000000, (size_t)1 << 31, 0, 61440 });
	agg_ages_init(&ages, 1000);
	packer_init(&pk, out, sizeof(out) - 1);

	double best = 1e30;
	for (int r = 0; r < rounds; r++) {
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
				if (proto_parse_line(&ps, line, n, &s) != REJECT_NONE)
					abort();
				if (mode == PARSE) {
					sink += s.id_len;
					continue;
				}
				struct agg_outcome oc = { .forward = s.type == METER_SAMPLED };
				if (!oc.forward)
					agg_table_record(&t, &ages, &s, 1e9, &oc);
				if (oc.forward && !packer_add_sample(&pk, &s)) {
					packer_reset(&pk);
					packer_add_sample(&pk, &s);
				}
			}
		}
		double el = now_ns() - t0;
		if (el < best)
			best = el;
		if (mode == MERGE && r + 1 < rounds)
			agg_table_clear(&t);
	}
	(void)sink;
	res.ns_per_line = best / (double)wl->nlines;
	res.series = agg_table_count(&t);
	res.table_bytes = keytab_memory(&t.kt);
	res.key_bytes = t.kt.key_bytes;
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
	proto_parser_deinit(&ps);
	return res;
}

/* Cost of closing a window: every merged series encoded into datagrams. */
static double run_flush(const struct workload *wl)
{
	struct proto_parser ps;
	struct agg_table t;
	struct agg_ages ages;
	static char out[MAX_DGRAM + 1];
	struct packer pk;

	proto_parser_init(&ps);
	agg_table_init(&t, &(struct agg_limits){ 10000000, (size_t)1 << 31, 0, 61440 });
	agg_ages_init(&ages, 1000);
	for (size_t d = 0; d < wl->ndgrams; d++) {
		struct proto_lines it;
		const char *line;
		size_t n;
		bool partial;
		proto_lines_init(&it, wl->buf + wl->off[d], wl->off[d + 1] - wl->off[d], false);
		while (proto_lines_next(&it, &line, &n, &partial)) {
			struct sample s;
			struct agg_outcome oc;
			if (proto_parse_line(&ps, line, n, &s) == REJECT_NONE && s.type != METER_SAMPLED)
				agg_table_record(&t, &ages, &s, 1e9, &oc);
		}
	}
	double t0 = now_ns();
	struct agg_cursor cursor;
	size_t lines = 0, dist;
	agg_cursor_start(&cursor);
	packer_init(&pk, out, sizeof(out) - 1);
	while (!agg_cursor_done(&t, &cursor)) {
		packer_reset(&pk);
		lines += packer_add_table(&pk, &t, &cursor, &dist);
	}
	double ns = (now_ns() - t0) / (double)(lines ? lines : 1);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
	proto_parser_deinit(&ps);
	return ns;
}

int main(int argc, char **argv)
{
	size_t nlines = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
	int rounds = 5;
	const size_t per_dgram[] = { 1, 20 };
	const uint64_t series[] = { 1000, 100000 };

	printf("bench_core: %zu lines per run, best of %d runs\n\n", nlines, rounds);
	printf("%-10s %-8s %8s %8s %8s %7s %7s %9s %10s %12s\n", "lines/dg", "series", "frame", "parse",
	       "merge", "parse/", "merge/", "flush", "table B/", "key B/");
	printf("%-10s %-8s %8s %8s %8s %7s %7s %9s %10s %12s\n", "", "", "ns/line", "ns/line",
	       "ns/line", "frame", "frame", "ns/series", "series", "series");
	for (size_t i = 0; i < 2; i++) {
		for (size_t j = 0; j < 2; j++) {
			struct workload wl;
			rng = 0x853c49e6748fea9bull;
			workload_make(&wl, nlines, per_dgram[i], series[j]);
			struct result f = run(&wl, FRAME, rounds);
			struct result p = run(&wl, PARSE, rounds);
			struct result m = run(&wl, MERGE, rounds);
			double fl = run_flush(&wl);
			printf("%-10zu %-8llu %8.1f %8.1f %8.1f %7.1f %7.1f %9.1f %10.1f %12.1f\n",
			       per_dgram[i], (unsigned long long)series[j], f.ns_per_line,
			       p.ns_per_line, m.ns_per_line, p.ns_per_line / f.ns_per_line,
			       m.ns_per_line / f.ns_per_line, fl,
			       (double)(m.table_bytes - m.key_bytes) / (double)m.series,
			       (double)m.key_bytes / (double)m.series);
			free(wl.buf);
			free(wl.off);
		}
	}
	return 0;
}
