/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The escapes of the `line` column: \t \n \r \\ \xHH. */
static size_t unescape(const char *src, char *dst)
{
	size_t n = 0;
	for (const char *p = src; *p; p++) {
		if (*p != '\\') {
			dst[n++] = *p;
			continue;
		}
		switch (p[1]) {
		case 't': dst[n++] = '\t'; p++; break;
		case 'n': dst[n++] = '\n'; p++; break;
		case 'r': dst[n++] = '\r'; p++; break;
		case '\\': dst[n++] = '\\'; p++; break;
		case 'x':
			if (hexval(p[2]) < 0 || hexval(p[3]) < 0) {
				fprintf(stderr, "bad \\x escape in %s\n", src);
				exit(2);
			}
			dst[n++] = (char)(hexval(p[2]) * 16 + hexval(p[3]));
			p += 3;
			break;
		default:
			fprintf(stderr, "unknown escape in %s\n", src);
			exit(2);
		}
	}
	return n;
}

size_t vectors_load(struct vector **out)
{
	const char *path = getenv("RELAY_VECTORS");
	size_t len;
	char *text = path ? read_file(path, &len) : NULL;

	if (!text) {
		fprintf(stderr, "cannot read the vectors file (RELAY_VECTORS=%s)\n",
			path ? path : "unset");
		exit(2);
	}
	size_t cap = 512, n = 0;
	struct vector *v = calloc(cap, sizeof(*v));
	bool header = false;
	int lineno = 0;
	for (char *save = NULL, *row = strtok_r(text, "\n", &save); row;
	     row = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (!header) {
			if (row[0] == '#')
				continue;
			header = strncmp(row, "line\tverdict", 12) == 0;
			continue;
		}
		char *cols[8] = { 0 };
		int ncol = 0;
		for (char *c = row; ncol < 8; ncol++) {
			cols[ncol] = c;
			char *tab = strchr(c, '\t');
			if (!tab) {
				ncol++;
				break;
			}
			*tab = '\0';
			c = tab + 1;
		}
		if (ncol < 7) {
			fprintf(stderr, "vectors line %d: %d columns\n", lineno, ncol);
			exit(2);
		}
		if (n == cap)
			v = realloc(v, (cap *= 2) * sizeof(*v));
		v[n].lineno = lineno;
		v[n].line = malloc(strlen(cols[0]) + 1);
		v[n].line_len = unescape(cols[0], v[n].line);
		v[n].verdict = cols[1];
		v[n].type = cols[2];
		v[n].name = cols[3];
		v[n].tags = cols[4];
		v[n].value = cols[5];
		v[n].extra = cols[6];
		v[n].note = cols[7] ? cols[7] : "";
		n++;
	}
	*out = v;
	return n;
}

void sample_name(const struct sample *s, char *buf, size_t cap)
{
	snprintf(buf, cap, "%.*s", (int)s->name_len, s->id);
}

void sample_tags(const struct sample *s, char *buf, size_t cap)
{
	if (s->id_len == s->name_len)
		snprintf(buf, cap, "%s", "");
	else
		snprintf(buf, cap, "%.*s", (int)(s->id_len - s->name_len - 1),
			 s->id + s->name_len + 1);
}

bool shared_file_present(const char *env)
{
	const char *path = getenv(env);

	if (path && access(path, R_OK) == 0)
		return true;
	fprintf(stderr, "skipped: %s not found (%s); the shared contract is not checked\n",
		path ? path : "no file", env);
	return false;
}
