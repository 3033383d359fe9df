/* testutil.h - shared by the unit tests: the vectors file and small helpers. */
#ifndef RELAY_TESTUTIL_H
#define RELAY_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "metric.h"

struct vector {
	int lineno;           /* in the TSV file */
	char *line;           /* unescaped datagram payload (may hold NUL) */
	size_t line_len;
	char *verdict, *type, *name, *tags, *value, *extra, *note;
};

/* Reads the vectors file named by $RELAY_VECTORS. Exits the test on error.
 * The vectors live until the process ends. */
size_t vectors_load(struct vector **out);

/* Reads a whole file; returns NULL if it cannot be opened. Caller frees. */
char *read_file(const char *path, size_t *len);

/* The sample's name and tags as the TSV spells them. */
void sample_name(const struct sample *s, char *buf, size_t cap);
void sample_tags(const struct sample *s, char *buf, size_t cap);

#endif
