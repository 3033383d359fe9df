/* metric.h - the vocabulary every module shares: meter types, the parsed
 * sample, and the closed list of reasons a line can be refused for.
 *
 * Types only; no functions beyond trivial inline lookups. */
#ifndef RELAY_METRIC_H
#define RELAY_METRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The eleven SpectatorD meter types. The symbol is the first byte of a line. */
#define METER_TYPES(X)                                  \
	X(AGE, 'A', "age gauge")                        \
	X(COUNTER, 'c', "counter")                      \
	X(MONO, 'C', "monotonic counter (double)")      \
	X(DIST, 'd', "distribution summary")            \
	X(PCT_DIST, 'D', "percentile distribution summary") \
	X(GAUGE, 'g', "gauge")                          \
	X(MAX, 'm', "max gauge")                        \
	X(TIMER, 't', "timer")                          \
	X(PCT_TIMER, 'T', "percentile timer")           \
	X(MONO_U64, 'U', "monotonic counter (uint64)")  \
	X(SAMPLED, 'X', "monotonic sampled source")

enum meter_type {
#define X(id, sym, desc) METER_##id,
	METER_TYPES(X)
#undef X
	METER_TYPE_COUNT
};

extern const char meter_symbol[METER_TYPE_COUNT];
extern const uint8_t meter_by_symbol_[256]; /* type + 1; 0 for other bytes */

/* The type a line's first byte names, or -1. */
static inline int meter_from_symbol(uint8_t c)
{
	return (int)meter_by_symbol_[c] - 1;
}

/* Lines of these types that are forwarded as they came (X always, since
 * spectatord never publishes it; t T d D when they are not merged) carry
 * the number as the client wrote it: strtod reads it back to the same
 * double, and it costs no formatting. Other types always carry their value
 * formatted anew. */
static inline bool meter_keeps_text(enum meter_type t)
{
	return t == METER_TIMER || t == METER_PCT_TIMER || t == METER_DIST ||
	       t == METER_PCT_DIST || t == METER_SAMPLED;
}

/* A forwarded line is "type[,extra]:id:value": its length without the '\n',
 * given the extra's length (0: none) and the value's. */
static inline size_t metric_line_len(size_t id_len, size_t extra_len, size_t value_len)
{
	return 1 + (extra_len ? 1 + extra_len : 0) + 1 + id_len + 1 + value_len;
}

/* The order of tag keys in a canonical id: bytewise, unsigned, a prefix
 * before what it prefixes. The parser sorts tags by it and the encoder
 * merges forced tags into them by it, so there is one definition. Keys are
 * short: compared in line, without a call into libc. */
static inline int tag_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;

	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (uint8_t)a[i] - (uint8_t)b[i];
	return (alen > blen) - (alen < blen);
}

/* Why a line was refused. Parser reasons come first, in the order of the
 * checks (docs/protocol.md section 12.7); the last ones are window limits.
 * Names are stable: they appear in stats, self-metrics and docs. */
#define REJECT_REASONS(X)                                                            \
	X(BAD_TYPE, "bad-type", "first byte is not one of A c C d D g m t T U X")        \
	X(MISSING_SEPARATOR, "missing-separator", "no ':' after the type or the ,extra field") \
	X(BAD_TTL, "bad-ttl", "gauge TTL is not a positive decimal integer")             \
	X(BAD_TIMESTAMP, "bad-timestamp", "X timestamp is not a positive decimal integer") \
	X(MISSING_TIMESTAMP, "missing-timestamp", "X line without a timestamp (spectatord would ignore it)") \
	X(BAD_EXTRA, "bad-extra", "the ,extra field of another type is not a decimal integer") \
	X(MISSING_NAME, "missing-name", "empty metric name")                             \
	X(MISSING_VALUE, "missing-value", "no value field, or an empty one")             \
	X(DANGLING_COMMA, "dangling-comma", "line ends in ',' where tags should be")     \
	X(EMPTY_TAG_SEGMENT, "empty-tag-segment", "empty tag between commas")            \
	X(TAG_WITHOUT_EQUALS, "tag-without-equals", "tag without '='")                   \
	X(EMPTY_TAG_KEY, "empty-tag-key", "tag with an empty key")                       \
	X(EMPTY_TAG_VALUE, "empty-tag-value", "tag with an empty value")                 \
	X(RESERVED_TAG_KEY, "reserved-tag-key", "tag key 'name'")                        \
	X(HEX, "hex", "hexadecimal value")                                               \
	X(BAD_VALUE, "bad-value", "value is not a number")                               \
	X(TRAILING_GARBAGE, "trailing-garbage", "bytes other than whitespace after the value") \
	X(NEGATIVE, "negative", "negative value for a type that ignores negatives")      \
	X(NAN, "nan", "NaN value for a type other than g")                               \
	X(NON_FINITE, "non-finite", "infinite value")                                    \
	X(OUT_OF_RANGE, "out-of-range", "value or extra field outside what spectatord can represent") \
	X(TOO_LONG, "too-long", "the canonical line, forwarded alone, would not fit in one upstream datagram") \
	X(TRUNCATED, "truncated", "line cut off at 65536 bytes, where SpectatorD's read ends") \
	X(SERIES_LIMIT, "series-limit", "new series beyond [limits] max_series or max_key_bytes in this window") \
	X(NAME_LIMIT, "name-limit", "new series of one name beyond [limits] max_series_per_name in this window") \
	X(AGE_GAUGE_LIMIT, "age-gauge-limit", "new age gauge id beyond [limits] age_gauge_limit")

enum reject_reason {
	REJECT_NONE = 0,
#define X(id, name, desc) REJECT_##id,
	REJECT_REASONS(X)
#undef X
	REJECT_REASON_COUNT
};

extern const char *const reject_reason_name[REJECT_REASON_COUNT];
extern const char *const reject_reason_desc[REJECT_REASON_COUNT];

/* One accepted line.
 *
 * id is the canonical id "name[,key=value]*": every byte outside
 * [-._A-Za-z0-9~^] replaced by '_', duplicate keys resolved last-wins, keys
 * sorted by bytes. It is borrowed: it points either into the datagram (when the
 * line arrived clean and sorted) or into the parser's scratch, and is valid
 * until the next parse call or until the datagram buffer is reused. */
struct sample {
	enum meter_type type;
	bool has_extra;      /* g: a TTL was given; X: always true */
	int64_t extra;       /* g: TTL seconds as sent (> 0); X: epoch milliseconds */
	union {
		double d;    /* every type but U, as sent: the truncations
				spectatord applies later (ns for t and T,
				int64 for D) are the window's to apply */
		uint64_t u;  /* U */
	} v;
	const char *id;
	uint32_t id_len;
	uint32_t name_len;   /* the name is id[0, name_len); tags follow after ',' */
	/* The value as it was written, whitespace trimmed; borrowed like id.
	 * Lines forwarded as they came carry it (meter_keeps_text()). */
	const char *num;
	uint32_t num_len;
	/* The key's hash, 0 until the window computes it (window_prepare()):
	 * a key is hashed once even when looked up ahead of time. */
	uint64_t hash;
};

#endif
