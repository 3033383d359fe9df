/* test_encode.c - packing: whole lines, never above the cap, nothing lost or
 * repeated across datagrams, and pass-through lines kept in arrival order. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "protocol.h"
#include "testutil.h"

static struct proto_parser ps;

static void setup(void)
{
	ck_assert_int_eq(proto_parser_init(&ps, 61440), 0);
}

static void teardown(void)
{
	proto_parser_deinit(&ps);
}

static struct sample parse(const char *line)
{
	struct sample s;
	ck_assert_int_eq(proto_parse_line(&ps, line, strlen(line), &s), REJECT_NONE);
	return s;
}

START_TEST(line_shapes)
{
	char buf[256];
	struct packer pk;
	const char *cases[][2] = {
		{ "g, 7:n,b=2,a=1:0.250000", "g,7:n,a=1,b=2:0.25\n" },
		{ "c,5:n:1.000000", "c:n:1\n" },
		{ "X,1543160297100:n:42", "X,1543160297100:n:42\n" },
		{ "U:n: 18446744073709551615 ", "U:n:18446744073709551615\n" },
		{ "D:n:1.9", "D:n:1.9\n" },          /* spectatord truncates, as ever */
		{ "t:n: 0.0420\t", "t:n:0.0420\n" },  /* pass-through: the text as written */
		{ "d:n:+1E3", "d:n:+1E3\n" },
		{ "m:n:+1E3", "m:n:1000\n" },          /* merged: formatted anew */
		{ "g:n:-nan", "g:n:nan\n" },
		{ "c:n:1e-400", "c:n:0\n" },
		{ "T:n:1e-10", "T:n:1e-10\n" },
		{ "X,1543160297100:n:42.000", "X,1543160297100:n:42.000\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sample s = parse(cases[i][0]);
		packer_init(&pk, buf, sizeof(buf));
		ck_assert(packer_add_sample(&pk, &s));
		buf[pk.len] = '\0';
		ck_assert_str_eq(buf, cases[i][1]);
	}
}
END_TEST

START_TEST(exact_fit)
{
	char buf[29];
	struct packer pk;
	struct sample a = parse("c:abcdefgh:1"), b = parse("c:ijklmnopqrs:2");

	packer_init(&pk, buf, 28);
	ck_assert(packer_add_sample(&pk, &a));
	ck_assert(!packer_add_sample(&pk, &b));
	ck_assert_uint_eq(pk.len, 13);
	ck_assert_uint_eq(pk.lines, 1);
	packer_init(&pk, buf, 29);
	ck_assert(packer_add_sample(&pk, &a));
	ck_assert(packer_add_sample(&pk, &b));
	ck_assert_uint_eq(pk.len, 29);
}
END_TEST

START_TEST(table_across_many_datagrams)
{
	struct agg_table t;
	struct agg_ages ages;
	char line[128];
	const int n = 5000;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100000, 1 << 24, 0 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	for (int i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "U:series.%d,host=h%d:%llu", i, i % 7,
			 (unsigned long long)(18446744073709551615ull - (uint64_t)i));
		struct sample s = parse(line);
		bool forward;
		ck_assert_int_eq(agg_table_record(&t, &ages, &s, 0, &forward), REJECT_NONE);
		ck_assert(!forward);
	}
	static char out[61440];
	char *seen = calloc((size_t)n, 1);
	struct packer pk;
	struct agg_cursor cursor;
	size_t dist;
	int total = 0;
	agg_cursor_start(&cursor);
	packer_init(&pk, out, 997);
	while (!agg_cursor_done(&t, &cursor)) {
		packer_reset(&pk);
		size_t added = packer_add_table(&pk, &t, &cursor, &dist);
		ck_assert_uint_gt(added, 0);
		ck_assert_uint_le(pk.len, 997);
		ck_assert_uint_eq(added, pk.lines);
		struct proto_lines it;
		const char *l;
		size_t ln;
		bool partial;
		proto_lines_init(&it, out, pk.len, false);
		while (proto_lines_next(&it, &l, &ln, &partial)) {
			struct sample s;
			ck_assert_int_eq(proto_parse_line(&ps, l, ln, &s), REJECT_NONE);
			int idx = atoi(s.id + strlen("series."));
			ck_assert(!seen[idx]);
			seen[idx] = 1;
			ck_assert(s.v.u == 18446744073709551615ull - (uint64_t)idx);
			total++;
		}
	}
	ck_assert_int_eq(total, n);
	free(seen);
	agg_table_deinit(&t);
	agg_ages_deinit(&ages);
}
END_TEST

static int shipped;

/* Reads a full datagram back: values must come in the order they were sent. */
static void ship(struct packer *pk)
{
	struct proto_lines it;
	const char *l;
	size_t ln;
	bool partial;

	ck_assert_uint_le(pk->len, pk->cap);
	proto_lines_init(&it, pk->buf, pk->len, false);
	while (proto_lines_next(&it, &l, &ln, &partial)) {
		struct sample r;
		ck_assert_int_eq(proto_parse_line(&ps, l, ln, &r), REJECT_NONE);
		double want = shipped + 0.5;
		ck_assert(r.v.d == want); /* as sent, D included */
		shipped++;
	}
	packer_reset(pk);
}

START_TEST(pass_through_keeps_arrival_order)
{
	static char out[4096];
	struct packer pk;
	char line[64];

	shipped = 0;
	packer_init(&pk, out, sizeof(out));
	for (int i = 0; i < 3000; i++) {
		snprintf(line, sizeof(line), "%c:lat:%d.5", "tTdD"[i % 4], i);
		struct sample s = parse(line);
		if (!packer_add_sample(&pk, &s)) {
			ship(&pk);
			ck_assert(packer_add_sample(&pk, &s));
		}
	}
	ship(&pk);
	ck_assert_int_eq(shipped, 3000);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("encode");
	TCase *tc = tcase_create("encode");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, line_shapes);
	tcase_add_test(tc, exact_fit);
	tcase_add_test(tc, table_across_many_datagrams);
	tcase_add_test(tc, pass_through_keeps_arrival_order);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
