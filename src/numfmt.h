/* numfmt.h - numbers to text, exactly and independently of the locale.
 *
 * A forwarded value must reach spectatord as the very same double or uint64
 * the client sent, so doubles are printed with the shortest text that strtod
 * reads back to the same bits, and integers are printed exactly. */
#ifndef RELAY_NUMFMT_H
#define RELAY_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

/* Longest text any of these functions writes, plus the terminating NUL:
 * "-2.2250738585072014e-308" is 24 characters, UINT64_MAX is 20. */
#define NUMFMT_MAX 32
/* The longest of each kind, without the NUL. */
#define NUMFMT_DOUBLE_MAX 24
#define NUMFMT_I64_MAX 20

/* Each writes NUL-terminated text into dst (at least NUMFMT_MAX bytes) and
 * returns its length. NaN is "nan", infinities are "inf" and "-inf". */
size_t numfmt_double(char *dst, double v);
size_t numfmt_u64(char *dst, uint64_t v);
size_t numfmt_i64(char *dst, int64_t v);

#endif
