/* test_numfmt.c - numbers to text must read back to the same value. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numfmt.h"
#include "testutil.h"
#include "xorshift.h"

/* Significant digits of a number's text: those of its mantissa, leading
 * zeros aside. */
static int significant(const char *t)
{
	int n = 0;
	bool lead = true;

	for (; *t && *t != 'e'; t++) {
		if (*t < '0' || *t > '9')
			continue;
		lead = lead && *t == '0';
		n += !lead;
	}
	return n;
}

static void roundtrip(double v)
{
	char buf[NUMFMT_MAX], ref[NUMFMT_MAX];
	size_t n = numfmt_double(buf, v);
	double back = strtod(buf, NULL);

	ck_assert_uint_eq(n, strlen(buf));
	ck_assert_uint_lt(n, NUMFMT_MAX);
	ck_assert_msg(memcmp(&back, &v, sizeof(v)) == 0, "%.17g printed as %s", v, buf);
	if (!isfinite(v) || v == trunc(v))
		return; /* integers print every digit, as integers */
	/* No more digits than the fewest that read back. */
	int p = 1;
	while (snprintf(ref, sizeof(ref), "%.*g", p, v), strtod(ref, NULL) != v)
		p++;
	ck_assert_msg(significant(buf) <= p, "%.17g printed as %s, not as %s", v, buf, ref);
}

START_TEST(doubles_roundtrip)
{
	static const double edge[] = { 0.0, 1.0, -1.0, 0.1, 0.3, 0.30000000000000004, 1e-7, 1e300,
				       1e21, 123456789.123, DBL_MAX, -DBL_MAX, DBL_MIN, 4.9e-324,
				       -2.2250738585072014e-308, 9007199254740993.0, 1e16, 1e15 + 0.5,
				       1611081000.5, -0.0 };
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
		roundtrip(edge[i]);

	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 300000; i++) {
		xorshift64(&x);
		double v;
		memcpy(&v, &x, sizeof(v));
		if (isfinite(v))
			roundtrip(v);
		roundtrip((double)(x % 100000000) / 1000.0);
		roundtrip((double)(x % 1000000007) / 1e6);
		roundtrip(-(double)(x % 100003) / 100.0);
	}
}
END_TEST

START_TEST(doubles_are_short)
{
	char buf[NUMFMT_MAX];

	numfmt_double(buf, 0.1);
	ck_assert_str_eq(buf, "0.1");
	numfmt_double(buf, 3.0);
	ck_assert_str_eq(buf, "3");
	numfmt_double(buf, -0.0);
	ck_assert_str_eq(buf, "-0");
	numfmt_double(buf, 0.1 + 0.2);
	ck_assert_str_eq(buf, "0.30000000000000004");
	numfmt_double(buf, 1e21);
	ck_assert_str_eq(buf, "1e+21");
	numfmt_double(buf, 0.25);
	ck_assert_str_eq(buf, "0.25");
	numfmt_double(buf, -1234.5);
	ck_assert_str_eq(buf, "-1234.5");
	numfmt_double(buf, 0.042);
	ck_assert_str_eq(buf, "0.042");
	numfmt_double(buf, 0.55); /* 0.55 * 100 is not 55, 0.55 * 1000 is 550 */
	ck_assert_str_eq(buf, "0.55");
	numfmt_double(buf, 0.01 + 0.04 + 0.09 + 0.16 + 0.25);
	ck_assert_str_eq(buf, "0.55");
	numfmt_double(buf, 1e-9);
	ck_assert_str_eq(buf, "0.000000001");
	numfmt_double(buf, NAN);
	ck_assert_str_eq(buf, "nan");
	numfmt_double(buf, -INFINITY);
	ck_assert_str_eq(buf, "-inf");
	ck_assert_uint_eq(numfmt_double(buf, -2.2250738585072014e-308), 24);
	/* Subnormals carry fewer digits than "%.15g" would print. */
	numfmt_double(buf, 1.5e-310);
	ck_assert_str_eq(buf, "1.5e-310");
	numfmt_double(buf, -4.9e-324);
	ck_assert_str_eq(buf, "-5e-324");
	numfmt_double(buf, 2.225073858507201e-308); /* the largest subnormal */
	ck_assert_str_eq(buf, "2.225073858507201e-308");
}
END_TEST

START_TEST(integers_are_exact)
{
	char buf[NUMFMT_MAX];

	numfmt_u64(buf, UINT64_MAX);
	ck_assert_str_eq(buf, "18446744073709551615");
	numfmt_u64(buf, 0);
	ck_assert_str_eq(buf, "0");
	numfmt_i64(buf, INT64_MIN);
	ck_assert_str_eq(buf, "-9223372036854775808");
	numfmt_i64(buf, INT64_MAX);
	ck_assert_str_eq(buf, "9223372036854775807");
}
END_TEST

int main(void)
{
	Suite *su = suite_create("numfmt");
	TCase *tc = tcase_create("numfmt");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, doubles_roundtrip);
	tcase_add_test(tc, doubles_are_short);
	tcase_add_test(tc, integers_are_exact);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
