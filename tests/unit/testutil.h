/* testutil.h - shared by the unit tests: the vectors file and small helpers. */
#ifndef RELAY_TESTUTIL_H
#define RELAY_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include <check.h>

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

/* The exit status CTest reads as "skipped" (SKIP_RETURN_CODE in
 * tests/CMakeLists.txt). */
#define TEST_SKIPPED 77

/* For a check against the shared workspace's copy of a contract file,
 * which is its own CTest test (relay_unit_contract()): whether the file
 * named by $env exists. If not, says so on stderr, so that the test is
 * reported as skipped rather than passed; outside the workspace (a
 * tarball, a packager's build) there is no shared copy. */
bool shared_file_present(const char *env);

/* Runs every test of su and frees it; the process's exit status. Inline,
 * so that fuzz_replay, which shares testutil.c, need not link Check. */
static inline int run_suite(Suite *su)
{
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
