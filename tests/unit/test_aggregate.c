/* test_aggregate.c - merge rules, limits and folding, checked against an
 * independent reference on a fixed-seed random workload. */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "encode.h"
#include "protocol.h"
#include "testutil.h"
#include "xorshift.h"

static struct proto_parser ps;

static void setup(void)
{
	ck_assert_int_eq(proto_parser_init(&ps), 0);
}

static void teardown(void)
{
	proto_parser_deinit(&ps);
}

static enum reject_reason rec_out(struct agg_table *t, struct agg_ages *ages, const char *line,
				  double now, struct agg_outcome *out)
{
	struct sample s;
	enum reject_reason r = proto_parse_line(&ps, line, strlen(line), &s);

	ck_assert_msg(r == REJECT_NONE, "%s: %s", line, reject_reason_name[r]);
	return agg_table_record(t, ages, &s, now, out);
}

/* Records a line that must merge, neither forwarded nor split. */
static enum reject_reason rec(struct agg_table *t, struct agg_ages *ages, const char *line,
			      double now)
{
	struct agg_outcome out;
	enum reject_reason r = rec_out(t, ages, line, now, &out);

	ck_assert_msg(!out.forward && !out.split, "%s: to be forwarded as it came", line);
	return r;
}

static const struct agg_value *val(const struct agg_table *t, char sym, const char *id)
{
	struct keytab_entry *e =
		keytab_find(&t->kt, keytab_hash((uint8_t)sym, id, strlen(id)), (uint8_t)sym, id,
			    strlen(id));
	ck_assert_msg(e != NULL, "%c:%s not in the table", sym, id);
	return keytab_val(e);
}

/* ------------------------------------------------------------------------
 * Rules
 * ------------------------------------------------------------------------ */

START_TEST(each_type_merges_by_its_rule)
{
	struct agg_table t;
	struct agg_ages ages;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	const char *lines[] = {
		"c:n:1",       "c:n:2.5",    "c:n:0",    "m:n:3",  "m:n:-5",    "m:n:7",
		"g,60:n:1",    "g:n:2",      "g:n:nan",  "C:n:10", "C:n:4",     "U:n:18446744073709551615",
		"U:n:9007199254740993",      "A:n:100",  "A:n:50", "g,30:t:1",  "g,40:t:2",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ck_assert_int_eq(rec(&t, &ages, lines[i], 1e9), REJECT_NONE);

	ck_assert(val(&t, 'c', "n")->v.d == 3.5);
	ck_assert(val(&t, 'm', "n")->v.d == 7);
	ck_assert(isnan(val(&t, 'g', "n")->v.d));     /* NaN is a last value too */
	ck_assert_int_eq(val(&t, 'g', "n")->ttl, 60); /* from the last line that had one */
	ck_assert_int_eq(val(&t, 'g', "t")->ttl, 40);
	ck_assert(val(&t, 'C', "n")->v.d == 4);       /* last, not max */
	ck_assert(val(&t, 'U', "n")->v.u == 9007199254740993ull);
	ck_assert(val(&t, 'A', "n")->v.d == 50);      /* last, even backwards */
	ck_assert_uint_eq(agg_table_count(&t), 7);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

START_TEST(age_zero_becomes_the_receive_time)
{
	struct agg_table t;
	struct agg_ages ages;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	ck_assert_int_eq(rec(&t, &ages, "A:a:0", 1764089000.125), REJECT_NONE);
	ck_assert(val(&t, 'A', "a")->v.d == 1764089000.125);
	ck_assert_int_eq(rec(&t, &ages, "A:b:-0", 1764089001.5), REJECT_NONE);
	ck_assert(val(&t, 'A', "b")->v.d == 1764089001.5);
	ck_assert_int_eq(rec(&t, &ages, "A:c:0.0", 7), REJECT_NONE);
	ck_assert(val(&t, 'A', "c")->v.d == 7);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

START_TEST(counters_and_max_gauges_that_change_nothing_emit_nothing)
{
	struct agg_table t;
	struct agg_ages ages;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	rec(&t, &ages, "c:zero:0", 0);
	rec(&t, &ages, "c:zero:-0", 0);
	rec(&t, &ages, "m:low:-1.7976931348623157e308", 0);
	rec(&t, &ages, "c:one:1", 0);
	size_t pos = 0;
	ck_assert(!agg_entry_emits(keytab_next(&t.kt, &pos)));
	ck_assert(!agg_entry_emits(keytab_next(&t.kt, &pos)));
	ck_assert(agg_entry_emits(keytab_next(&t.kt, &pos)));
	struct agg_cursor c;
	agg_cursor_start(&c);
	ck_assert_uint_eq(agg_table_pending(&t, &c), 1);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

/* A sum spectatord would reach as +inf is never a line saying inf: the
 * line that overflows goes alone, the window's sum stays finite. */
START_TEST(counter_overflow_goes_alone)
{
	struct agg_table t;
	struct agg_ages ages;
	struct agg_outcome out;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	ck_assert_int_eq(rec(&t, &ages, "c:x:1e308", 0), REJECT_NONE);
	ck_assert_int_eq(rec_out(&t, &ages, "c:x:1e308", 0, &out), REJECT_NONE);
	ck_assert(out.forward && !out.split);
	ck_assert(val(&t, 'c', "x")->v.d == 1e308);
	ck_assert_int_eq(rec(&t, &ages, "c:x:1", 0), REJECT_NONE); /* still finite */
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

/* Near max_line a sum's text can outgrow every line it came from: the line
 * that would make it too long goes alone. */
START_TEST(counter_sum_too_long_for_a_line_goes_alone)
{
	struct agg_table t;
	struct agg_ages ages;
	struct agg_outcome out;
	char line[128];

	/* "c:" + 40 + ":0.1" = 47 bytes; the sum 0.30000000000000004 would
	 * make 62. */
	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 0, 50 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	snprintf(line, sizeof(line), "c:%.40s:0.1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	ck_assert_int_eq(rec(&t, &ages, line, 0), REJECT_NONE);
	snprintf(line, sizeof(line), "c:%.40s:0.2", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	ck_assert_int_eq(rec_out(&t, &ages, line, 0, &out), REJECT_NONE);
	ck_assert(out.forward);
	/* 0.1 + 0.4 = 0.5 is short again. */
	snprintf(line, sizeof(line), "c:%.40s:0.4", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	ck_assert_int_eq(rec(&t, &ages, line, 0), REJECT_NONE);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

/* A gauge's TTL from one line and value from another that no line can
 * carry together: the series as it stood is split off, and starts again
 * from the new line without a TTL (spectatord keeps the one it was sent). */
START_TEST(gauge_split_when_ttl_and_value_do_not_fit_one_line)
{
	struct agg_table t;
	struct agg_ages ages;
	struct agg_outcome out;
	char line[128];
	const char *id = "gggggggggggggggggggggggggggggg"; /* 30 bytes */

	/* "g,1000000000000:" + 30 + ":1" = 48; "g:" + 30 + ":0.30000000000000004"
	 * = 52; together 66 > 60. */
	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 0, 60 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	snprintf(line, sizeof(line), "g,1000000000000:%s:1", id);
	ck_assert_int_eq(rec(&t, &ages, line, 0), REJECT_NONE);
	snprintf(line, sizeof(line), "g:%s:0.30000000000000004", id);
	ck_assert_int_eq(rec_out(&t, &ages, line, 0, &out), REJECT_NONE);
	ck_assert(out.split && !out.forward);
	ck_assert(out.old.v.d == 1 && out.old.ttl == 1000000000000);
	ck_assert(val(&t, 'g', id)->v.d == 0.30000000000000004);
	ck_assert_int_eq(val(&t, 'g', id)->ttl, 0);
	/* A short value shares a line with a TTL again. */
	snprintf(line, sizeof(line), "g,5:%s:2", id);
	ck_assert_int_eq(rec(&t, &ages, line, 0), REJECT_NONE);
	snprintf(line, sizeof(line), "g:%s:3", id);
	ck_assert_int_eq(rec(&t, &ages, line, 0), REJECT_NONE);
	ck_assert_int_eq(val(&t, 'g', id)->ttl, 5);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

/* ------------------------------------------------------------------------
 * Limits
 * ------------------------------------------------------------------------ */

START_TEST(series_limit_refuses_only_new_keys)
{
	struct agg_table t;
	struct agg_ages ages;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 3, 1 << 20, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	ck_assert_int_eq(rec(&t, &ages, "c:a:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "c:b:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "C:a:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "c:c:1", 0), REJECT_SERIES_LIMIT);
	ck_assert_int_eq(rec(&t, &ages, "c:a:1", 0), REJECT_NONE);
	ck_assert(val(&t, 'c', "a")->v.d == 2);
	/* A refused age gauge does not take a slot. */
	ck_assert_int_eq(rec(&t, &ages, "A:x:1", 0), REJECT_SERIES_LIMIT);
	ck_assert_uint_eq(agg_ages_count(&ages), 0);
	agg_table_clear(&t);
	ck_assert_int_eq(rec(&t, &ages, "c:c:1", 0), REJECT_NONE);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

START_TEST(key_bytes_limit_refuses_long_new_keys)
{
	struct agg_table t;
	struct agg_ages ages;
	char line[200];

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 1000, 100, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	snprintf(line, sizeof(line), "c:%090d:1", 1);
	ck_assert_int_eq(rec(&t, &ages, line, 0), REJECT_NONE);
	snprintf(line, sizeof(line), "c:%090d:1", 2);
	ck_assert_int_eq(rec(&t, &ages, line, 0), REJECT_SERIES_LIMIT);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

START_TEST(per_name_budget_refuses_new_series_of_a_runaway_name)
{
	struct agg_table t;
	struct agg_ages ages;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 2, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	ck_assert_int_eq(rec(&t, &ages, "c:runaway,id=1:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "c:runaway,id=2:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "c:runaway,id=3:1", 0), REJECT_NAME_LIMIT);
	ck_assert_int_eq(rec(&t, &ages, "c:runaway,id=1:1", 0), REJECT_NONE); /* known: merges */
	ck_assert_int_eq(rec(&t, &ages, "g:other,id=3:1", 0), REJECT_NONE);   /* other names pass */
	ck_assert_int_eq(rec(&t, &ages, "g:runaway:1", 0), REJECT_NAME_LIMIT); /* all types count */
	/* A refused age gauge gives its name's slot back. */
	struct agg_ages none;
	ck_assert_int_eq(agg_ages_init(&none, 0), 0);
	ck_assert_int_eq(rec(&t, &none, "A:age:1", 0), REJECT_AGE_GAUGE_LIMIT);
	agg_ages_deinit(&none);
	ck_assert_int_eq(rec(&t, &ages, "c:age,k=1:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "c:age,k=2:1", 0), REJECT_NONE);
	agg_table_clear(&t); /* the budget is per window */
	ck_assert_int_eq(rec(&t, &ages, "c:runaway,id=3:1", 0), REJECT_NONE);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

START_TEST(age_gauge_limit_outlives_windows)
{
	struct agg_table t;
	struct agg_ages ages;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 2), 0);
	ck_assert_int_eq(rec(&t, &ages, "A:a:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "A:b,k=v:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "A:c:1", 0), REJECT_AGE_GAUGE_LIMIT);
	ck_assert_int_eq(rec(&t, &ages, "A:a:2", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "c:c:1", 0), REJECT_NONE); /* other types are not limited */
	agg_table_clear(&t);
	ck_assert_int_eq(rec(&t, &ages, "A:b,k=v:1", 0), REJECT_NONE); /* known ids always pass */
	ck_assert_int_eq(rec(&t, &ages, "A:c:1", 0), REJECT_AGE_GAUGE_LIMIT);
	ck_assert(agg_ages_contains(&ages, "b,k=v", 5));
	ck_assert_int_eq(agg_ages_forget(&ages, "a", 1), 0);
	ck_assert_int_eq(agg_ages_forget(&ages, "a", 1), -ENOENT);
	ck_assert_int_eq(rec(&t, &ages, "A:c:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "A:d:1", 0), REJECT_AGE_GAUGE_LIMIT);
	agg_ages_forget_all(&ages);
	ck_assert_uint_eq(agg_ages_count(&ages), 0);
	ck_assert_int_eq(rec(&t, &ages, "A:d:1", 0), REJECT_NONE);
	/* An id forgotten while its window is open takes a slot again. */
	ck_assert_int_eq(rec(&t, &ages, "A:e:1", 0), REJECT_NONE);
	agg_ages_forget_all(&ages);
	ck_assert_int_eq(rec(&t, &ages, "A:f:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "A:g:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "A:e:2", 0), REJECT_AGE_GAUGE_LIMIT);
	ck_assert(!agg_ages_contains(&ages, "e", 1));
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

/* One window: the table is delivered and cleared, the set moves on. */
static void close_window(struct agg_table *t, struct agg_ages *ages)
{
	agg_table_clear(t);
	agg_ages_next_window(ages);
}

START_TEST(resync_keeps_what_may_be_in_flight)
{
	struct agg_table t;
	struct agg_ages ages;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 1000), 0);
	ck_assert_int_eq(rec(&t, &ages, "A:old:1", 0), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "A:shared:1", 0), REJECT_NONE);
	for (int i = 0; i < 3; i++)
		close_window(&t, &ages);
	/* Two windows back: possibly still queued at SpectatorD. */
	ck_assert_int_eq(rec(&t, &ages, "A:recent:1", 0), REJECT_NONE);
	close_window(&t, &ages);
	close_window(&t, &ages);
	/* In the open window when the request goes out, and meanwhile. */
	ck_assert_int_eq(rec(&t, &ages, "A:open:1", 0), REJECT_NONE);
	agg_ages_mark(&ages);
	close_window(&t, &ages);
	ck_assert_int_eq(rec(&t, &ages, "A:meanwhile:1", 0), REJECT_NONE);

	/* SpectatorD answers with none of ours but "shared". */
	struct agg_id ids[] = { { "theirs", 6 }, { "uptime", 6 }, { "shared", 6 }, { "theirs", 6 } };
	ck_assert_int_eq(agg_ages_replace(&ages, ids, 4), 0);
	ck_assert(agg_ages_contains(&ages, "theirs", 6));
	ck_assert(agg_ages_contains(&ages, "uptime", 6));
	ck_assert(agg_ages_contains(&ages, "shared", 6));
	ck_assert(agg_ages_contains(&ages, "recent", 6));
	ck_assert(agg_ages_contains(&ages, "open", 4));
	ck_assert(agg_ages_contains(&ages, "meanwhile", 9));
	ck_assert(!agg_ages_contains(&ages, "old", 3)); /* long delivered, and gone there */
	ck_assert_uint_eq(agg_ages_count(&ages), 6);

	/* Much later, an answer without them drops what has surely arrived. */
	for (int i = 0; i < 5; i++)
		close_window(&t, &ages);
	agg_ages_mark(&ages);
	ck_assert_int_eq(agg_ages_replace(&ages, ids, 2), 0);
	ck_assert_uint_eq(agg_ages_count(&ages), 2);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

START_TEST(resync_race_does_not_refuse_a_known_id)
{
	/* The review's case: x is admitted, a resync answers before x reached
	 * SpectatorD, y and z fill the set; x must still be known. */
	struct agg_table t;
	struct agg_ages ages;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100, 1 << 20, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 3), 0);
	ck_assert_int_eq(rec(&t, &ages, "A:x:0", 10), REJECT_NONE);
	agg_ages_mark(&ages);
	ck_assert_int_eq(agg_ages_replace(&ages, NULL, 0), 0);
	ck_assert_int_eq(rec(&t, &ages, "A:y:0", 11), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "A:z:0", 11), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "A:x:100", 12), REJECT_NONE);
	ck_assert_int_eq(rec(&t, &ages, "A:w:0", 12), REJECT_AGE_GAUGE_LIMIT);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

START_TEST(spectatord_limit_replaces_the_configured_one)
{
	struct agg_ages ages;

	ck_assert_int_eq(agg_ages_init(&ages, 999), 0);
	ck_assert_uint_eq(agg_ages_limit(&ages), 999);
	/* Known, SpectatorD's limit is the one: the set then holds its own
	 * and other writers' ids, so subtracting them again would count them
	 * twice. */
	ages.remote_known = true;
	ages.remote_limit = 1000;
	ck_assert_uint_eq(agg_ages_limit(&ages), 1000);
	ages.remote_limit = 0; /* SpectatorD takes none */
	ck_assert_uint_eq(agg_ages_limit(&ages), 0);
	agg_ages_deinit(&ages);
}
END_TEST

/* ------------------------------------------------------------------------
 * Property: random lines, merged, encoded and parsed back, equal a fold
 * computed by an independent reference.
 * ------------------------------------------------------------------------ */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	return xorshift64(&rng);
}

#define NSERIES 400
#define NLINES 60000
#define MAXTAGS 5

struct spec {
	char type;
	char name[32];
	int ntags;
	char key[MAXTAGS][16], value[MAXTAGS][16];
};

struct expect {
	char key[256]; /* "t:canonical id" */
	double d;
	uint64_t u;
	int64_t ttl;
	bool seen;
};

static int expect_cmp(const void *a, const void *b)
{
	return strcmp(((const struct expect *)a)->key, ((const struct expect *)b)->key);
}

/* The reference identity, written without looking at protocol.c. */
static void reference_key(const struct spec *sp, const int *order, char *out)
{
	char keys[MAXTAGS][16], vals[MAXTAGS][16];
	int n = 0;

	for (int i = 0; i < sp->ntags; i++) {
		char k[16], v[16];
		strcpy(k, sp->key[order[i]]);
		strcpy(v, sp->value[order[i]]);
		for (char *c = k; *c; c++)
			if (!strchr("-._~^", *c) && !(*c >= '0' && *c <= '9') &&
			    !(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z'))
				*c = '_';
		for (char *c = v; *c; c++)
			if (!strchr("-._~^", *c) && !(*c >= '0' && *c <= '9') &&
			    !(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z'))
				*c = '_';
		int j;
		for (j = 0; j < n && strcmp(keys[j], k) != 0; j++)
			;
		strcpy(keys[j], k);
		strcpy(vals[j], v);
		if (j == n)
			n++;
	}
	for (int i = 0; i < n; i++) /* selection sort by key */
		for (int j = i + 1; j < n; j++)
			if (strcmp(keys[j], keys[i]) < 0) {
				char t[16];
				strcpy(t, keys[i]), strcpy(keys[i], keys[j]), strcpy(keys[j], t);
				strcpy(t, vals[i]), strcpy(vals[i], vals[j]), strcpy(vals[j], t);
			}
	char name[32];
	strcpy(name, sp->name);
	for (char *c = name; *c; c++)
		if (*c == ' ' || *c == '@' || (unsigned char)*c >= 0x80)
			*c = '_';
	int w = sprintf(out, "%c:%s", sp->type, name);
	for (int i = 0; i < n; i++)
		w += sprintf(out + w, ",%s=%s", keys[i], vals[i]);
}

START_TEST(random_workload_matches_reference_fold)
{
	static struct spec specs[NSERIES];
	static struct expect ex[NSERIES * 120];
	size_t nex = 0;
	const char types[] = "cmgCUA";
	const char *odd[] = { "plain", "sp ace", "at@x", "caf\xc3\xa9", "k", "dup" };

	for (int i = 0; i < NSERIES; i++) {
		struct spec *sp = &specs[i];
		sp->type = types[rnd() % 6];
		snprintf(sp->name, sizeof(sp->name), "%s.%d", odd[rnd() % 4], i);
		sp->ntags = (int)(rnd() % (MAXTAGS + 1));
		for (int j = 0; j < sp->ntags; j++) {
			/* Some keys repeat within a series, and some collide only
			 * after replacement. */
			switch (rnd() % 4) {
			case 0: snprintf(sp->key[j], 16, "dup"); break;
			case 1: snprintf(sp->key[j], 16, "a b"); break;
			case 2: snprintf(sp->key[j], 16, "a_b"); break;
			default: snprintf(sp->key[j], 16, "k%d", (int)(rnd() % 9)); break;
			}
			snprintf(sp->value[j], 16, "%s%d", odd[rnd() % 6], (int)(rnd() % 3));
		}
	}

	struct agg_table t;
	struct agg_ages ages;
	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ NSERIES * 200, 1 << 26, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, NSERIES * 200), 0);

	/* Lines go out in datagrams of up to 7 lines, as batching clients send. */
	static char dg[8192];
	size_t dlen = 0;
	int in_dg = 0;
	const double now = 1764089000.5;

	for (int i = 0; i < NLINES; i++) {
		const struct spec *sp = &specs[rnd() % NSERIES];
		int order[MAXTAGS];
		for (int j = 0; j < sp->ntags; j++)
			order[j] = j;
		for (int j = sp->ntags - 1; j > 0; j--) {
			int k = (int)(rnd() % (uint64_t)(j + 1)), x = order[j];
			order[j] = order[k];
			order[k] = x;
		}
		char key[256], line[512];
		reference_key(sp, order, key);
		int n = snprintf(line, sizeof(line), "%c", sp->type);
		int64_t ttl = 0;
		if (sp->type == 'g' && rnd() % 3 == 0) {
			ttl = 1 + (int64_t)(rnd() % 600);
			n += snprintf(line + n, sizeof(line) - (size_t)n, ",%lld", (long long)ttl);
		}
		n += snprintf(line + n, sizeof(line) - (size_t)n, ":%s", sp->name);
		for (int j = 0; j < sp->ntags; j++)
			n += snprintf(line + n, sizeof(line) - (size_t)n, ",%s=%s",
				      sp->key[order[j]], sp->value[order[j]]);

		double d = 0;
		uint64_t u = 0;
		switch (sp->type) {
		case 'c': d = (double)(rnd() % 1000) / (rnd() % 2 ? 1 : 8); break;
		case 'm': d = (double)(int64_t)(rnd() % 20001 - 10000) / 3.0; break;
		case 'g': d = rnd() % 17 == 0 ? NAN : (double)(rnd() % 100000) / 7.0; break;
		case 'C': d = (double)(rnd() % 1000000) / 10.0; break;
		case 'U': u = rnd(); break;
		case 'A': d = rnd() % 4 == 0 ? 0 : (double)(1700000000 + rnd() % 1000); break;
		}
		if (sp->type == 'U')
			n += snprintf(line + n, sizeof(line) - (size_t)n, ":%llu", (unsigned long long)u);
		else if (isnan(d))
			n += snprintf(line + n, sizeof(line) - (size_t)n, ":nan");
		else
			n += snprintf(line + n, sizeof(line) - (size_t)n, ":%.17g", d);

		/* Reference fold. */
		size_t e;
		for (e = 0; e < nex && strcmp(ex[e].key, key) != 0; e++)
			;
		if (e == nex) {
			ck_assert_uint_lt(nex, sizeof(ex) / sizeof(ex[0]));
			memset(&ex[e], 0, sizeof(ex[e]));
			strcpy(ex[e].key, key);
			ex[e].d = sp->type == 'm' ? -DBL_MAX : 0;
			nex++;
		}
		switch (sp->type) {
		case 'c': ex[e].d += d; break;
		case 'm': ex[e].d = d > ex[e].d ? d : ex[e].d; break;
		case 'g': ex[e].d = d; ex[e].ttl = ttl ? ttl : ex[e].ttl; break;
		case 'C': ex[e].d = d; break;
		case 'U': ex[e].u = u; break;
		case 'A': ex[e].d = d == 0 ? now : d; break;
		}

		memcpy(dg + dlen, line, (size_t)n);
		dlen += (size_t)n;
		dg[dlen++] = '\n';
		if (++in_dg == 7 || i == NLINES - 1) {
			struct proto_lines it;
			const char *l;
			size_t ln;
			bool partial;
			proto_lines_init(&it, dg, dlen - 1, false); /* no trailing '\n', like Go/py */
			while (proto_lines_next(&it, &l, &ln, &partial)) {
				struct sample s;
				enum reject_reason r = proto_parse_line(&ps, l, ln, &s);
				ck_assert_msg(r == REJECT_NONE, "%.*s: %s", (int)ln, l,
					      reject_reason_name[r]);
				struct agg_outcome out;
				ck_assert_int_eq(agg_table_record(&t, &ages, &s, now, &out),
						 REJECT_NONE);
				ck_assert(!out.forward && !out.split);
			}
			dlen = 0;
			in_dg = 0;
		}
	}
	ck_assert_uint_eq(agg_table_count(&t), nex);
	qsort(ex, nex, sizeof(ex[0]), expect_cmp);

	/* Encode into small datagrams, then read every line back. */
	static char out[1400 + 1];
	struct packer pk;
	struct agg_cursor cursor;
	size_t lines_out = 0, datagrams = 0, dist;
	agg_cursor_start(&cursor);
	packer_init(&pk, out, sizeof(out) - 1);
	while (!agg_cursor_done(&t, &cursor)) {
		packer_reset(&pk);
		packer_add_table(&pk, &t, &cursor, &dist);
		ck_assert_uint_le(pk.len, sizeof(out)); /* the last '\n' may pass the cap */
		if (pk.len == 0)
			continue;
		datagrams++;
		ck_assert_int_eq(out[pk.len - 1], '\n');
		ck_assert_int_ne(out[0], '\n');
		struct proto_lines it;
		const char *l;
		size_t ln;
		bool partial;
		proto_lines_init(&it, out, pk.len, false);
		while (proto_lines_next(&it, &l, &ln, &partial)) {
			struct sample s;
			ck_assert_int_eq(proto_parse_line(&ps, l, ln, &s), REJECT_NONE);
			struct expect probe;
			snprintf(probe.key, sizeof(probe.key), "%c:%.*s", meter_symbol[s.type],
				 (int)s.id_len, s.id);
			struct expect *x = bsearch(&probe, ex, nex, sizeof(ex[0]), expect_cmp);
			ck_assert_msg(x != NULL, "unexpected %s", probe.key);
			ck_assert_msg(!x->seen, "%s forwarded twice", probe.key);
			x->seen = true;
			lines_out++;
			if (s.type == METER_MONO_U64) {
				ck_assert(s.v.u == x->u);
			} else if (isnan(x->d)) {
				ck_assert(isnan(s.v.d));
			} else {
				ck_assert_msg(memcmp(&s.v.d, &x->d, sizeof(double)) == 0,
					      "%s: %.17g, want %.17g", probe.key, s.v.d, x->d);
			}
			if (s.type == METER_GAUGE) {
				ck_assert_int_eq(s.has_extra, x->ttl != 0);
				ck_assert_int_eq(s.extra, x->ttl);
			}
		}
	}
	/* Keys the encoder skipped are exactly those that change nothing. */
	for (size_t i = 0; i < nex; i++)
		if (!ex[i].seen)
			ck_assert_msg((ex[i].key[0] == 'c' && ex[i].d == 0) ||
					      (ex[i].key[0] == 'm' && ex[i].d == -DBL_MAX),
				      "%s never forwarded", ex[i].key);
	ck_assert_uint_gt(datagrams, 10);
	ck_assert_uint_gt(lines_out, nex * 9 / 10);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("aggregate");
	TCase *tc = tcase_create("rules");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, each_type_merges_by_its_rule);
	tcase_add_test(tc, age_zero_becomes_the_receive_time);
	tcase_add_test(tc, counters_and_max_gauges_that_change_nothing_emit_nothing);
	tcase_add_test(tc, counter_overflow_goes_alone);
	tcase_add_test(tc, counter_sum_too_long_for_a_line_goes_alone);
	tcase_add_test(tc, gauge_split_when_ttl_and_value_do_not_fit_one_line);
	suite_add_tcase(su, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, series_limit_refuses_only_new_keys);
	tcase_add_test(tc, key_bytes_limit_refuses_long_new_keys);
	tcase_add_test(tc, per_name_budget_refuses_new_series_of_a_runaway_name);
	tcase_add_test(tc, resync_keeps_what_may_be_in_flight);
	tcase_add_test(tc, resync_race_does_not_refuse_a_known_id);
	tcase_add_test(tc, spectatord_limit_replaces_the_configured_one);
	tcase_add_test(tc, age_gauge_limit_outlives_windows);
	suite_add_tcase(su, tc);

	tc = tcase_create("property");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, random_workload_matches_reference_fold);
	suite_add_tcase(su, tc);

	return run_suite(su);
}
