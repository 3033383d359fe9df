/* test_json.c - the reader takes text from the network (SpectatorD's admin
 * port, via resync): strict JSON, never a read or write past the input. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "testutil.h"

static char err[128];

/* The string a one-string document decodes to, or NULL if it is refused. The
 * caller frees. Each input lives in its own exact-size heap block, so that
 * ASan sees any read past the end. */
static char *decode(const char *doc)
{
	char *copy = strdup(doc);
	struct json *v = json_parse(copy, err, sizeof(err));
	char *out = NULL;
	if (v) {
		ck_assert_int_eq(v->type, JSON_STRING);
		out = strdup(v->text);
		json_free(v);
	}
	free(copy);
	return out;
}

START_TEST(escapes_decode)
{
	const char *cases[][2] = {
		{ "\"plain\"", "plain" },
		{ "\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d" },
		{ "\"\\n\\t\\r\\b\\f\"", "\n\t\r\b\f" },
		{ "\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac" },
		{ "\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80" },          /* a surrogate pair */
		{ "\"x\\ud83dy\"", "x\xef\xbf\xbdy" },                 /* a lone high one */
		{ "\"\\ude00\"", "\xef\xbf\xbd" },                     /* a lone low one */
		{ "\"a\\u0000b\"", "a\xef\xbf\xbd" "b" },             /* NUL must not cut */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = decode(cases[i][0]);
		ck_assert_msg(s, "%s refused: %s", cases[i][0], err);
		ck_assert_str_eq(s, cases[i][1]);
		free(s);
	}
}
END_TEST

START_TEST(bad_strings_refused)
{
	const char *cases[] = {
		"\"\\u\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", /* \u over the quote */
		"\"\\u12\"",
		"\"\\u12G4\"",
		"\"\\u",
		"\"\\",
		"\"abc",
		"\"\\x41\"",
		"\"tab\there\"",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = decode(cases[i]);
		ck_assert_msg(!s, "%s accepted as \"%s\"", cases[i], s ? s : "");
		ck_assert(err[0] != '\0');
	}
}
END_TEST

START_TEST(numbers_are_strict)
{
	const char *good[][2] = { { "0", "0" }, { "-12.5e3", "-12500" }, { "1E+2", "100" } };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct json *v = json_parse(good[i][0], err, sizeof(err));
		ck_assert_msg(v, "%s: %s", good[i][0], err);
		ck_assert_int_eq(v->type, JSON_NUMBER);
		ck_assert_double_eq(v->number, strtod(good[i][1], NULL));
		ck_assert_str_eq(v->text, good[i][0]);
		json_free(v);
	}
	const char *bad[] = { "inf", "nan", "-inf", "0x10", "1.", ".5", "+1", "1e", "01" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json *v = json_parse(bad[i], err, sizeof(err));
		ck_assert_msg(!v, "%s accepted", bad[i]);
	}
}
END_TEST

START_TEST(structure)
{
	struct json *v = json_parse(" {\"a\": [1, \"x\", true, null], \"b\": {}} ", err, sizeof(err));
	ck_assert_msg(v, "%s", err);
	const struct json *a = json_get(v, "a");
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(a->type, JSON_ARRAY);
	ck_assert_str_eq(a->child->next->text, "x");
	ck_assert(a->child->next->next->boolean);
	ck_assert_int_eq(json_get(v, "b")->type, JSON_OBJECT);
	ck_assert_ptr_null(json_get(v, "c"));
	json_free(v);

	/* Heap copies, so that ASan sees a read past the end (as a key with
	 * nothing after it once made the error message do). */
	const char *bad[] = { "{\"a\" 1}", "[1,]", "[1 2]", "{\"a\":1} x", "", "[", "{\"a\"", "{\"a\":" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *copy = strdup(bad[i]);
		ck_assert_msg(!json_parse(copy, err, sizeof(err)), "%s accepted", bad[i]);
		free(copy);
	}

	char deep[200];
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	ck_assert_ptr_null(json_parse(deep, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "deep"));
}
END_TEST

START_TEST(member_text)
{
	const char *doc = "{\"s\": \"q\\\"}\", \"age_gauges\": [{\"id\": \"x\"}], \"n\": 5}";
	const char *start;
	size_t len;
	ck_assert_int_eq(json_member_text(doc, "age_gauges", &start, &len), 0);
	ck_assert_int_eq((int)len, (int)strlen("[{\"id\": \"x\"}]"));
	ck_assert(strncmp(start, "[{\"id\": \"x\"}]", len) == 0);
	ck_assert_int_eq(json_member_text(doc, "n", &start, &len), 0);
	ck_assert(len == 1 && *start == '5');
	ck_assert_int_lt(json_member_text(doc, "missing", &start, &len), 0);
	ck_assert_int_lt(json_member_text("{\"a\": [1, 2", "b", &start, &len), 0);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("json");
	TCase *tc = tcase_create("json");
	tcase_add_test(tc, escapes_decode);
	tcase_add_test(tc, bad_strings_refused);
	tcase_add_test(tc, numbers_are_strict);
	tcase_add_test(tc, structure);
	tcase_add_test(tc, member_text);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
