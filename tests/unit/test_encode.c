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
	ck_assert_int_eq(proto_parser_init(&ps), 0);
}

static void teardown(void)
{
	proto_parser_deinit(&ps);
}

static struct sample parse_n(const char *line, size_t len)
{
	struct sample s;
	ck_assert_int_eq(proto_parse_line(&ps, line, len, &s), REJECT_NONE);
	return s;
}

static struct sample parse(const char *line)
{
	return parse_n(line, strlen(line));
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

/* 13 + 16 bytes of lines: a 28-byte datagram holds both, its last '\n' one
 * byte past the cap (datagram sockets do not send it); a 27-byte one does
 * not. The buffers are exactly cap + 1 bytes, for ASan. */
START_TEST(exact_fit)
{
	struct packer pk;
	struct sample a = parse("c:abcdefgh:1"), b = parse("c:ijklmnopqrs:2");
	char *small = malloc(28), *exact = malloc(29);

	packer_init(&pk, small, 27);
	ck_assert(packer_add_sample(&pk, &a));
	ck_assert(!packer_add_sample(&pk, &b));
	ck_assert_uint_eq(pk.len, 13);
	ck_assert_uint_eq(pk.lines, 1);
	packer_init(&pk, exact, 28);
	ck_assert(packer_add_sample(&pk, &a));
	ck_assert(packer_add_sample(&pk, &b));
	ck_assert_uint_eq(pk.len, 29);
	ck_assert_int_eq(exact[28], '\n');
	free(small);
	free(exact);
}
END_TEST

/* A line of exactly max_datagram bytes is forwarded, alone in its datagram:
 * the newline is only needed between lines. */
START_TEST(a_line_as_long_as_the_datagram_fits)
{
	char line[600], *buf = malloc(513);
	struct packer pk;

	/* "g:" + 508 bytes + ":1" = 512 bytes */
	memcpy(line, "g:", 2);
	memset(line + 2, 'a', 508);
	memcpy(line + 510, ":1", 2);
	struct sample s = parse_n(line, 512);
	ck_assert(encode_fits(&s, 512));
	ck_assert(!encode_fits(&s, 511));
	packer_init(&pk, buf, 512);
	ck_assert(packer_add_sample(&pk, &s));
	ck_assert_uint_eq(pk.len, 513);
	ck_assert(memcmp(buf, line, 512) == 0 && buf[512] == '\n');
	ck_assert(!packer_add_sample(&pk, &s));
	free(buf);
}
END_TEST

/* encode_fits() is the line as forwarded alone: id + "T:" ":" + value. */
static void fits_up_to(const char *prefix, const char *value, size_t max, size_t longest)
{
	char line[256];

	for (size_t id = longest; id <= longest + 1; id++) {
		int n = snprintf(line, sizeof(line), "%s%.*s:%s", prefix, (int)id,
				 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				 value);
		struct sample s = parse_n(line, (size_t)n);
		ck_assert_msg(encode_fits(&s, max) == (id == longest), "%s: id of %zu bytes",
			      prefix, id);
	}
}

START_TEST(too_long_is_exact_at_the_limit)
{
	/* "m:" + id + ":1" = id + 4 bytes: merged or alone, the same line. */
	fits_up_to("m:", "1", 100, 96);
	/* A counter and a gauge too: a longer sum, or another line's TTL,
	 * is the table's to split (agg_table_record()), not a refusal. */
	fits_up_to("c:", "1", 100, 96);
	fits_up_to("g,60:", "1", 100, 93);
	/* Formatted anew: 1e3 becomes 1000. */
	fits_up_to("C:", "1e3", 100, 93);
	/* An age gauge of 0 carries the receive time: any 24 characters. */
	fits_up_to("A:", "0", 100, 73);
	/* A timer keeps its number text, however long. */
	fits_up_to("t:", "0.00000000000000000001", 100, 75);
}
END_TEST

START_TEST(table_across_many_datagrams)
{
	struct agg_table t;
	struct agg_ages ages;
	char line[128];
	const int n = 5000;

	ck_assert_int_eq(agg_table_init(&t, &(struct agg_limits){ 100000, 1 << 24, 0, 61440 }), 0);
	ck_assert_int_eq(agg_ages_init(&ages, 10), 0);
	for (int i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "U:series.%d,host=h%d:%llu", i, i % 7,
			 (unsigned long long)(18446744073709551615ull - (uint64_t)i));
		struct sample s = parse(line);
		struct agg_outcome out;
		ck_assert_int_eq(agg_table_record(&t, &ages, &s, 0, &out), REJECT_NONE);
		ck_assert(!out.forward && !out.split);
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

	ck_assert_uint_le(pk->len, pk->cap + 1);
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
	static char out[4096 + 1];
	struct packer pk;
	char line[64];

	shipped = 0;
	packer_init(&pk, out, sizeof(out) - 1);
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
	tcase_add_test(tc, a_line_as_long_as_the_datagram_fits);
	tcase_add_test(tc, too_long_is_exact_at_the_limit);
	tcase_add_test(tc, table_across_many_datagrams);
	tcase_add_test(tc, pass_through_keeps_arrival_order);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
