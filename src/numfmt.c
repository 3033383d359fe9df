/* numfmt.c - shortest round-trip doubles and exact integers.
 *
 * Locale: snprintf's "%g" would print a decimal comma under a de_DE
 * LC_NUMERIC. The relay never calls setlocale(), so the "C" locale applies;
 * numfmt_double() still replaces a stray ',' so that no locale can change a
 * value on the wire. */
#include "numfmt.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t numfmt_u64(char *dst, uint64_t v)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	dst[n] = '\0';
	return n;
}

size_t numfmt_i64(char *dst, int64_t v)
{
	if (v >= 0)
		return numfmt_u64(dst, (uint64_t)v);
	dst[0] = '-';
	/* Negate in unsigned arithmetic: -INT64_MIN overflows int64. */
	return 1 + numfmt_u64(dst + 1, 0 - (uint64_t)v);
}

static size_t fix_decimal_point(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == ',')
			s[i] = '.';
	return n;
}

size_t numfmt_double(char *dst, double v)
{
	if (isnan(v))
		return (size_t)(memcpy(dst, "nan", 4), 3);
	if (isinf(v))
		return v > 0 ? (memcpy(dst, "inf", 4), 3) : (memcpy(dst, "-inf", 5), 4);

	/* Integers below 2^53 are exact in both directions; most counter sums
	 * take this path, which costs no snprintf. */
	if (v == trunc(v) && fabs(v) < 9007199254740992.0) {
		if (v == 0)
			return signbit(v) ? (memcpy(dst, "-0", 3), 2) : (memcpy(dst, "0", 2), 1);
		return numfmt_i64(dst, (int64_t)v);
	}

	/* Values with a few decimals (0.25, 1234.5, 0.042) are an integer
	 * over a power of ten; if that division gives back exactly v, those
	 * digits read back to v too (strtod rounds the same quotient). The
	 * product may be exact only past the shortest form (0.55 * 100 is not
	 * 55, 0.55 * 1000 is 550): trailing zeros are dropped, the same
	 * decimal in fewer digits. Two decimals of at most 15 significant
	 * digits never read back to the same double (DBL_DIG), so such digits
	 * are the shortest; longer ones may not be, and take the way below. */
	static const double p10[] = { 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };
	double a = fabs(v);
	for (int k = 0; k < 9 && a * p10[k] < 9007199254740992.0; k++) {
		double m = a * p10[k];
		if (m != trunc(m) || m / p10[k] != a)
			continue;
		char digits[24];
		uint64_t n = (uint64_t)m;
		int frac = k + 1;
		while (n % 10 == 0) { /* v is no integer: frac stays above 0 */
			n /= 10;
			frac--;
		}
		size_t nd = numfmt_u64(digits, n), w = 0;
		if (nd > DBL_DIG)
			break;
		if (v < 0)
			dst[w++] = '-';
		if ((int)nd <= frac) { /* 0.0ddd */
			dst[w++] = '0';
			dst[w++] = '.';
			for (int z = 0; z < frac - (int)nd; z++)
				dst[w++] = '0';
			memcpy(dst + w, digits, nd);
			w += nd;
		} else {
			memcpy(dst + w, digits, nd - (size_t)frac);
			w += nd - (size_t)frac;
			dst[w++] = '.';
			memcpy(dst + w, digits + nd - frac, (size_t)frac);
			w += (size_t)frac;
		}
		dst[w] = '\0';
		return w;
	}

	/* A subnormal holds fewer than 15 significant digits' worth of bits, so
	 * "%.15g" would print digits it does not have: find the fewest that
	 * read back. They are rare; the loop costs nothing elsewhere. */
	if (a < DBL_MIN) {
		int n = 0;
		for (int prec = 1; prec <= 17; prec++) {
			n = snprintf(dst, NUMFMT_MAX, "%.*g", prec, v);
			fix_decimal_point(dst, (size_t)n);
			if (strtod(dst, NULL) == v)
				break;
		}
		return (size_t)n;
	}

	/* A normal double that reads back from 15 significant digits (trailing
	 * zeros dropped) has no shorter form that does; 17 always read back.
	 * Try the short form first and keep it only if it reads back to the
	 * same bits. */
	int n = snprintf(dst, NUMFMT_MAX, "%.15g", v);
	fix_decimal_point(dst, (size_t)n);
	if (strtod(dst, NULL) == v)
		return (size_t)n;
	n = snprintf(dst, NUMFMT_MAX, "%.16g", v);
	fix_decimal_point(dst, (size_t)n);
	if (strtod(dst, NULL) == v)
		return (size_t)n;
	n = snprintf(dst, NUMFMT_MAX, "%.17g", v);
	return fix_decimal_point(dst, (size_t)n);
}
