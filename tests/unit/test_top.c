/* test_top.c - the heaviest ids: the Space-Saving sketch of the lines
 * forwarded as they came (bounded, a newcomer inheriting the lightest
 * count, ids cut), and top_collect() over a window's two tables and two
 * sketches (a series in both counted once, heaviest first, n bounded). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "aggregate.h"
#include "protocol.h"
#include "testutil.h"
#include "top.h"

static struct proto_parser ps;
static struct agg_table tables[2];
static struct agg_ages ages;
static struct top_sketch sketches[2];
static struct top_entry out[TOP_MAX + 10];

static void setup(void)
{
	const struct agg_limits lim = { 100000, 64 << 20, 0, 61440 };

	ck_assert_int_eq(proto_parser_init(&ps), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(agg_table_init(&tables[i], &lim), 0);
		top_sketch_clear(&sketches[i]);
	}
	ck_assert_int_eq(agg_ages_init(&ages, 1000), 0);
}

static void teardown(void)
{
	for (int i = 0; i < 2; i++)
		agg_table_deinit(&tables[i]);
	agg_ages_deinit(&ages);
	proto_parser_deinit(&ps);
}

/* One line into window w, as the relay's window takes it: merged into the
 * table, or counted in the sketch when forwarded as it came. */
static void rec(int w, const char *line)
{
	static const struct admit_policy policy = { 61440, true };
	struct sample s;
	struct admit a;
	enum reject_reason r = proto_parse_line(&ps, line, strlen(line), &s);

	ck_assert_msg(r == REJECT_NONE, "%s: %s", line, reject_reason_name[r]);
	r = admit_line(&tables[w], &ages, &policy, &s, 1e9, &a);
	ck_assert_msg(r == REJECT_NONE, "%s: %s", line, reject_reason_name[r]);
	if (!a.merged)
		top_sketch_add(&sketches[w], (uint8_t)meter_symbol[s.type], s.id, s.id_len, s.hash);
}

static void rec_n(int w, const char *line, int n)
{
	for (int i = 0; i < n; i++)
		rec(w, line);
}

static size_t collect(size_t n)
{
	const struct agg_table *const t[2] = { &tables[0], &tables[1] };
	const struct top_sketch *const k[2] = { &sketches[0], &sketches[1] };

	return top_collect(t, k, out, n);
}

/* Entry i of out is this kind, id, count and merging. */
static void expect(size_t i, char kind, const char *id, uint64_t lines, bool merged)
{
	ck_assert_msg(out[i].kind == (uint8_t)kind && out[i].len == strlen(id) &&
			      memcmp(out[i].id, id, out[i].len) == 0,
		      "entry %zu: %c:%.*s, not %c:%s", i, out[i].kind, (int)out[i].len, out[i].id,
		      kind, id);
	ck_assert_uint_eq(out[i].lines, lines);
	ck_assert_int_eq(out[i].merged, merged);
}

/* The entry of this kind and id (compared as kept), or -1. */
static int sketch_find(const struct top_sketch *k, char kind, const char *id)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->kind[i] == (uint8_t)kind && k->id[i].len == strlen(id) &&
		    memcmp(k->id[i].id, id, k->id[i].len) == 0)
			return (int)i;
	return -1;
}

/* The lines of an entry that must be there. */
static uint64_t sketch_lines(const struct top_sketch *k, char kind, const char *id)
{
	int i = sketch_find(k, kind, id);

	ck_assert_msg(i >= 0, "%c:%s not in the sketch", kind, id);
	return k->lines[i];
}

static void add(struct top_sketch *k, char kind, const char *id, int times)
{
	for (int i = 0; i < times; i++)
		top_sketch_add(k, (uint8_t)kind, id, strlen(id), 0);
}

/* ------------------------------------------------------------------------
 * The sketch
 * ------------------------------------------------------------------------ */

START_TEST(the_sketch_counts_lines_by_kind_and_id)
{
	struct top_sketch *k = &sketches[0];

	add(k, 'X', "a", 3);
	add(k, 't', "a", 1); /* the same id, another type: another entry */
	add(k, 'X', "b", 2);
	ck_assert_uint_eq(k->n, 3);
	ck_assert_uint_eq(sketch_lines(k, 'X', "a"), 3);
	ck_assert_uint_eq(sketch_lines(k, 't', "a"), 1);
	ck_assert_uint_eq(sketch_lines(k, 'X', "b"), 2);
	top_sketch_clear(k);
	ck_assert_uint_eq(k->n, 0);
	add(k, 'X', "a", 1);
	ck_assert_uint_eq(sketch_lines(k, 'X', "a"), 1); /* from nothing again */
}
END_TEST

START_TEST(a_newcomer_takes_the_lightest_entry_and_inherits_its_count)
{
	struct top_sketch *k = &sketches[0];
	char id[32];

	/* id i has i + 2 lines, except id 37, the lightest, with 1. */
	for (int i = 0; i < TOP_SKETCH; i++) {
		snprintf(id, sizeof(id), "id.%d", i);
		add(k, 'X', id, i == 37 ? 1 : i + 2);
	}
	ck_assert_uint_eq(k->n, TOP_SKETCH);

	add(k, 'X', "new", 1);
	ck_assert_uint_eq(k->n, TOP_SKETCH); /* bounded */
	ck_assert_int_lt(sketch_find(k, 'X', "id.37"), 0);
	ck_assert_uint_eq(sketch_lines(k, 'X', "new"), 1 + 1); /* an upper bound */
	for (int i = 0; i < TOP_SKETCH; i++) {
		snprintf(id, sizeof(id), "id.%d", i);
		if (i != 37)
			ck_assert_uint_eq(sketch_lines(k, 'X', id), (uint64_t)i + 2);
	}
	add(k, 'X', "new", 1);
	ck_assert_uint_eq(sketch_lines(k, 'X', "new"), 3);
	/* Now id.0 (2 lines) is the lightest: the next newcomer takes it. */
	add(k, 'T', "other", 1);
	ck_assert_int_lt(sketch_find(k, 'X', "id.0"), 0);
	ck_assert_uint_eq(sketch_lines(k, 'T', "other"), 3);
	ck_assert_uint_eq(sketch_lines(k, 'X', "new"), 3);
}
END_TEST

/* Space-Saving's promise: an id with more than a 1/TOP_SKETCH share of the
 * lines is in the sketch, with a count no lower than its own. */
START_TEST(a_heavy_id_survives_a_crowd)
{
	struct top_sketch *k = &sketches[0];
	char id[32];
	int heavy = 0;

	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "crowd.%d", i);
		add(k, 'X', id, 1);
		if (i % 20 == 0) {
			add(k, 'X', "heavy", 1);
			heavy++;
		}
	}
	ck_assert_uint_eq(k->n, TOP_SKETCH);
	uint64_t lines = sketch_lines(k, 'X', "heavy");
	ck_assert_uint_ge(lines, (uint64_t)heavy);
	ck_assert_uint_eq(collect(1), 1);
	expect(0, 'X', "heavy", lines, false);
}
END_TEST

START_TEST(long_ids_are_cut_at_top_id_max)
{
	struct top_sketch *k = &sketches[0];
	char a[TOP_ID_MAX + 50], b[TOP_ID_MAX + 50];

	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[sizeof(b) - 2] = 'y'; /* differs past the cut */
	add(k, 'X', a, 2);
	add(k, 'X', b, 1);
	ck_assert_uint_eq(k->n, 2); /* still two ids: the whole id is hashed */
	for (size_t i = 0; i < 2; i++) {
		ck_assert_uint_eq(k->id[i].len, TOP_ID_MAX);
		ck_assert(memcmp(k->id[i].id, a, TOP_ID_MAX) == 0);
	}
	ck_assert_uint_eq(k->lines[0] + k->lines[1], 3);
	/* One exactly TOP_ID_MAX long is whole. */
	a[TOP_ID_MAX] = '\0';
	add(k, 'X', a, 1);
	ck_assert_uint_eq(k->id[sketch_find(k, 'X', a)].len, TOP_ID_MAX);
	ck_assert_uint_eq(collect(10), 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert_uint_eq(out[i].len, TOP_ID_MAX);
}
END_TEST

/* ------------------------------------------------------------------------
 * top_collect
 * ------------------------------------------------------------------------ */

START_TEST(nothing_received_nothing_listed)
{
	ck_assert_uint_eq(collect(20), 0);
}
END_TEST

START_TEST(a_series_in_both_windows_counts_once_with_both_counts)
{
	/* 0 is the closed window, 1 the open one. */
	rec_n(0, "c:both,b=2,a=1:1", 3);
	rec_n(1, "c:both,a=1,b=2:1", 4); /* the same series: the canonical id */
	rec_n(0, "c:closed.only:1", 2);
	rec_n(1, "g:open.only:1", 5);
	rec_n(1, "c:open.only:1", 1);    /* the same id, another type */
	ck_assert_uint_eq(collect(20), 4);
	expect(0, 'c', "both,a=1,b=2", 7, true);
	expect(1, 'g', "open.only", 5, true);
	expect(2, 'c', "closed.only", 2, true);
	expect(3, 'c', "open.only", 1, true);
}
END_TEST

START_TEST(timers_merged_count_their_samples)
{
	rec_n(0, "t:lat:0.5", 6);
	rec_n(1, "t:lat:0.25", 3);
	rec_n(1, "D:size:100", 4);
	rec_n(0, "m:peak:1", 2);
	ck_assert_uint_eq(collect(20), 3);
	expect(0, 't', "lat", 9, true);
	expect(1, 'D', "size", 4, true);
	expect(2, 'm', "peak", 2, true);
}
END_TEST

START_TEST(lines_forwarded_as_they_came_are_ranked_with_the_rest)
{
	rec_n(0, "X,1700000000:sampled:1", 2);
	rec_n(1, "X,1700000001:sampled:1", 9); /* in both sketches: once, 11 */
	rec_n(1, "X,1700000001:open.x:1", 1);
	rec_n(0, "X,1700000001:closed.x:1", 4);
	rec_n(1, "c:sampled:1", 6);           /* the same id, merged: its own entry */
	ck_assert_uint_eq(collect(20), 4);
	expect(0, 'X', "sampled", 11, false);
	expect(1, 'c', "sampled", 6, true);
	expect(2, 'X', "closed.x", 4, false);
	expect(3, 'X', "open.x", 1, false);
}
END_TEST

START_TEST(unmerged_timers_are_in_the_sketch)
{
	/* With merge_timers off the window forwards timers as they came. */
	static const struct admit_policy off = { 61440, false };
	struct sample s;
	struct admit a;

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(proto_parse_line(&ps, "t:slow:1", 8, &s), REJECT_NONE);
		ck_assert_int_eq(admit_line(&tables[1], &ages, &off, &s, 1e9, &a), REJECT_NONE);
		ck_assert(!a.merged);
		top_sketch_add(&sketches[1], 't', s.id, s.id_len, 0);
	}
	rec(1, "t:fast:1");
	ck_assert_uint_eq(collect(20), 2);
	expect(0, 't', "slow", 3, false);
	expect(1, 't', "fast", 1, true);
}
END_TEST

START_TEST(the_n_heaviest_heaviest_first)
{
	char line[64];

	/* Series i has (i * 7919) % 100 + 1 lines: every count from 1 to 100,
	 * in no particular order, spread over both windows and the sketches. */
	for (int i = 0; i < 100; i++) {
		int lines = (i * 7919) % 100 + 1;
		snprintf(line, sizeof(line), i % 3 ? "c:s.%d:1" : "X,1:s.%d:1", i);
		rec_n(0, line, lines / 2);
		rec_n(1, line, lines - lines / 2);
	}
	ck_assert_uint_eq(collect(10), 10);
	for (size_t i = 0; i < 10; i++)
		ck_assert_uint_eq(out[i].lines, 100 - i);
	ck_assert_uint_eq(collect(1), 1);
	ck_assert_uint_eq(out[0].lines, 100);
	ck_assert_uint_eq(collect(0), 0);
	ck_assert_uint_eq(collect(1000), 100);
	for (size_t i = 0; i < 100; i++)
		ck_assert_uint_eq(out[i].lines, 100 - i);
}
END_TEST

START_TEST(at_most_top_max)
{
	char line[64];

	for (int i = 0; i < TOP_MAX + 200; i++) {
		snprintf(line, sizeof(line), "c:many.%d:1", i);
		rec(i % 2, line);
	}
	rec_n(1, "c:heavy:1", 3);
	ck_assert_uint_eq(collect(TOP_MAX + 10), TOP_MAX);
	expect(0, 'c', "heavy", 3, true);
	for (size_t i = 1; i < TOP_MAX; i++)
		ck_assert_uint_eq(out[i].lines, 1);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("top");
	TCase *tc = tcase_create("top");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, the_sketch_counts_lines_by_kind_and_id);
	tcase_add_test(tc, a_newcomer_takes_the_lightest_entry_and_inherits_its_count);
	tcase_add_test(tc, a_heavy_id_survives_a_crowd);
	tcase_add_test(tc, long_ids_are_cut_at_top_id_max);
	tcase_add_test(tc, nothing_received_nothing_listed);
	tcase_add_test(tc, a_series_in_both_windows_counts_once_with_both_counts);
	tcase_add_test(tc, timers_merged_count_their_samples);
	tcase_add_test(tc, lines_forwarded_as_they_came_are_ranked_with_the_rest);
	tcase_add_test(tc, unmerged_timers_are_in_the_sketch);
	tcase_add_test(tc, the_n_heaviest_heaviest_first);
	tcase_add_test(tc, at_most_top_max);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
