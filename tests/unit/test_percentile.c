/* test_percentile.c - SpectatorD's percentile buckets, row by row from
 * tests/data/percentile-buckets.tsv (and from the shared contract it copies,
 * when that is there). */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "percentile.h"
#include "testutil.h"
#include "xorshift.h"

/* Checks every row of one file; returns the rows of each kind it read. */
static void check_file(const char *path, size_t *buckets, size_t *indexes)
{
	size_t len;
	char *text = read_file(path, &len);

	ck_assert_msg(text != NULL, "cannot read %s", path);
	*buckets = *indexes = 0;
	int lineno = 0;
	for (char *save = NULL, *row = strtok_r(text, "\n", &save); row;
	     row = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (row[0] == '#')
			continue;
		char kind[16], hex[16];
		unsigned long long a;
		long long b;
		if (sscanf(row, "bucket\t%llu\t%15s\t%lld", &a, hex, &b) == 3) {
			char want[16];
			ck_assert_msg(a < PCT_BUCKETS, "%s:%d: bucket %llu", path, lineno, a);
			snprintf(want, sizeof(want), "%04zX", (size_t)a);
			ck_assert_msg(strcmp(hex, want) == 0, "%s:%d: tag %s, we print %s", path,
				      lineno, hex, want);
			ck_assert_msg(pct_bucket_bound((size_t)a) == b,
				      "%s:%d: bound of %llu is %lld, we say %" PRId64, path, lineno,
				      a, b, pct_bucket_bound((size_t)a));
			(*buckets)++;
		} else if (sscanf(row, "index\t%lld\t%llu", &b, &a) == 2) {
			ck_assert_msg(pct_bucket_index(b) == a, "%s:%d: %lld goes to %llu, we say %zu",
				      path, lineno, b, a, pct_bucket_index(b));
			(*indexes)++;
		} else {
			ck_assert_msg(sscanf(row, "%15s", kind) != 1, "%s:%d: unknown row: %s", path,
				      lineno, row);
		}
	}
	free(text);
}

START_TEST(every_row_of_our_copy)
{
	size_t b, i;

	check_file(getenv("RELAY_BUCKETS"), &b, &i);
	ck_assert_uint_eq(b, PCT_BUCKETS);
	ck_assert_uint_ge(i, 800);
}
END_TEST

START_TEST(every_row_of_the_shared_contract)
{
	const char *shared = getenv("RELAY_SHARED_BUCKETS");
	size_t len, b, i;
	char *text = shared ? read_file(shared, &len) : NULL;

	ck_assert_msg(text != NULL, "cannot read %s", shared ? shared : "RELAY_SHARED_BUCKETS");
	size_t our_len;
	char *ours = read_file(getenv("RELAY_BUCKETS"), &our_len);
	ck_assert_msg(our_len == len && memcmp(ours, text, len) == 0,
		      "tests/data/percentile-buckets.tsv differs from %s: copy the new contract",
		      shared);
	free(ours);
	free(text);
	check_file(shared, &b, &i);
	ck_assert_uint_eq(b, PCT_BUCKETS);
}
END_TEST

/* Between the rows: the index never goes down as the value grows, and every
 * value lands within one bucket of the one whose bounds hold it (the
 * spill-over quirk), never further. */
START_TEST(monotonic_and_near_the_bounds)
{
	size_t prev = 0;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (int64_t v = -3; v < 5000; v++) {
		size_t i = pct_bucket_index(v);
		ck_assert_uint_ge(i, prev);
		prev = i;
	}
	for (int k = 0; k < 50000; k++) {
		xorshift64(&x);
		int64_t v = (int64_t)(x >> (1 + x % 63));
		size_t i = pct_bucket_index(v);
		ck_assert_uint_lt(i, PCT_BUCKETS);
		size_t lo = 0;
		while (lo + 1 < PCT_BUCKETS && pct_bucket_bound(lo) < v)
			lo++;
		ck_assert_msg(i == lo || i == lo + 1, "%" PRId64 " in bucket %zu, bound says %zu", v,
			      i, lo);
	}
	ck_assert_uint_eq(pct_bucket_index(INT64_MAX), PCT_BUCKETS - 1);
	ck_assert_uint_eq(pct_bucket_index(INT64_MIN), 0);
}
END_TEST

/* The shared workspace's copy of the buckets, for
 * unit.percentile.shared_buckets: skipped, and reported so by CTest, when it
 * is absent (a tarball, a packager's build); our copy is checked above. */
static int shared_contract(void)
{
	if (!shared_file_present("RELAY_SHARED_BUCKETS"))
		return TEST_SKIPPED;
	Suite *su = suite_create("percentile-shared");
	TCase *tc = tcase_create("contract");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_row_of_the_shared_contract);
	suite_add_tcase(su, tc);
	return run_suite(su);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--shared-contract") == 0)
		return shared_contract();
	Suite *su = suite_create("percentile");
	TCase *tc = tcase_create("buckets");

	tcase_set_timeout(tc, 120); /* the sanitizer build, on a busy machine */
	tcase_add_test(tc, every_row_of_our_copy);
	tcase_add_test(tc, monotonic_and_near_the_bounds);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
