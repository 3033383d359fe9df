/* protocol.c - the line parser. See protocol.h for the grammar and
 * docs/protocol.md section 12.7 for the policy: the checks below run in the
 * order that section lists, and the first failing one names the reason. */
#include "protocol.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------------------
 * Byte classes
 * ------------------------------------------------------------------------ */

enum {
	CC_OTHER = 0, /* replaced by '_' in names, keys and values */
	CC_OK,        /* [-._A-Za-z0-9~^]: kept as is */
	CC_COMMA,
	CC_COLON,
	CC_EQUALS,
};

static const uint8_t cclass[256] = {
	['-'] = CC_OK, ['.'] = CC_OK, ['_'] = CC_OK, ['~'] = CC_OK, ['^'] = CC_OK,
	['0' ... '9'] = CC_OK, ['A' ... 'Z'] = CC_OK, ['a' ... 'z'] = CC_OK,
	[','] = CC_COMMA, [':'] = CC_COLON, ['='] = CC_EQUALS,
};

/* C isspace() in the "C" locale, minus '\n' which never reaches a line. */
static inline bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* Marks in bits[] every byte of base[0, n) outside [-._A-Za-z0-9~^] (the
 * separators and the bytes to replace), and position n. Scanning then jumps
 * from mark to mark instead of testing each byte: names, keys and values
 * are mostly plain bytes. SSE2 (every x86-64) classifies 16 bytes at once;
 * loads stay within the line, which is not NUL-terminated. */
#ifdef __SSE2__
/* Bit i set when p[i] is outside [-._A-Za-z0-9~^], for 16 bytes. */
static inline uint64_t special16(const char *p)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	/* Bytes >= 0x80 are negative as signed and fail every range. */
	__m128i l = _mm_or_si128(v, _mm_set1_epi8(0x20));
	__m128i ok = _mm_and_si128(_mm_cmpgt_epi8(l, _mm_set1_epi8('a' - 1)),
				   _mm_cmplt_epi8(l, _mm_set1_epi8('z' + 1)));
	ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
					    _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1))));
	ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
	ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('.')));
	ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
	ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('~')));
	ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('^')));
	return (unsigned)_mm_movemask_epi8(ok) ^ 0xffffu;
}
#endif

static void mark_special(uint64_t *bits, const char *base, size_t n)
{
	size_t i = 0;

	memset(bits, 0, (n / 64 + 1) * sizeof(*bits));
#ifdef __SSE2__
	for (; i + 16 <= n; i += 16)
		bits[i >> 6] |= special16(base + i) << (i & 63); /* i is a multiple of 16 */
	if (i < n && n >= 16) {
		/* The tail: the last 16 bytes, overlapping what was done. */
		bits[i >> 6] |= (special16(base + n - 16) >> (16 - (n - i))) << (i & 63);
		i = n;
	} else if (i < n) {
		/* A region shorter than 16 bytes: through a padded copy. */
		char tail[16];
		memset(tail, 'a', sizeof(tail));
		memcpy(tail, base, n);
		bits[0] |= special16(tail);
		i = n;
	}
#endif
	for (; i < n; i++)
		if (cclass[(uint8_t)base[i]] != CC_OK)
			bits[i >> 6] |= 1ull << (i & 63);
	bits[n >> 6] |= 1ull << (n & 63);
}

/* The first marked position at or after pos; n's mark stops the search. */
static inline size_t next_special(const uint64_t *bits, size_t pos)
{
	size_t w = pos >> 6;
	uint64_t word = bits[w] & (~0ull << (pos & 63));

	while (word == 0)
		word = bits[++w];
	return (w << 6) + (size_t)__builtin_ctzll(word);
}

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* ------------------------------------------------------------------------
 * Setup
 * ------------------------------------------------------------------------ */

int proto_parser_init(struct proto_parser *ps)
{
	memset(ps, 0, sizeof(*ps));
	ps->tags = malloc((PROTO_MAX_LINE / 4 + 1) * sizeof(*ps->tags));
	ps->scratch = malloc(PROTO_MAX_LINE);
	ps->ids[0] = malloc(PROTO_MAX_LINE);
	ps->ids[1] = malloc(PROTO_MAX_LINE);
	ps->num = malloc(PROTO_MAX_LINE + 1);
	ps->bits = malloc((PROTO_MAX_LINE / 64 + 2) * sizeof(*ps->bits));
	ps->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (!ps->tags || !ps->scratch || !ps->ids[0] || !ps->ids[1] || !ps->num || !ps->bits ||
	    ps->c_locale == (locale_t)0) {
		proto_parser_deinit(ps);
		return -ENOMEM;
	}
	return 0;
}

void proto_parser_deinit(struct proto_parser *ps)
{
	free(ps->tags);
	free(ps->scratch);
	free(ps->ids[0]);
	free(ps->ids[1]);
	free(ps->num);
	free(ps->bits);
	if (ps->c_locale != (locale_t)0)
		freelocale(ps->c_locale);
	memset(ps, 0, sizeof(*ps));
}

/* ------------------------------------------------------------------------
 * Framing
 * ------------------------------------------------------------------------ */

void proto_lines_init(struct proto_lines *it, const char *buf, size_t len, bool truncated)
{
	const char *nul = memchr(buf, '\0', len);

	it->p = buf;
	it->end = nul ? nul : buf + len;
	it->nul_cut = nul != NULL;
	/* SpectatorD's read ends at 65536 bytes: what goes on past it is cut
	 * for the relay too. Bytes after a NUL are ignored anyway, so a cut
	 * after it changes nothing. */
	it->truncated = (truncated || len > PROTO_SPECTATORD_READ) && !nul;
}

bool proto_lines_next(struct proto_lines *it, const char **line, size_t *len, bool *partial)
{
	while (it->p < it->end && *it->p == '\n')
		it->p++;
	if (it->p >= it->end)
		return false;

	const char *start = it->p;
	const char *nl = memchr(start, '\n', (size_t)(it->end - start));

	*line = start;
	if (nl) {
		*len = (size_t)(nl - start);
		*partial = false;
		it->p = nl + 1;
	} else {
		*len = (size_t)(it->end - start);
		*partial = it->truncated;
		it->p = it->end;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * The ",extra" field
 * ------------------------------------------------------------------------ */

/* strtoll-shaped input: [ws]*[+-]?[0-9]+ and nothing else. Returns false if
 * the text does not have that shape; otherwise *v is the value and
 * *overflow tells whether it left the int64 range. */
static bool scan_extra(const char *p, const char *end, int64_t *v, bool *overflow)
{
	bool neg = false;
	uint64_t acc = 0;
	uint64_t limit;

	while (p < end && is_ws((uint8_t)*p))
		p++;
	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	if (p == end)
		return false;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	*overflow = false;
	for (; p < end; p++) {
		if (!is_digit((uint8_t)*p))
			return false;
		if (!*overflow) {
			uint64_t d = (uint64_t)(*p - '0');
			if (acc > (limit - d) / 10)
				*overflow = true;
			else
				acc = acc * 10 + d;
		}
	}
	if (*overflow)
		*v = neg ? INT64_MIN : INT64_MAX;
	else
		*v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return true;
}

static enum reject_reason parse_extra(enum meter_type type, const char *p, const char *end,
				      struct sample *out)
{
	int64_t v = 0;
	bool overflow = false;
	bool shaped = scan_extra(p, end, &v, &overflow);

	switch (type) {
	case METER_GAUGE:
		if (!shaped || v <= 0)
			return REJECT_BAD_TTL;
		if (overflow)
			return REJECT_OUT_OF_RANGE;
		out->has_extra = true;
		out->extra = v;
		return REJECT_NONE;
	case METER_SAMPLED:
		if (!shaped || v <= 0)
			return REJECT_BAD_TIMESTAMP;
		/* spectatord multiplies by 10^6 into int64 nanoseconds. */
		if (overflow || v > INT64_MAX / 1000000)
			return REJECT_OUT_OF_RANGE;
		out->has_extra = true;
		out->extra = v;
		return REJECT_NONE;
	default:
		/* Parsed and ignored by spectatord; the relay drops it. */
		return (p == end || shaped) ? REJECT_NONE : REJECT_BAD_EXTRA;
	}
}

/* ------------------------------------------------------------------------
 * Numbers
 * ------------------------------------------------------------------------ */

enum num_kind { NUM_NONE, NUM_HEX, NUM_DEC, NUM_INF, NUM_NAN };

static bool match_ci(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(end - p) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((p[i] | 0x20) != word[i])
			return false;
	return true;
}

/* Exact powers of ten a double holds: the Clinger fast path below. */
static const double pow10_exact[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Scans the strtod-shaped number starting at p (whitespace already skipped).
 * Sets *num_end past it and returns its kind; for NUM_DEC, *fast holds the
 * value if it could be computed exactly without strtod. */
static enum num_kind scan_double(const char *p, const char *end, const char **num_end,
				 bool *fast_ok, double *fast)
{
	const char *s = p;
	bool neg = false;

	*fast_ok = false;
	if (s < end && (*s == '+' || *s == '-'))
		neg = *s++ == '-';
	if (end - s >= 2 && s[0] == '0' && (s[1] | 0x20) == 'x') {
		*num_end = s + 2;
		return NUM_HEX;
	}
	if (s < end && (is_digit((uint8_t)*s) || *s == '.'))
		goto decimal;
	if (match_ci(s, end, "inf")) {
		s += 3;
		if (match_ci(s, end, "inity"))
			s += 5;
		*num_end = s;
		return NUM_INF;
	}
	if (match_ci(s, end, "nan")) {
		s += 3;
		/* nan(n-char-sequence) as strtod takes it: the parenthesis only
		 * counts when it closes. */
		if (s < end && *s == '(') {
			const char *q = s + 1;
			while (q < end && (cclass[(uint8_t)*q] == CC_OK && *q != '-' && *q != '.' &&
					   *q != '~' && *q != '^'))
				q++;
			if (q < end && *q == ')')
				s = q + 1;
		}
		*num_end = s;
		return NUM_NAN;
	}

decimal:;
	uint64_t mant = 0;
	int digits = 0, scale = 0;
	bool exact = true;

	for (; s < end && is_digit((uint8_t)*s); s++, digits++) {
		if (mant < (1ULL << 53) / 10)
			mant = mant * 10 + (uint64_t)(*s - '0');
		else
			exact = false;
	}
	if (s < end && *s == '.') {
		s++;
		for (; s < end && is_digit((uint8_t)*s); s++, digits++) {
			if (mant < (1ULL << 53) / 10) {
				mant = mant * 10 + (uint64_t)(*s - '0');
				scale--;
			} else {
				exact = false;
			}
		}
	}
	if (digits == 0)
		return NUM_NONE;
	if (s < end && (*s | 0x20) == 'e') {
		const char *e = s + 1;
		bool eneg = false;
		int ev = 0;
		if (e < end && (*e == '+' || *e == '-'))
			eneg = *e++ == '-';
		if (e < end && is_digit((uint8_t)*e)) {
			for (; e < end && is_digit((uint8_t)*e); e++)
				if (ev < 100000)
					ev = ev * 10 + (*e - '0');
			scale += eneg ? -ev : ev;
			s = e;
		}
		/* else: "1e" is the number 1 followed by garbage, as for strtod. */
	}
	*num_end = s;
	/* mant < 2^53 and |scale| <= 22: one correctly rounded operation on two
	 * exact doubles gives the correctly rounded result, as strtod would. */
	if (exact && scale >= -22 && scale <= 22) {
		double v = (double)mant;
		v = scale < 0 ? v / pow10_exact[-scale] : v * pow10_exact[scale];
		*fast = neg ? -v : v;
		*fast_ok = true;
	}
	return NUM_DEC;
}

static bool only_ws(const char *p, const char *end)
{
	for (; p < end; p++)
		if (!is_ws((uint8_t)*p))
			return false;
	return true;
}

static enum reject_reason parse_u64(const char *p, const char *end, struct sample *out)
{
	bool neg = false;
	bool overflow = false;
	uint64_t acc = 0;

	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	if (end - p >= 2 && p[0] == '0' && (p[1] | 0x20) == 'x')
		return REJECT_HEX;
	if (p == end || !is_digit((uint8_t)*p))
		return REJECT_BAD_VALUE;
	for (; p < end && is_digit((uint8_t)*p); p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (acc > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			acc = acc * 10 + d;
	}
	/* spectatord truncates a fraction (strtoull stops at '.'); so does the relay. */
	if (p < end && *p == '.')
		for (p++; p < end && is_digit((uint8_t)*p); p++)
			;
	if (!only_ws(p, end))
		return REJECT_TRAILING_GARBAGE;
	if (neg)
		return REJECT_NEGATIVE;
	if (overflow)
		return REJECT_OUT_OF_RANGE;
	out->v.u = acc;
	out->num_len = (uint32_t)(p - out->num);
	return REJECT_NONE;
}

static enum reject_reason parse_value(struct proto_parser *ps, enum meter_type type,
				      const char *p, const char *end, struct sample *out)
{
	if (p == end)
		return REJECT_MISSING_VALUE;
	while (p < end && is_ws((uint8_t)*p))
		p++;
	out->num = p;
	if (type == METER_MONO_U64)
		return parse_u64(p, end, out);

	const char *num_end;
	bool fast_ok;
	double v = 0;
	enum num_kind kind = scan_double(p, end, &num_end, &fast_ok, &v);

	if (kind == NUM_HEX)
		return REJECT_HEX;
	if (kind == NUM_NONE)
		return REJECT_BAD_VALUE;
	if (!only_ws(num_end, end))
		return REJECT_TRAILING_GARBAGE;
	out->num_len = (uint32_t)(num_end - p);
	if (kind == NUM_NAN) {
		if (type != METER_GAUGE)
			return REJECT_NAN;
		out->v.d = NAN;
		return REJECT_NONE;
	}
	if (kind == NUM_DEC && !fast_ok) {
		size_t n = (size_t)(num_end - p);
		memcpy(ps->num, p, n);
		ps->num[n] = '\0';
		v = strtod_l(ps->num, NULL, ps->c_locale);
		if (isinf(v))
			return REJECT_OUT_OF_RANGE;
	} else if (kind == NUM_INF) {
		v = *p == '-' ? -INFINITY : INFINITY;
	}

	bool neg = v < 0; /* -0 is not negative */
	switch (type) {
	case METER_COUNTER:
	case METER_DIST:
	case METER_PCT_DIST:
	case METER_TIMER:
	case METER_PCT_TIMER:
		if (neg)
			return REJECT_NEGATIVE;
		break;
	default:
		break;
	}
	if (isinf(v))
		return REJECT_NON_FINITE;

	/* The conversions spectatord applies later must not overflow int64:
	 * 2^63 = 9223372036854775808 exactly as a double. */
	const double two63 = 9223372036854775808.0;
	switch (type) {
	case METER_TIMER:
	case METER_PCT_TIMER:
		if (v * 1e9 >= two63)
			return REJECT_OUT_OF_RANGE;
		break;
	case METER_PCT_DIST:
		/* spectatord records int64(v); the window truncates. */
		if (v >= two63)
			return REJECT_OUT_OF_RANGE;
		break;
	case METER_AGE:
		if (fabs(v * 1e9) >= two63)
			return REJECT_OUT_OF_RANGE;
		break;
	default:
		break;
	}
	out->v.d = v;
	return REJECT_NONE;
}

/* ------------------------------------------------------------------------
 * Identity
 * ------------------------------------------------------------------------ */

static inline int key_cmp(const char *base, const struct proto_tag *a, const struct proto_tag *b)
{
	return tag_key_cmp(base + a->key_off, a->key_len, base + b->key_off, b->key_len);
}

static int tag_qsort_cmp(const void *pa, const void *pb, void *base)
{
	const struct proto_tag *a = pa, *b = pb;
	int c = key_cmp(base, a, b);

	return c != 0 ? c : (a->order > b->order) - (a->order < b->order);
}

/* Sorts by key bytes, ties by position, so the last of equal keys ends a run.
 * Clients send a handful of tags: insertion sort; qsort_r for hostile lines. */
static void sort_tags(const char *base, struct proto_tag *t, uint32_t n)
{
	if (n > 32) {
		qsort_r(t, n, sizeof(*t), tag_qsort_cmp, (void *)base);
		return;
	}
	for (uint32_t i = 1; i < n; i++) {
		struct proto_tag x = t[i];
		uint32_t j = i;
		while (j > 0 && key_cmp(base, &t[j - 1], &x) > 0) {
			t[j] = t[j - 1];
			j--;
		}
		t[j] = x;
	}
}

static char *copy_replaced(char *dst, const char *src, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		dst[i] = cclass[(uint8_t)src[i]] == CC_OK ? src[i] : '_';
	return dst + n;
}

/* Rebuilds the canonical id into one of ps->ids: replaced bytes, sorted keys, the
 * last of duplicate keys. Tags hold offsets into the line on entry. A clean
 * line (Go, C++ and JS clients send tags unsorted) is sorted in place;
 * otherwise keys are replaced first, so that "a b" and "a_b" are one key. */
static void build_id(struct proto_parser *ps, const char *line, bool clean, const char *name,
		     uint32_t name_len, uint32_t ntags, struct sample *out)
{
	struct proto_tag *t = ps->tags;
	const char *base = line;
	char *id = ps->ids[ps->next_id ^= 1];
	char *w;

	if (clean) {
		memcpy(id, name, name_len);
		w = id + name_len;
	} else {
		char *s = ps->scratch;
		uint32_t off = 0;
		for (uint32_t i = 0; i < ntags; i++) {
			copy_replaced(s + off, line + t[i].key_off, t[i].key_len);
			t[i].key_off = off;
			off += t[i].key_len;
			copy_replaced(s + off, line + t[i].val_off, t[i].val_len);
			t[i].val_off = off;
			off += t[i].val_len;
		}
		base = s;
		w = copy_replaced(id, name, name_len);
	}
	sort_tags(base, t, ntags);

	for (uint32_t i = 0; i < ntags; i++) {
		if (i + 1 < ntags && key_cmp(base, &t[i], &t[i + 1]) == 0)
			continue; /* a later duplicate follows and wins */
		*w++ = ',';
		memcpy(w, base + t[i].key_off, t[i].key_len);
		w += t[i].key_len;
		*w++ = '=';
		memcpy(w, base + t[i].val_off, t[i].val_len);
		w += t[i].val_len;
	}
	out->id = id;
	out->id_len = (uint32_t)(w - id);
	out->name_len = name_len;
}

/* ------------------------------------------------------------------------
 * Lines
 * ------------------------------------------------------------------------ */

enum reject_reason proto_parse_line(struct proto_parser *ps, const char *line, size_t len,
				    struct sample *out)
{
	const char *end = line + len;
	const char *name;
	enum reject_reason r;

	if (len == 0 || meter_from_symbol((uint8_t)line[0]) < 0)
		return REJECT_BAD_TYPE;
	out->type = (enum meter_type)meter_from_symbol((uint8_t)line[0]);
	if (len < 2 || (line[1] != ':' && line[1] != ','))
		return REJECT_MISSING_SEPARATOR;
	if (len > PROTO_MAX_LINE)
		return REJECT_TOO_LONG;

	out->has_extra = false;
	out->extra = 0;
	out->hash = 0;
	if (line[1] == ',') {
		const char *colon = memchr(line + 2, ':', len - 2);
		if (!colon)
			return REJECT_MISSING_SEPARATOR;
		r = parse_extra(out->type, line + 2, colon, out);
		if (r != REJECT_NONE)
			return r;
		name = colon + 1;
	} else {
		if (out->type == METER_SAMPLED)
			return REJECT_MISSING_TIMESTAMP;
		name = line + 2;
	}

	/* Name: up to the first ',' or ':'. Positions below are relative to
	 * name and jump between marked bytes (mark_special()). */
	const uint64_t *bits = ps->bits;
	size_t n = (size_t)(end - name);
	mark_special(ps->bits, name, n);
	size_t i = next_special(bits, 0);
	bool clean = true;
	while (i < n && name[i] != ',' && name[i] != ':') {
		clean = false;
		i = next_special(bits, i + 1);
	}
	if (i == 0)
		return REJECT_MISSING_NAME;
	if (i == n)
		return REJECT_MISSING_VALUE;
	uint32_t name_len = (uint32_t)i;
	const char *p = name + i;

	/* Tags: from the ',' after the name to the next ':'. */
	uint32_t ntags = 0;
	bool sorted = true;
	const char *id_end = p;
	if (*p == ',') {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		if (!colon)
			return end[-1] == ',' ? REJECT_DANGLING_COMMA : REJECT_MISSING_VALUE;
		size_t c = (size_t)(colon - name); /* marked: ':' is special */
		size_t seg = i + 1;
		const char *prev_key = NULL;
		uint32_t prev_len = 0;
		for (;;) {
			/* key: plain bytes up to '='; value: up to ',' or the colon. */
			size_t q = next_special(bits, seg), eq = 0;
			bool has_eq = false;
			while (q < c && name[q] != ',' && name[q] != '=') {
				clean = false;
				q = next_special(bits, q + 1);
			}
			if (q < c && name[q] == '=') {
				eq = q;
				has_eq = true;
				q = next_special(bits, q + 1);
				while (q < c && name[q] != ',') {
					clean = false; /* includes a second '=' */
					q = next_special(bits, q + 1);
				}
			}
			if (q == seg)
				return REJECT_EMPTY_TAG_SEGMENT;
			if (!has_eq)
				return REJECT_TAG_WITHOUT_EQUALS;
			if (eq == seg)
				return REJECT_EMPTY_TAG_KEY;
			if (eq + 1 == q)
				return REJECT_EMPTY_TAG_VALUE;
			if (eq - seg == 4 && memcmp(name + seg, "name", 4) == 0)
				return REJECT_RESERVED_TAG_KEY;

			struct proto_tag *t = &ps->tags[ntags];
			t->key_off = (uint32_t)(name + seg - line);
			t->key_len = (uint32_t)(eq - seg);
			t->val_off = (uint32_t)(name + eq + 1 - line);
			t->val_len = (uint32_t)(q - eq - 1);
			t->order = ntags;
			/* The line can be used in place only if its keys already
			 * ascend strictly (no duplicates to resolve). */
			if (sorted && prev_key &&
			    tag_key_cmp(prev_key, prev_len, name + seg, t->key_len) >= 0)
				sorted = false;
			prev_key = name + seg;
			prev_len = t->key_len;
			ntags++;
			if (q == c)
				break;
			seg = q + 1;
		}
		id_end = colon;
		p = colon;
	}

	r = parse_value(ps, out->type, p + 1, end, out);
	if (r != REJECT_NONE)
		return r;

	if (clean && sorted) {
		out->id = name;
		out->id_len = (uint32_t)(id_end - name);
		out->name_len = name_len;
	} else {
		build_id(ps, line, clean, name, name_len, ntags, out);
	}

	return REJECT_NONE;
}
