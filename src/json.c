/* json.c - see json.h. */
#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------ */

void jbuf_init(struct jbuf *j)
{
	memset(j, 0, sizeof(*j));
}

void jbuf_deinit(struct jbuf *j)
{
	free(j->buf);
	jbuf_init(j);
}

static bool reserve(struct jbuf *j, size_t more)
{
	if (j->failed)
		return false;
	if (j->len + more + 1 <= j->cap)
		return true;
	size_t cap = j->cap ? j->cap : 4096;
	while (cap < j->len + more + 1)
		cap *= 2;
	char *b = realloc(j->buf, cap);
	if (!b) {
		j->failed = true;
		return false;
	}
	j->buf = b;
	j->cap = cap;
	return true;
}

void jbuf_printf(struct jbuf *j, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(j, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(j->buf + j->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	j->len += (size_t)n;
}

/* Length of a valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n;
	unsigned min;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, min = 0x80;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, min = 0x800;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, min = 0x10000;
	else
		return 0;
	if (n > left)
		return 0;
	unsigned cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void jbuf_string(struct jbuf *j, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!reserve(j, len * 6 + 2))
		return;
	char *w = j->buf + j->len;
	*w++ = '"';
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			*w++ = '\\';
			*w++ = (char)c;
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			w += sprintf(w, "\\u%04x", c);
			i++;
		} else {
			size_t n = utf8_len(p + i, len - i);
			if (n == 0) {
				memcpy(w, "\\ufffd", 6);
				w += 6;
				i++;
			} else {
				memcpy(w, p + i, n);
				w += n;
				i += n;
			}
		}
	}
	*w++ = '"';
	j->len = (size_t)(w - j->buf);
	j->buf[j->len] = '\0';
}

void jbuf_cstring(struct jbuf *j, const char *s)
{
	jbuf_string(j, s, strlen(s));
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

struct reader {
	const char *p;
	char *err;
	size_t errlen;
	int depth;
};

static struct json *parse_value(struct reader *r);

static void skip_ws(struct reader *r)
{
	while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
		r->p++;
}

static struct json *fail(struct reader *r, const char *what)
{
	if (r->err[0] == '\0')
		snprintf(r->err, r->errlen, "%s at \"%.20s\"", what, r->p);
	return NULL;
}

static void put_utf8(char **w, unsigned cp)
{
	char *o = *w;
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	*w = o;
}

static int hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0'
		      : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
		if (d < 0)
			return -1; /* also stops at the closing quote and at NUL */
		v = v * 16 + d;
	}
	return v;
}

/* A string, validated before anything is written: the output is never longer
 * than the escaped input (\uXXXX, six bytes, becomes at most three; a
 * surrogate pair, twelve, becomes four), so the input span sizes it. The text
 * comes from the network (SpectatorD's admin port, via resync), so a bad
 * escape must fail rather than step over the closing quote. */
static char *parse_string(struct reader *r)
{
	const char *s = r->p + 1;
	size_t n = 0;

	for (;;) {
		unsigned char c = (unsigned char)s[n];
		if (c == '"')
			break;
		if (c == '\0')
			return (char *)fail(r, "unterminated string");
		if (c < 0x20)
			return (char *)fail(r, "control character in string");
		if (c != '\\') {
			n++;
			continue;
		}
		c = (unsigned char)s[n + 1];
		if (c == 'u') {
			if (hex4(s + n + 2) < 0)
				return (char *)fail(r, "bad \\u escape");
			n += 6;
		} else if (c && strchr("\"\\/bfnrt", c)) {
			n += 2;
		} else {
			return (char *)fail(r, "bad escape");
		}
	}

	char *out = malloc(n + 1), *w = out;
	if (!out)
		return (char *)fail(r, "out of memory");
	for (const char *p = s, *e = s + n; p < e;) {
		if (*p != '\\') {
			*w++ = *p++;
			continue;
		}
		p++;
		switch (*p++) {
		case 'n': *w++ = '\n'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'u': {
			unsigned cp = (unsigned)hex4(p);
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && p + 6 <= e && p[0] == '\\' && p[1] == 'u') {
				int lo = hex4(p + 2);
				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
					p += 6;
				}
			}
			/* A lone surrogate has no UTF-8 form; NUL would cut
			 * the string short and make it alias a shorter one. */
			if ((cp >= 0xd800 && cp < 0xe000) || cp == 0)
				cp = 0xfffd;
			put_utf8(&w, cp);
			break;
		}
		default: *w++ = p[-1]; break; /* '"', '\\' or '/' */
		}
	}
	*w = '\0';
	r->p = s + n + 1;
	return out;
}

/* Past a number as JSON spells it, or NULL: strtod alone would also take
 * "inf", "nan" and hex, none of which SpectatorD writes. */
static const char *scan_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		if (*++p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

static struct json *new_value(enum json_type t)
{
	struct json *v = calloc(1, sizeof(*v));
	if (v)
		v->type = t;
	return v;
}

static struct json *parse_container(struct reader *r, bool object)
{
	struct json *v = new_value(object ? JSON_OBJECT : JSON_ARRAY), **tail;
	char close = object ? '}' : ']';

	if (!v)
		return fail(r, "out of memory");
	tail = &v->child;
	r->p++;
	skip_ws(r);
	if (*r->p == close) {
		r->p++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		skip_ws(r);
		if (object) {
			if (*r->p != '"' || !(key = parse_string(r)))
				goto bad;
			skip_ws(r);
			if (*r->p != ':') { /* never step over the NUL */
				free(key);
				goto bad;
			}
			r->p++;
		}
		struct json *item = parse_value(r);
		if (!item) {
			free(key);
			goto bad;
		}
		item->key = key;
		*tail = item;
		tail = &item->next;
		skip_ws(r);
		if (*r->p == ',') {
			r->p++;
			continue;
		}
		if (*r->p == close) {
			r->p++;
			return v;
		}
		goto bad;
	}
bad:
	json_free(v);
	return fail(r, object ? "bad object" : "bad array");
}

static struct json *parse_value(struct reader *r)
{
	struct json *v;

	if (++r->depth > 64)
		return fail(r, "nested too deeply");
	skip_ws(r);
	switch (*r->p) {
	case '{':
		v = parse_container(r, true);
		break;
	case '[':
		v = parse_container(r, false);
		break;
	case '"': {
		char *s = parse_string(r);
		if (!s)
			return NULL;
		v = new_value(JSON_STRING);
		if (!v) {
			free(s);
			return fail(r, "out of memory");
		}
		v->text = s;
		break;
	}
	default:
		if (!strncmp(r->p, "true", 4) || !strncmp(r->p, "false", 5)) {
			v = new_value(JSON_BOOL);
			if (v)
				v->boolean = r->p[0] == 't';
			r->p += r->p[0] == 't' ? 4 : 5;
		} else if (!strncmp(r->p, "null", 4)) {
			v = new_value(JSON_NULL);
			r->p += 4;
		} else {
			const char *end = scan_number(r->p);
			if (!end)
				return fail(r, "unexpected character");
			v = new_value(JSON_NUMBER);
			if (v) {
				v->number = strtod(r->p, NULL);
				v->text = strndup(r->p, (size_t)(end - r->p));
				if (!v->text) {
					free(v);
					v = NULL;
				}
			}
			r->p = end;
		}
		if (!v)
			return fail(r, "out of memory");
	}
	r->depth--;
	return v;
}

struct json *json_parse(const char *text, char *err, size_t errlen)
{
	struct reader r = { text, err, errlen, 0 };

	err[0] = '\0';
	struct json *v = parse_value(&r);
	if (!v)
		return NULL;
	skip_ws(&r);
	if (*r.p != '\0') {
		json_free(v);
		return fail(&r, "trailing characters");
	}
	return v;
}

void json_free(struct json *v)
{
	while (v) {
		struct json *next = v->next;
		json_free(v->child);
		free(v->text);
		free(v->key);
		free(v);
		v = next;
	}
}

const struct json *json_get(const struct json *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (const struct json *m = obj->child; m; m = m->next)
		if (m->key && strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

/* ------------------------------------------------------------------------
 * Finding one member without parsing the rest
 * ------------------------------------------------------------------------ */

static const char *skip_ws_text(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Past the string that starts at p (on its '"'), or NULL. */
static const char *skip_string(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && !*++p)
			return NULL;
	return *p == '"' ? p + 1 : NULL;
}

/* Past the value that starts at p, or NULL. */
static const char *skip_value(const char *p)
{
	int depth = 0;

	do {
		switch (*p) {
		case '\0':
			return NULL;
		case '"':
			p = skip_string(p);
			if (!p)
				return NULL;
			continue;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (--depth < 0)
				return NULL;
			break;
		default:
			if (depth == 0) { /* a number, true, false or null */
				while (*p && !strchr(",}] \t\r\n", *p))
					p++;
				return p;
			}
		}
		p++;
	} while (depth > 0);
	return p;
}

int json_member_text(const char *doc, const char *key, const char **start, size_t *len)
{
	size_t klen = strlen(key);
	const char *p = skip_ws_text(doc);

	if (*p++ != '{')
		return -EINVAL;
	for (;;) {
		p = skip_ws_text(p);
		if (*p == '}')
			return -ENOENT;
		if (*p != '"')
			return -EINVAL;
		const char *k = p + 1, *kend = skip_string(p);
		if (!kend)
			return -EINVAL;
		bool match = (size_t)(kend - 1 - k) == klen && memcmp(k, key, klen) == 0;
		p = skip_ws_text(kend);
		if (*p++ != ':')
			return -EINVAL;
		p = skip_ws_text(p);
		const char *v = p;
		p = skip_value(p);
		if (!p)
			return -EINVAL;
		if (match) {
			*start = v;
			*len = (size_t)(p - v);
			return 0;
		}
		p = skip_ws_text(p);
		if (*p == ',')
			p++;
		else if (*p != '}')
			return -EINVAL;
	}
}
