/* fuzz_json.c - libFuzzer target for the JSON reader, whose input comes from
 * the network (SpectatorD's admin replies, via resync). Besides ASan and
 * UBSan finding any read or write out of bounds, it checks that the two
 * readers agree: a member that json_parse() finds in a valid object,
 * json_member_text() finds too, and its text parses on its own. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_json: " __VA_ARGS__);                      \
			fputc('\n', stderr);                                             \
			abort();                                                         \
		}                                                                        \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size block: a read past the NUL is a heap overflow. */
	char *doc = malloc(size + 1), err[128];
	const char *start;
	size_t len;

	if (!doc)
		return 0;
	memcpy(doc, data, size);
	doc[size] = '\0';

	struct json *v = json_parse(doc, err, sizeof(err));
	CHECK(v || err[0], "refused without a reason");
	/* member_text matches keys as written, not decoded: only documents
	 * without escapes compare. Of repeated keys, both take the first. */
	bool plain = !memchr(doc, '\\', size);
	for (const struct json *m = v && plain && v->type == JSON_OBJECT ? v->child : NULL; m;
	     m = m->next) {
		if (json_get(v, m->key) != m)
			continue;
		int r = json_member_text(doc, m->key, &start, &len);
		CHECK(r == 0, "member \"%s\" parsed but not found: %d", m->key, r);
		CHECK(start >= doc && start + len <= doc + size, "member text out of the document");
		char *text = strndup(start, len);
		struct json *mv = text ? json_parse(text, err, sizeof(err)) : NULL;
		CHECK(!text || mv, "member \"%s\" text does not parse: %s", m->key, err);
		CHECK(!mv || mv->type == m->type, "member \"%s\" changed type", m->key);
		json_free(mv);
		free(text);
	}
	json_free(v);

	/* On any input, what member_text returns lies within the document. */
	if (json_member_text(doc, "age_gauges", &start, &len) == 0)
		CHECK(start >= doc && start + len <= doc + size, "member text out of the document");
	free(doc);
	return 0;
}
