/* test_protocol.c - the parser against the contract: every row of
 * tests/data/protocol-vectors.tsv, framing, identity and number edge cases. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "protocol.h"
#include "testutil.h"
#include "xorshift.h"

static struct vector *vec;
static size_t nvec;
static struct proto_parser ps;

static void setup(void)
{
	ck_assert_int_eq(proto_parser_init(&ps), 0);
}

static void teardown(void)
{
	proto_parser_deinit(&ps);
}

struct parsed {
	enum reject_reason reason;
	struct sample s;
	char id[1 << 16];
};

/* Parses a datagram; returns how many lines it held, the first in *first. */
static int parse_datagram(const char *buf, size_t len, struct parsed *first, int *rejected_rest)
{
	struct proto_lines it;
	const char *line;
	size_t n;
	bool partial;
	int count = 0;

	*rejected_rest = 0;
	proto_lines_init(&it, buf, len, false);
	while (proto_lines_next(&it, &line, &n, &partial)) {
		struct sample s;
		enum reject_reason r = proto_parse_line(&ps, line, n, &s);
		if (count == 0) {
			first->reason = r;
			first->s = s;
			if (r == REJECT_NONE) {
				memcpy(first->id, s.id, s.id_len);
				first->s.id = first->id;
			}
		} else if (r != REJECT_NONE) {
			(*rejected_rest)++;
		}
		count++;
	}
	return count;
}

static struct parsed got;

START_TEST(vector_row)
{
	const struct vector *v = &vec[_i];
	int rest;
	int lines = parse_datagram(v->line, v->line_len, &got, &rest);
	const char *reason = reject_reason_name[got.reason];

	ck_assert_msg(lines >= 1, "vectors:%d: no line parsed", v->lineno);
	/* Only 'c:tags.dangling3,\n5' holds a second line, and it is refused. */
	ck_assert_msg(rest == lines - 1, "vectors:%d: a later line was accepted", v->lineno);

	if (strncmp(v->verdict, "reject:", 7) == 0) {
		ck_assert_msg(strcmp(reason, v->verdict + 7) == 0, "vectors:%d: %s: want %s, got %s",
			      v->lineno, v->note, v->verdict, reason);
		return;
	}
	ck_assert_msg(strcmp(v->verdict, "ok") == 0, "vectors:%d: verdict %s", v->lineno, v->verdict);
	ck_assert_msg(got.reason == REJECT_NONE, "vectors:%d: want ok, got %s (%s)", v->lineno, reason,
		      v->note);

	const struct sample *s = &got.s;
	char buf[1 << 16];
	ck_assert_msg(meter_symbol[s->type] == v->type[0], "vectors:%d: type %c", v->lineno,
		      meter_symbol[s->type]);
	sample_name(s, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, v->name) == 0, "vectors:%d: name '%s', want '%s'", v->lineno, buf,
		      v->name);
	sample_tags(s, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, v->tags) == 0, "vectors:%d: tags '%s', want '%s'", v->lineno, buf,
		      v->tags);

	if (s->type == METER_MONO_U64) {
		uint64_t want = strtoull(v->value, NULL, 10);
		ck_assert_msg(s->v.u == want, "vectors:%d: value %llu", v->lineno,
			      (unsigned long long)s->v.u);
	} else {
		double want = strtod(v->value, NULL);
		/* The vectors give the value spectatord records: for D, int64(v),
		 * which the window applies; the sample carries v as sent. */
		double got_v = s->type == METER_PCT_DIST ? trunc(s->v.d) : s->v.d;
		if (isnan(want))
			ck_assert_msg(isnan(got_v), "vectors:%d: want nan", v->lineno);
		else
			ck_assert_msg(got_v == want && signbit(got_v) == signbit(want),
				      "vectors:%d: value %.17g, want %s", v->lineno, got_v, v->value);
	}

	if (s->type == METER_GAUGE || s->type == METER_SAMPLED) {
		ck_assert_msg(s->has_extra == (v->extra[0] != '\0'), "vectors:%d: extra presence",
			      v->lineno);
		if (s->has_extra)
			ck_assert_msg(s->extra == strtoll(v->extra, NULL, 10),
				      "vectors:%d: extra %lld, want %s", v->lineno, (long long)s->extra,
				      v->extra);
	} else {
		ck_assert_msg(!s->has_extra, "vectors:%d: extra kept for %c", v->lineno, v->type[0]);
	}
}
END_TEST

/* parse(encode(x)) == x for every accepted vector. */
START_TEST(vector_roundtrip)
{
	const struct vector *v = &vec[_i];
	int rest;

	parse_datagram(v->line, v->line_len, &got, &rest);
	if (got.reason != REJECT_NONE)
		return;

	char out[1 << 16];
	struct packer pk;
	packer_init(&pk, out, sizeof(out));
	ck_assert(packer_add_sample(&pk, &got.s));
	ck_assert_uint_eq(pk.len, encode_sample_len(&got.s) + 1);
	ck_assert_int_eq(out[pk.len - 1], '\n');

	struct sample again;
	ck_assert_msg(proto_parse_line(&ps, out, pk.len - 1, &again) == REJECT_NONE,
		      "vectors:%d: re-parse of %.*s", v->lineno, (int)pk.len - 1, out);
	ck_assert_int_eq(again.type, got.s.type);
	ck_assert_int_eq(again.id_len, got.s.id_len);
	ck_assert(memcmp(again.id, got.s.id, got.s.id_len) == 0);
	ck_assert_int_eq(again.name_len, got.s.name_len);
	ck_assert_int_eq(again.has_extra, got.s.has_extra);
	ck_assert_int_eq(again.extra, got.s.extra);
	if (got.s.type == METER_MONO_U64)
		ck_assert(again.v.u == got.s.v.u);
	else if (isnan(got.s.v.d))
		ck_assert(isnan(again.v.d));
	else
		ck_assert_msg(memcmp(&again.v.d, &got.s.v.d, sizeof(double)) == 0,
			      "vectors:%d: %.17g became %.17g", v->lineno, got.s.v.d, again.v.d);
	/* Canonical text is a fixed point: encoding the re-parsed sample
	 * writes the same bytes. */
	char again_out[1 << 16];
	struct packer pk2;
	packer_init(&pk2, again_out, sizeof(again_out));
	ck_assert(packer_add_sample(&pk2, &again));
	ck_assert_uint_eq(pk2.len, pk.len);
	ck_assert(memcmp(again_out, out, pk.len) == 0);
}
END_TEST

/* Run as unit.protocol.shared_vectors (main() below): skipped, and reported
 * so by CTest, when the workspace's copy is absent. */
START_TEST(vectors_match_shared_copy)
{
	const char *shared = getenv("RELAY_SHARED_VECTORS");
	const char *ours = getenv("RELAY_VECTORS");
	size_t a_len, b_len;
	char *b = shared ? read_file(shared, &b_len) : NULL;

	ck_assert_msg(b != NULL, "cannot read %s", shared ? shared : "RELAY_SHARED_VECTORS");
	char *a = read_file(ours, &a_len);
	ck_assert_ptr_nonnull(a);
	ck_assert_msg(a_len == b_len && memcmp(a, b, a_len) == 0,
		      "tests/data/protocol-vectors.tsv differs from %s: copy the new contract",
		      shared);
	free(a);
	free(b);
}
END_TEST

START_TEST(vectors_cover_every_parser_reason)
{
	/* The contract names each parser reason at least once, except those
	 * only the framing or the window can produce. */
	bool seen[REJECT_REASON_COUNT] = { false };
	for (size_t i = 0; i < nvec; i++)
		for (int r = 1; r < REJECT_REASON_COUNT; r++)
			if (strncmp(vec[i].verdict, "reject:", 7) == 0 &&
			    strcmp(vec[i].verdict + 7, reject_reason_name[r]) == 0)
				seen[r] = true;
	for (int r = 1; r < REJECT_REASON_COUNT; r++) {
		if (r == REJECT_TOO_LONG || r == REJECT_TRUNCATED || r == REJECT_SERIES_LIMIT ||
		    r == REJECT_NAME_LIMIT || r == REJECT_AGE_GAUGE_LIMIT)
			continue;
		ck_assert_msg(seen[r], "no vector for %s", reject_reason_name[r]);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * Framing
 * ------------------------------------------------------------------------ */

static int collect(const char *buf, size_t len, bool truncated, char lines[][64], bool *partial,
		   bool *nul_cut)
{
	struct proto_lines it;
	const char *l;
	size_t n;
	int count = 0;

	proto_lines_init(&it, buf, len, truncated);
	while (proto_lines_next(&it, &l, &n, &partial[count])) {
		snprintf(lines[count], 64, "%.*s", (int)n, l);
		count++;
	}
	*nul_cut = it.nul_cut;
	return count;
}

START_TEST(framing_skips_empty_lines_anywhere)
{
	static const char dg[] = "\n\nc:a:1\n\n\nc:b:2\r\n\n";
	char lines[8][64];
	bool partial[8], nul;

	ck_assert_int_eq(collect(dg, sizeof(dg) - 1, false, lines, partial, &nul), 2);
	ck_assert_str_eq(lines[0], "c:a:1");
	ck_assert_str_eq(lines[1], "c:b:2\r");
	ck_assert(!nul);
	ck_assert_int_eq(collect("\n", 1, false, lines, partial, &nul), 0);
	ck_assert_int_eq(collect("", 0, false, lines, partial, &nul), 0);
}
END_TEST

START_TEST(framing_stops_at_nul)
{
	static const char dg[] = "c:a:1\nc:b:2\0c:c:3\n";
	char lines[8][64];
	bool partial[8], nul;

	ck_assert_int_eq(collect(dg, sizeof(dg) - 1, false, lines, partial, &nul), 2);
	ck_assert_str_eq(lines[1], "c:b:2");
	ck_assert(nul);
}
END_TEST

START_TEST(framing_marks_the_cut_line_of_a_truncated_datagram)
{
	static const char dg[] = "c:a:1\nc:b:2\nc:c:12";
	char lines[8][64];
	bool partial[8], nul;

	ck_assert_int_eq(collect(dg, sizeof(dg) - 1, true, lines, partial, &nul), 3);
	ck_assert(!partial[0] && !partial[1] && partial[2]);
	/* Cut right after a newline: every line is whole. */
	ck_assert_int_eq(collect(dg, 12, true, lines, partial, &nul), 2);
	ck_assert(!partial[0] && !partial[1]);
}
END_TEST

/* n bytes of *whole "c:k:1" lines and one "c:kk...k" line ending with end,
 * then tail. */
static size_t fill_lines(char *buf, size_t n, const char *end, const char *tail, size_t *whole)
{
	size_t at = 0;

	for (*whole = 0; at + 6 + 8 + strlen(end) <= n; (*whole)++) {
		memcpy(buf + at, "c:k:1\n", 6);
		at += 6;
	}
	memcpy(buf + at, "c:", 2);
	memset(buf + at + 2, 'k', n - at - 2 - strlen(end));
	memcpy(buf + n - strlen(end), end, strlen(end));
	memcpy(buf + n, tail, strlen(tail));
	return n + strlen(tail);
}

START_TEST(framing_cuts_where_spectatord_reads)
{
	static char dg[PROTO_SPECTATORD_READ + 16];
	struct proto_lines it;
	const char *line;
	size_t len, lines, whole;
	bool partial, last_partial;

	/* Each case: the datagram as the reader passes it (at most one byte
	 * past SpectatorD's read) and whether its last line is partial. */
	const struct {
		const char *end, *tail;
		bool partial;
	} cases[] = {
		{ ":1", "", false },    /* 65536 bytes, last line unterminated: whole */
		{ ":1", "\n", false }, /* the '\n' right past the read: whole */
		{ ":1", "2", true },    /* the cut splits the number */
		{ ":1\n", "c", true }, /* a line started at the cut */
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t n = fill_lines(dg, PROTO_SPECTATORD_READ, cases[c].end, cases[c].tail, &whole);
		proto_lines_init(&it, dg, n, false);
		lines = 0;
		last_partial = false;
		while (proto_lines_next(&it, &line, &len, &partial)) {
			lines++;
			last_partial = partial;
		}
		ck_assert_uint_eq(lines, whole + 1 + (cases[c].tail[0] == 'c'));
		ck_assert_int_eq(last_partial, cases[c].partial);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * Identity
 * ------------------------------------------------------------------------ */

static const char *id_of(const char *line)
{
	static char buf[1 << 16];
	struct sample s;
	enum reject_reason r = proto_parse_line(&ps, line, strlen(line), &s);

	ck_assert_msg(r == REJECT_NONE, "%s: %s", line, reject_reason_name[r]);
	snprintf(buf, sizeof(buf), "%c:%.*s", meter_symbol[s.type], (int)s.id_len, s.id);
	return buf;
}

START_TEST(identity_is_canonical)
{
	ck_assert_str_eq(id_of("c:x,b=2,a=1:1"), "c:x,a=1,b=2");
	ck_assert_str_eq(id_of("c:x,a=1,b=2:1"), "c:x,a=1,b=2");
	ck_assert_str_eq(id_of("C:x:1"), "C:x");
	ck_assert_str_eq(id_of("c:x,a=1,a=2,b=3,a=4:1"), "c:x,a=4,b=3");
	ck_assert_str_eq(id_of("c:x,a b=1,a_b=2,a@b=3:1"), "c:x,a_b=3");
	ck_assert_str_eq(id_of("c:x,b=1,a b=2:1"), "c:x,a_b=2,b=1");
	ck_assert_str_eq(id_of("c:x,ab=1,a=2:1"), "c:x,a=2,ab=1");
	ck_assert_str_eq(id_of("c:n\xc3\xa9,k=v=w:1"), "c:n__,k=v_w");
}
END_TEST

START_TEST(identity_fast_path_borrows_the_line)
{
	static const char line[] = "c:server.numRequests,id=failed,status=200:1";
	struct sample s;

	ck_assert_int_eq(proto_parse_line(&ps, line, sizeof(line) - 1, &s), REJECT_NONE);
	ck_assert_ptr_eq(s.id, line + 2);
	/* Unsorted or unclean input is rebuilt in scratch. */
	static const char unsorted[] = "c:server.numRequests,status=200,id=failed:1";
	ck_assert_int_eq(proto_parse_line(&ps, unsorted, sizeof(unsorted) - 1, &s), REJECT_NONE);
	ck_assert(s.id == ps.ids[0] || s.id == ps.ids[1]);
	ck_assert(memcmp(s.id, line + 2, s.id_len) == 0);
}
END_TEST

START_TEST(a_rebuilt_id_outlives_the_next_parse)
{
	static const char a[] = "c:x,b=1,a=1:1", b[] = "c:y,b=2,a=2:1", c[] = "c:z:1";
	struct sample sa, sb, sc;

	ck_assert_int_eq(proto_parse_line(&ps, a, sizeof(a) - 1, &sa), REJECT_NONE);
	ck_assert_int_eq(proto_parse_line(&ps, b, sizeof(b) - 1, &sb), REJECT_NONE);
	ck_assert(memcmp(sa.id, "x,a=1,b=1", sa.id_len) == 0);
	ck_assert(memcmp(sb.id, "y,a=2,b=2", sb.id_len) == 0);
	ck_assert_int_eq(proto_parse_line(&ps, c, sizeof(c) - 1, &sc), REJECT_NONE);
	ck_assert(memcmp(sb.id, "y,a=2,b=2", sb.id_len) == 0);
}
END_TEST

START_TEST(identity_survives_ten_thousand_tags)
{
	size_t cap = 200000, n = 0;
	char *line = malloc(cap);
	n += (size_t)sprintf(line, "c:many");
	/* Three-letter keys, 5000 distinct, each twice, in descending order. */
	for (int i = 9999; i >= 0; i--) {
		int k = i % 5000;
		n += (size_t)sprintf(line + n, ",%c%c%c=v", 'a' + k / 676, 'a' + k / 26 % 26,
				     'a' + k % 26);
	}
	n += (size_t)sprintf(line + n, ":1");
	ck_assert_uint_lt(n, PROTO_MAX_LINE);

	struct sample s;
	struct proto_parser big;
	ck_assert_int_eq(proto_parser_init(&big), 0);
	ck_assert_int_eq(proto_parse_line(&big, line, n, &s), REJECT_NONE);
	/* 5000 distinct keys, sorted, each once. */
	ck_assert_uint_eq(s.id_len, 4 + 5000 * strlen(",aaa=v"));
	ck_assert(memcmp(s.id + 4, ",aaa=v,aab=v", 12) == 0);
	proto_parser_deinit(&big);
	free(line);
}
END_TEST

START_TEST(lines_are_not_nul_terminated)
{
	/* The value ends at the line's length, whatever follows in memory. */
	static const char dg[] = "c:a:12c:b:34";
	struct sample s;

	ck_assert_int_eq(proto_parse_line(&ps, dg, 6, &s), REJECT_NONE);
	ck_assert(s.v.d == 12);
	ck_assert_int_eq(proto_parse_line(&ps, dg, 5, &s), REJECT_NONE);
	ck_assert(s.v.d == 1);
	ck_assert_int_eq(proto_parse_line(&ps, dg, 4, &s), REJECT_MISSING_VALUE);
}
END_TEST

/* ------------------------------------------------------------------------
 * Numbers: the fast path must agree with strtod bit for bit
 * ------------------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	return xorshift64(&rng);
}

START_TEST(numbers_match_strtod)
{
	char line[128], text[96];
	struct sample s;

	for (int i = 0; i < 200000; i++) {
		size_t n = 0;
		int ndig = 1 + (int)(next_rand() % 20);
		int dot = (int)(next_rand() % (unsigned)(ndig + 2)) - 1;
		for (int d = 0; d < ndig; d++) {
			if (d == dot)
				text[n++] = '.';
			text[n++] = (char)('0' + next_rand() % 10);
		}
		if (next_rand() % 3 == 0)
			n += (size_t)sprintf(text + n, "e%d", (int)(next_rand() % 80) - 40);
		text[n] = '\0';
		snprintf(line, sizeof(line), "g:n:%s", text);
		ck_assert_int_eq(proto_parse_line(&ps, line, strlen(line), &s), REJECT_NONE);
		double want = strtod(text, NULL);
		ck_assert_msg(memcmp(&want, &s.v.d, sizeof(want)) == 0, "%s: %.17g vs %.17g", text,
			      s.v.d, want);
	}
}
END_TEST

START_TEST(u64_is_exact_above_2_53)
{
	struct sample s;
	static const char *lines[] = { "U:n:9007199254740993", "U:n:18446744073709551615",
				       "U:n:18446744073709551614", "U:n:123456789012345678" };
	static const uint64_t want[] = { 9007199254740993ull, UINT64_MAX, UINT64_MAX - 1,
					 123456789012345678ull };

	for (size_t i = 0; i < 4; i++) {
		ck_assert_int_eq(proto_parse_line(&ps, lines[i], strlen(lines[i]), &s), REJECT_NONE);
		ck_assert(s.v.u == want[i]);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *su = suite_create("protocol");
	TCase *tc = tcase_create("vectors");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, vectors_cover_every_parser_reason);
	tcase_add_loop_test(tc, vector_row, 0, (int)nvec);
	tcase_add_loop_test(tc, vector_roundtrip, 0, (int)nvec);
	suite_add_tcase(su, tc);

	tc = tcase_create("framing");
	tcase_add_test(tc, framing_skips_empty_lines_anywhere);
	tcase_add_test(tc, framing_stops_at_nul);
	tcase_add_test(tc, framing_marks_the_cut_line_of_a_truncated_datagram);
	tcase_add_test(tc, framing_cuts_where_spectatord_reads);
	suite_add_tcase(su, tc);

	tc = tcase_create("identity");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, identity_is_canonical);
	tcase_add_test(tc, identity_fast_path_borrows_the_line);
	tcase_add_test(tc, a_rebuilt_id_outlives_the_next_parse);
	tcase_add_test(tc, identity_survives_ten_thousand_tags);
	tcase_add_test(tc, lines_are_not_nul_terminated);
	suite_add_tcase(su, tc);

	tc = tcase_create("numbers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, numbers_match_strtod);
	tcase_add_test(tc, u64_is_exact_above_2_53);
	suite_add_tcase(su, tc);
	return su;
}

/* The shared workspace's copy of the vectors, for unit.protocol.shared_vectors. */
static int shared_contract(void)
{
	if (!shared_file_present("RELAY_SHARED_VECTORS"))
		return TEST_SKIPPED;
	Suite *su = suite_create("protocol-shared");
	TCase *tc = tcase_create("contract");
	tcase_add_test(tc, vectors_match_shared_copy);
	suite_add_tcase(su, tc);
	return run_suite(su);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--shared-contract") == 0)
		return shared_contract();
	nvec = vectors_load(&vec);
	return run_suite(suite());
}
