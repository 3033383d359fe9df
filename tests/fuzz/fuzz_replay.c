/* fuzz_replay.c - runs fuzz inputs through the fuzz target's checks with a
 * plain main(), so that `make test` covers the kept regressions and the seeds
 * without clang or libFuzzer.
 *
 *     fuzz_replay [PATH...]              run the seeds, then every PATH
 *     fuzz_replay --write-seeds DIR      write the seeds into DIR
 *
 * The seeds are derived from the vectors file named by $RELAY_VECTORS (one
 * per row, a few that hold every row under different configurations, and a
 * few made up to reach what the rows do not); without it, only the PATHs
 * run. A PATH is an input file or a directory whose files (dotfiles
 * excepted) are inputs. Exits 0 when every input holds; a broken invariant
 * aborts. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_check.h"
#include "testutil.h"

/* ------------------------------------------------------------------------
 * Seeds from the vectors
 * ------------------------------------------------------------------------ */

struct seed {
	char name[64];
	char *data;
	size_t len, cap;
};

static struct seed *seeds;
static size_t nseeds;
static struct vector *vec; /* lives until the process ends, as testutil.h says */

/* Returns the new seed's index: seeds moves as it grows. */
static size_t seed_new(const char *name, const uint8_t header[FUZZ_HEADER])
{
	seeds = realloc(seeds, (nseeds + 1) * sizeof(*seeds));
	if (!seeds) {
		perror("fuzz_replay");
		exit(2);
	}
	struct seed *s = &seeds[nseeds++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->cap = 4096;
	s->data = malloc(s->cap);
	if (!s->data) {
		perror("fuzz_replay");
		exit(2);
	}
	memcpy(s->data, header, FUZZ_HEADER);
	s->len = FUZZ_HEADER;
	return nseeds - 1;
}

static void seed_put(size_t i, const void *p, size_t n)
{
	struct seed *s = &seeds[i];

	while (s->len + n > s->cap) {
		s->cap *= 2;
		s->data = realloc(s->data, s->cap);
		if (!s->data) {
			perror("fuzz_replay");
			exit(2);
		}
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
}

static void seed_byte(size_t i, uint8_t b)
{
	seed_put(i, &b, 1);
}

/* A vector row is one datagram; none holds the record bytes, which would
 * split it. */
static bool usable(const struct vector *v)
{
	for (size_t i = 0; i < v->line_len; i++) {
		uint8_t b = (uint8_t)v->line[i];
		if (b == FUZZ_SEP || b == FUZZ_FLUSH || b == FUZZ_TRUNC)
			return false;
	}
	return true;
}

static void seed_text(size_t i, const char *text)
{
	seed_put(i, text, strlen(text));
}

/* Timers and distribution summaries (docs/protocol.md 12.9), for the corpus
 * to start from the edges of the statistics form. */
static void timer_seeds(void)
{
	char line[128];

	/* The zero rule: all-zero series of each type, sub-nanosecond timers
	 * (0 ns), fractional D (int64 0), d values whose squares underflow,
	 * and a zero first sample before a non-zero one (no zero rule). */
	seed_text(seed_new("timers-zeros", fuzz_header_roomy),
		  "t:z:0\nt:z:0\nt:z:0\nT:z:0\nT:z:0\nT:z:0\nT:z:0\nT:z:0\n"
		  "d:z:0\nd:z:0\nD:z:0.5\nD:z:0.25\nD:z:0.999\nD:z:0\nD:z:0.1\nD:z:0.75\n"
		  "t:subns:1e-10\nt:subns:0.0000000009\nt:subns:5e-324\nt:subns:1e-12\nt:subns:0\n"
		  "d:tiny:1e-170\nd:tiny:3e-171\nd:tiny:7e-172\nd:tiny:2e-170\nd:tiny:1e-200\nd:tiny:4e-170\n"
		  "d:tinyfirst:5e-170\nd:tinyfirst:1e-170\nd:tinyfirst:3e-170\nd:tinyfirst:1e-171\n"
		  "d:tinyfirst:2e-170\n"
		  "t:mz:0\nt:mz:1\nt:mz:0\nt:mz:0\nt:mz:0\n"
		  "\x1e\x1f\x1e"
		  "T:one:0\x1e" "d:one:0\x1e\x1f");

	/* T's clamp to [1 ns, 24 h], int64 ns near their limit, a timer
	 * total that would overflow (forwarded), D's int64 truncation and
	 * buckets up to the last. */
	seed_text(seed_new("timers-clamp-and-overflow", fuzz_header_roomy),
		  "T:clamp:1e-10\nT:clamp:86400\nT:clamp:86400.000000001\nT:clamp:100000\n"
		  "T:clamp:9223372036.854\nT:clamp:0.000000001\nT:clamp:0.000000004\n"
		  "t:ovf:9000000000\nt:ovf:9000000000\nt:ovf:1\nt:ovf:0.5\nt:ovf:2\nt:ovf:3\n"
		  "D:frac:0.5\nD:frac:1.5\nD:frac:2.9999\nD:frac:4.5\nD:frac:16\nD:frac:15.99\n"
		  "D:frac:1e18\nD:frac:9.2e18\nD:frac:9223372036854774784\n");

	/* d values whose square overflows (each forwarded alone), and a sum
	 * of squares that overflows after a few. */
	seed_text(seed_new("timers-huge-d", fuzz_header_roomy),
		  "d:huge:1e200\nd:huge:1.7976931348623157e308\nd:huge:1\nd:huge:2\n"
		  "d:sq:1e154\nd:sq:1e154\nd:sq:1e154\nd:sq:1e154\nd:sq:1e154\nd:sq:1.3e154\n"
		  "d:sq:1e153\nd:sq:5\n"
		  "D:big:9e18\nD:big:9e18\nD:big:9e18\nD:big:9e18\nD:big:9e18\nD:big:9e18\n");

	/* Many buckets: more lines than one 512-byte datagram holds, so the
	 * series is split; series that fit start in a fresh datagram; the
	 * upstream takes one datagram per flush and fails on the next. */
	static const uint8_t small_header[FUZZ_HEADER] = { 0x00, 0x00, 0xff, 0xff, 0xff };
	size_t many = seed_new("timers-many-buckets", small_header);
	for (int i = 0; i < 60; i++) {
		snprintf(line, sizeof(line), "T:lat,host=a:%.9g\n", 1e-9 * (1u << (i % 31)) * 3);
		seed_put(many, line, strlen(line));
		snprintf(line, sizeof(line), "D:size:%d\n", (1 << (i % 30)) + i);
		seed_put(many, line, strlen(line));
	}
	for (int i = 0; i < 6; i++) {
		snprintf(line, sizeof(line), "t:small.%d:0.%d\nt:small.%d:0.%d\n", i, i + 1, i, i + 2);
		seed_put(many, line, strlen(line));
	}
	seed_text(many, "\x1e\x1f\x01\x01\x1e\x1f\x01\x01\x1e\x1f\x02\x1e\x1f\x00\x01\x1e"
			"T:later:0.1\x1e\x1f\x01\x01");

	/* Client tags the statistics replace, and keys sorting around them. */
	seed_text(seed_new("timers-client-tags", fuzz_header_roomy),
		  "T:tags,statistic=foo,percentile=bar,a=1,z=2:0.5\n"
		  "T:tags,statistic=foo,percentile=bar,a=1,z=2:0.25\n"
		  "T:tags,statistic=foo,percentile=bar,a=1,z=2:1.5\n"
		  "T:tags,statistic=foo,percentile=bar,a=1,z=2:2.5\n"
		  "T:tags,statistic=foo,percentile=bar,a=1,z=2:3.5\n"
		  "T:tags,statistic=foo,percentile=bar,a=1,z=2:4.5\n"
		  "T:tags,statistic=foo,percentile=bar,a=1,z=2:5.5\n"
		  "d:keys,p=1,percentile=x,q=2,s=3,statistic=percentile,t=4:1\n"
		  "d:keys,p=1,percentile=x,q=2,s=3,statistic=percentile,t=4:2\n"
		  "d:keys,p=1,percentile=x,q=2,s=3,statistic=percentile,t=4:3\n"
		  "d:keys,p=1,percentile=x,q=2,s=3,statistic=percentile,t=4:4\n"
		  "d:keys,p=1,percentile=x,q=2,s=3,statistic=percentile,t=4:5\n"
		  "D:pct,percentilf=1,percentild=2,statistia=3,statisticz=4:7\n"
		  "D:pct,percentilf=1,percentild=2,statistia=3,statisticz=4:70\n"
		  "D:pct,percentilf=1,percentild=2,statistia=3,statisticz=4:700\n"
		  "D:pct,percentilf=1,percentild=2,statistia=3,statisticz=4:7000\n"
		  "D:pct,percentilf=1,percentild=2,statistia=3,statisticz=4:7\n"
		  "D:pct,percentilf=1,percentild=2,statistia=3,statisticz=4:70\n"
		  "D:pct,percentilf=1,percentild=2,statistia=3,statisticz=4:700\n"
		  "D:pct,percentilf=1,percentild=2,statistia=3,statisticz=4:7000\n"
		  "D:pct,percentilf=1,percentild=2,statistia=3,statisticz=4:7\n"
		  "t:s,statistic=count:1\nt:s,statistic=count:2\nt:s,statistic=count:3\n"
		  "t:s,statistic=count:4\nt:s,statistic=count:5\n");

	/* A blocks arena of 8 words (64 key bytes): buckets and kept samples
	 * run out of room, so samples are forwarded and series that would go
	 * as samples go as statistics. */
	static const uint8_t arena_header[FUZZ_HEADER] = { 0x00, 0x00, 0xff, 0x0f, 0x03 };
	seed_text(seed_new("timers-tight-arena", arena_header),
		  "T:a:0.001\nT:a:0.01\nT:a:0.1\nT:a:1\nT:a:10\nT:a:100\n"
		  "D:b:1\nD:b:10\nD:b:100\nD:b:1000\nD:b:10000\nD:b:100000\n"
		  "t:c:1\nt:c:2\nd:e:1\nd:e:2\nd:e:3\n\x1e\x1f\x1e"
		  "T:a:0.001\nT:a:0.01\nT:a:0.1\nT:a:1\nT:a:10\nT:a:100\n");

	/* A flood of buckets and samples, then quiet windows: the blocks arena
	 * grows past 4096 words, then shrinks back when it is cleared. */
	size_t flood = seed_new("timers-arena-flood", fuzz_header_roomy);
	for (int s = 0; s < 64; s++) {
		for (int k = 0; k < 24; k++) {
			snprintf(line, sizeof(line), "T:flood.%02d:%.9g\n", s, 1e-9 * pow(3, k));
			seed_put(flood, line, strlen(line));
		}
	}
	seed_text(flood, "\x1e\x1f\x1e" "T:quiet:1\x1e\x1f\x1e\x1f\x1e" "T:quiet:2\x1e\x1f");

	/* merge_timers off in the header (the age byte's 0x10), then on and
	 * off again by reloads while a window is open. */
	static const uint8_t off_header[FUZZ_HEADER] = { 0xff, 0xff, 0xff, 0x90, 0xff };
	seed_text(seed_new("timers-merge-off-and-reloads", off_header),
		  "t:x:1\nt:x:2\nT:y:0.5\nX,1700000000000:x:1\n\x1e"
		  "\x1c\xff\xff\xff\x1e"
		  "t:x:1\nt:x:2\nt:x:3\nt:x:4\nt:x:5\nT:y:0.5\nd:z:1\n\x1e"
		  "\x1c\xff\x90\xff\x1e"
		  "t:x:6\nT:y:0.25\n\x1e\x1f\x1e" "t:x:7\n");
}

static void make_seeds(void)
{
	size_t nvec = vectors_load(&vec);
	char name[64];

	/* Every row on its own. */
	for (size_t i = 0; i < nvec; i++) {
		if (!usable(&vec[i])) {
			fprintf(stderr, "fuzz_replay: vectors:%d holds a record byte, skipped\n",
				vec[i].lineno);
			continue;
		}
		snprintf(name, sizeof(name), "vector-%03d", vec[i].lineno);
		seed_put(seed_new(name, fuzz_header_roomy), vec[i].line, vec[i].line_len);
	}

	/* Every row, one datagram each, in one window: keys repeat across
	 * rows, so merges happen. */
	size_t all = seed_new("vectors-datagrams", fuzz_header_roomy);
	/* Every row as a line of one datagram (rows with a NUL would cut it). */
	size_t one = seed_new("vectors-one-datagram", fuzz_header_roomy);
	/* Tight limits and small datagrams; a window closes every 8 rows and
	 * the upstream takes one datagram of it, so the rest is folded. */
	size_t tight = seed_new("vectors-tight-windows", fuzz_header_tight);
	/* Every row twice, with a stalled upstream in between. */
	size_t twice = seed_new("vectors-twice-stalled", fuzz_header_roomy);
	size_t n = 0;
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < nvec; i++) {
			const struct vector *v = &vec[i];
			if (!usable(v))
				continue;
			if (round == 0) {
				seed_put(all, v->line, v->line_len);
				seed_byte(all, FUZZ_SEP);
				if (!memchr(v->line, '\0', v->line_len)) {
					seed_put(one, v->line, v->line_len);
					seed_byte(one, '\n');
				}
				seed_put(tight, v->line, v->line_len);
				seed_byte(tight, FUZZ_SEP);
				if (++n % 8 == 0) {
					seed_byte(tight, FUZZ_FLUSH);
					seed_byte(tight, 1);
					seed_byte(tight, FUZZ_SEP);
				}
			}
			seed_put(twice, v->line, v->line_len);
			seed_byte(twice, FUZZ_SEP);
		}
		if (round == 0) {
			seed_byte(twice, FUZZ_FLUSH);
			seed_byte(twice, 0);
			seed_byte(twice, FUZZ_SEP);
		}
	}

	/* A flood of long keys, then a quiet window: tables and arenas
	 * shrink back when they are cleared. */
	size_t flood = seed_new("flood-then-quiet", fuzz_header_roomy);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "c:flood.a.rather.long.metric.name,k=%03d:1\n", i);
		seed_put(flood, name, strlen(name));
	}
	static const char quiet[] = "\x1e\x1f\x1e\x1f\x1e" "c:quiet:1\x1e\x1f\x1e\x1f";
	seed_put(flood, quiet, sizeof(quiet) - 1);

	/* The age-gauge set: its limit, forgetting one id, a reload that
	 * lowers the limit and shrinks the key arena, forgetting every id, and
	 * an id the arena cannot take (it leaves the set again). */
	static const uint8_t ages_header[FUZZ_HEADER] = { 0x01, 0x00, 0xff, 0x03, 0x01 };
	static const char ages[] = "A:a1:0\nA:a2:5\nA:a3:0\nA:a4:1\x1e"
				   "\x1b" "a2\x1e" "A:a4:1\nA:a2:1\x1e"
				   "\x1c\xff\x05\x00\x1e" "A:a5:1\x1e\x1f\x1e"
				   "\x1b\x1e"
				   "A:a6:2\nA:a.very.long.age.gauge.name.for.the.arena:3";
	seed_put(seed_new("age-gauges", ages_header), ages, sizeof(ages) - 1);

	/* Full 512-byte datagrams: a window the upstream takes one datagram of,
	 * folded into the next one, whose series limit a reload lowers so that
	 * part of the fold is dropped; then more new series than the limit. */
	static const uint8_t packed_header[FUZZ_HEADER] = { 0x00, 0x00, 0xff, 0xff, 0xff };
	size_t packed = seed_new("packed-windows", packed_header);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "c:pk.%03d:1\nm:pk.%03d:-5\nt:pk.%03d:0.%03d\n", i, i,
			 i, i);
		seed_put(packed, name, strlen(name));
	}
	static const char take1[] = "\x1e\x1f\x01\x1e";
	seed_put(packed, take1, sizeof(take1) - 1);
	for (int i = 50; i < 150; i++) {
		snprintf(name, sizeof(name), "c:pk.%03d:2\nm:pk.%03d:-7\ng,60:pk.%03d:1\n", i, i,
			 i);
		seed_put(packed, name, strlen(name));
	}
	static const char lower[] = "\x1e\x1c\x7f\x1e\x1f\x02\x1e\x1f\x1e";
	seed_put(packed, lower, sizeof(lower) - 1);
	for (int i = 0; i < 140; i++) {
		snprintf(name, sizeof(name), "c:over.%03d:1\n", i);
		seed_put(packed, name, strlen(name));
	}

	/* Ids near the 512-byte limit: too long for a counter, whose merged
	 * line may grow, but not for a timer. And forty tags, out of order
	 * and duplicated, which the parser sorts with qsort. */
	size_t edges = seed_new("long-ids-many-tags", fuzz_header_tight);
	for (int type = 0; type < 2; type++) {
		seed_put(edges, type ? "t:" : "c:", 2);
		for (int i = 0; i < 47; i++)
			seed_put(edges, "long.name.", 10);
		seed_put(edges, ":1\n", 3);
	}
	seed_put(edges, "c:tags", 6);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), ",k%02d=v%d", (i * 7) % 37, i);
		seed_put(edges, name, strlen(name));
	}
	seed_put(edges, ":1", 2);

	timer_seeds();

	/* A gauge whose TTL, from one line, and value, from the next, make a
	 * line longer than 512 bytes: the window splits it. */
	static const uint8_t split_header[FUZZ_HEADER] = { 0x00, 0x00, 0xff, 0xff, 0xff };
	size_t split = seed_new("gauge-ttl-split", split_header);
	char id[481];
	memset(id, 'g', 480);
	id[480] = '\0';
	snprintf(name, sizeof(name), "g,1000000000000000000:");
	seed_text(split, name);
	seed_text(split, id);
	seed_text(split, ":1\ng:");
	seed_text(split, id);
	seed_text(split, ":-2.2250738585072014e-308\ng:");
	seed_text(split, id);
	seed_text(split, ":2\n");

	/* Many long age gauge ids, most of them forgotten one by one (and one
	 * that was never there): the set reclaims their key bytes. */
	size_t many = seed_new("age-gauges-forget", fuzz_header_roomy);
	for (int i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "A:age.gauge.with.a.long.name.%03d:1\n", i);
		seed_put(many, name, strlen(name));
	}
	for (int i = 0; i <= 100; i++) {
		snprintf(name, sizeof(name), "\x1e\x1b" "age.gauge.with.a.long.name.%03d",
			 i * 3 % 151);
		seed_put(many, name, strlen(name));
	}
}

static int write_seeds(const char *dir)
{
	char path[4096];

	for (size_t i = 0; i < nseeds; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
		FILE *f = fopen(path, "wb");
		bool ok = f && fwrite(seeds[i].data, 1, seeds[i].len, f) == seeds[i].len;
		if (f && fclose(f) != 0)
			ok = false;
		if (!ok) {
			fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	printf("fuzz_replay: wrote %zu seeds into %s\n", nseeds, dir);
	return 0;
}

/* ------------------------------------------------------------------------
 * Running inputs
 * ------------------------------------------------------------------------ */

static size_t run_file(const char *path)
{
	size_t len;
	char *data = read_file(path, &len);

	if (!data) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fuzz_check_label(path);
	fuzz_check((const uint8_t *)data, len);
	fuzz_check_label(NULL);
	free(data);
	return 1;
}

static size_t run_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);

	struct dirent **list;
	int n = scandir(path, &list, NULL, alphasort);
	size_t ran = 0;
	char file[4096];
	if (n < 0) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	for (int i = 0; i < n; i++) {
		if (list[i]->d_name[0] != '.') {
			snprintf(file, sizeof(file), "%s/%s", path, list[i]->d_name);
			if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
				ran += run_file(file);
		}
		free(list[i]);
	}
	free(list);
	return ran;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
		make_seeds();
		rc = write_seeds(argv[2]);
	} else if (argc > 1 && argv[1][0] == '-') {
		fprintf(stderr, "usage: fuzz_replay [PATH...] | fuzz_replay --write-seeds DIR\n");
		return 2;
	} else {
		/* Replaying one crash by hand needs no vectors. */
		if (getenv("RELAY_VECTORS"))
			make_seeds();
		for (size_t i = 0; i < nseeds; i++) {
			fuzz_check_label(seeds[i].name);
			fuzz_check((const uint8_t *)seeds[i].data, seeds[i].len);
		}
		fuzz_check_label(NULL);
		size_t files = 0;
		for (int i = 1; i < argc; i++)
			files += run_path(argv[i]);
		printf("fuzz_replay: %zu seeds and %zu inputs: every invariant holds\n", nseeds,
		       files);
	}
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i].data);
	free(seeds);
	fuzz_check_cleanup();
	return rc;
}
