/* json.h - just enough JSON: a growable writer for the admin socket, and a
 * small reader for spectator-relayctl. Pure. */
#ifndef RELAY_JSON_H
#define RELAY_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* A growing output buffer. On allocation failure it stops growing and
 * remembers it (failed), so that callers check once at the end. */
struct jbuf {
	char *buf;
	size_t len, cap;
	bool failed;
};

void jbuf_init(struct jbuf *j);
void jbuf_deinit(struct jbuf *j);
void jbuf_printf(struct jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string from len bytes: quotes, escapes, and U+FFFD for bytes that
 * are not UTF-8, so that the document always parses. */
void jbuf_string(struct jbuf *j, const char *s, size_t len);
void jbuf_cstring(struct jbuf *j, const char *s);

/* Reading: a parsed value tree. Strings are NUL-terminated copies. */
enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	bool boolean;
	double number;
	char *text;             /* number as written, or the string */
	char *key;              /* when a member of an object */
	struct json *child;     /* first element or member */
	struct json *next;      /* next sibling */
};

/* Parses text (NUL-terminated). Returns the tree (free with json_free) or
 * NULL with a reason in err. */
struct json *json_parse(const char *text, char *err, size_t errlen);
void json_free(struct json *v);
/* Member of an object by key, or NULL. */
const struct json *json_get(const struct json *obj, const char *key);

/* The text of member `key` of the object doc (NUL-terminated) is, without
 * building a tree of the rest: for one part of a large document. Sets
 * *start and *len; returns 0, -ENOENT, or -EINVAL for a malformed doc. */
int json_member_text(const char *doc, const char *key, const char **start, size_t *len);

#endif
