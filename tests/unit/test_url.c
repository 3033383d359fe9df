/* test_url.c - the locations of SPECTATOR_OUTPUT_LOCATION and the upstream:
 * what parses into which socket address, what is refused and with which
 * words, and the two questions the config asks of a parsed URL (loopback?
 * the same address?). Pure: nothing here opens a socket. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "url.h"

static struct url parse_ok(const char *s, bool listen)
{
	struct url u;
	char err[256] = "";

	ck_assert_msg(url_parse(s, listen, &u, err, sizeof(err)) == 0, "%s: %s", s, err);
	ck_assert_str_eq(u.text, s);
	return u;
}

/* Refused, with exactly this reason. */
static void parse_bad(const char *s, bool listen, const char *why)
{
	struct url u;
	char err[256] = "";

	ck_assert_int_eq(url_parse(s, listen, &u, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, why);
}

static struct url http_ok(const char *s)
{
	struct url u;
	char err[256] = "";

	ck_assert_msg(url_parse_http(s, &u, err, sizeof(err)) == 0, "%s: %s", s, err);
	return u;
}

static void http_bad(const char *s, const char *why)
{
	struct url u;
	char err[256] = "";

	ck_assert_int_eq(url_parse_http(s, &u, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, why);
}

/* ------------------------------------------------------------------------
 * udp://
 * ------------------------------------------------------------------------ */

START_TEST(udp_ipv4)
{
	struct url u = parse_ok("udp://127.0.0.1:1235", true);

	ck_assert_int_eq(u.kind, URL_UDP);
	ck_assert_int_eq(u.addr.in.sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(u.addr.in.sin_port), 1235);
	ck_assert_uint_eq(ntohl(u.addr.in.sin_addr.s_addr), 0x7f000001);
	ck_assert_uint_eq(u.addrlen, sizeof(struct sockaddr_in));

	u = parse_ok("udp://10.1.2.3:9", false);
	ck_assert_uint_eq(ntohl(u.addr.in.sin_addr.s_addr), 0x0a010203);
	ck_assert_uint_eq(ntohs(u.addr.in.sin_port), 9);
}
END_TEST

START_TEST(udp_ipv6_needs_brackets)
{
	struct url u = parse_ok("udp://[::1]:1235", true);
	struct in6_addr lo = IN6ADDR_LOOPBACK_INIT;

	ck_assert_int_eq(u.kind, URL_UDP);
	ck_assert_int_eq(u.addr.in6.sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(u.addr.in6.sin6_port), 1235);
	ck_assert(memcmp(&u.addr.in6.sin6_addr, &lo, sizeof(lo)) == 0);
	ck_assert_uint_eq(u.addrlen, sizeof(struct sockaddr_in6));

	parse_ok("udp://[fd00::1:2]:7", true);
	/* The last ':' of a bare IPv6 address would be taken for the port's. */
	parse_bad("udp://::1:1235", true,
		  "udp://::1:1235: host must be an IPv4 address, [IPv6 address] or localhost");
	parse_bad("udp://[::1]1235", true, "udp://[::1]1235: expected udp://[IPv6]:PORT");
	parse_bad("udp://[::1:1235", true, "udp://[::1:1235: expected udp://[IPv6]:PORT");
	parse_bad("udp://[fe80::1%lo]:1", true,
		  "udp://[fe80::1%lo]:1: host must be an IPv4 address, [IPv6 address] or "
		  "localhost");
}
END_TEST

START_TEST(udp_localhost_is_ipv4_loopback)
{
	struct url u = parse_ok("udp://localhost:1235", true);

	ck_assert_int_eq(u.addr.in.sin_family, AF_INET);
	ck_assert_uint_eq(ntohl(u.addr.in.sin_addr.s_addr), 0x7f000001);
	ck_assert_str_eq(u.text, "udp://localhost:1235"); /* logged as written */
	parse_bad("udp://example.com:1235", true,
		  "udp://example.com:1235: host must be an IPv4 address, [IPv6 address] or "
		  "localhost");
	parse_bad("udp://:1235", true,
		  "udp://:1235: host must be an IPv4 address, [IPv6 address] or localhost");
}
END_TEST

START_TEST(udp_ports_0_to_65535)
{
	char s[64];
	static const unsigned ports[] = { 0, 1, 1234, 1235, 32768, 65534, 65535 };

	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		snprintf(s, sizeof(s), "udp://127.0.0.1:%u", ports[i]);
		struct url u = parse_ok(s, true);
		ck_assert_uint_eq(ntohs(u.addr.in.sin_port), ports[i]);
		snprintf(s, sizeof(s), "udp://[::1]:%u", ports[i]);
		u = parse_ok(s, true);
		ck_assert_uint_eq(ntohs(u.addr.in6.sin6_port), ports[i]);
	}
}
END_TEST

START_TEST(udp_bad_ports)
{
	static const char *const bad[] = {
		"udp://127.0.0.1:65536", "udp://127.0.0.1:99999999999999999999999",
		"udp://127.0.0.1:-1",    "udp://127.0.0.1:+1",
		"udp://127.0.0.1:",      "udp://127.0.0.1:12a",
		"udp://127.0.0.1: 1",    "udp://127.0.0.1:0x10",
		"udp://[::1]:65536",     "udp://[::1]:",
	};
	char why[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(why, sizeof(why), "%s: port must be a number from 0 to 65535", bad[i]);
		parse_bad(bad[i], true, why);
	}
	parse_bad("udp://127.0.0.1", true, "udp://127.0.0.1: expected udp://HOST:PORT");
}
END_TEST

/* ------------------------------------------------------------------------
 * unix://, file://, stdout
 * ------------------------------------------------------------------------ */

START_TEST(unix_absolute_path)
{
	struct url u = parse_ok("unix:///run/spectator-relay/relay.unix", true);

	ck_assert_int_eq(u.kind, URL_UNIX);
	ck_assert_str_eq(u.path, "/run/spectator-relay/relay.unix");
	ck_assert_int_eq(u.addr.un.sun_family, AF_UNIX);
	ck_assert_str_eq(u.addr.un.sun_path, "/run/spectator-relay/relay.unix");
	ck_assert_uint_eq(u.addrlen, offsetof(struct sockaddr_un, sun_path) +
					     strlen("/run/spectator-relay/relay.unix") + 1);

	parse_bad("unix://relay.unix", true,
		  "unix://relay.unix: the path must be absolute (three slashes)");
	parse_bad("unix://", true, "unix://: the path must be absolute (three slashes)");
}
END_TEST

START_TEST(unix_path_as_long_as_sun_path_allows)
{
	struct url u;
	char path[200], s[300], why[400];
	size_t max = sizeof(u.addr.un.sun_path) - 1; /* and its NUL */

	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[max] = '\0';
	snprintf(s, sizeof(s), "unix://%s", path);
	u = parse_ok(s, false);
	ck_assert_uint_eq(strlen(u.addr.un.sun_path), max);

	path[max] = 'p';
	path[max + 1] = '\0';
	snprintf(s, sizeof(s), "unix://%s", path);
	snprintf(why, sizeof(why), "%s: path longer than a unix socket address allows", s);
	parse_bad(s, false, why);
}
END_TEST

START_TEST(url_longer_than_its_text_buffer)
{
	struct url u;
	char s[400], why[500];

	memset(s, 'x', sizeof(s));
	memcpy(s, "unix:///", 8);
	s[sizeof(u.text)] = '\0'; /* one byte too many for text, NUL included */
	snprintf(why, sizeof(why), "%.40s...: too long", s);
	parse_bad(s, false, why);
	/* One byte shorter, the text fits; the path is what is too long now. */
	s[sizeof(u.text) - 1] = '\0';
	snprintf(why, sizeof(why), "%s: path longer than a unix socket address allows", s);
	parse_bad(s, false, why);
}
END_TEST

START_TEST(file_and_stdout_are_upstreams_only)
{
	struct url u = parse_ok("file:///var/tmp/lines.txt", false);

	ck_assert_int_eq(u.kind, URL_FILE);
	ck_assert_str_eq(u.path, "/var/tmp/lines.txt");
	u = parse_ok("stdout", false);
	ck_assert_int_eq(u.kind, URL_STDOUT);

	parse_bad("file:///var/tmp/lines.txt", true,
		  "file:///var/tmp/lines.txt: expected udp://HOST:PORT or unix:///PATH");
	parse_bad("stdout", true, "stdout: expected udp://HOST:PORT or unix:///PATH");
	parse_bad("file://lines.txt", false,
		  "file://lines.txt: the path must be absolute (three slashes)");
	parse_bad("tcp://127.0.0.1:1234", false,
		  "tcp://127.0.0.1:1234: expected udp://HOST:PORT, unix:///PATH, file:///PATH "
		  "or stdout");
	parse_bad("", false, ": expected udp://HOST:PORT, unix:///PATH, file:///PATH or stdout");
	parse_bad("UDP://127.0.0.1:1", true, "UDP://127.0.0.1:1: expected udp://HOST:PORT or "
					      "unix:///PATH");
	/* SpectatorD's admin server is not a place to send lines. */
	parse_bad("http://127.0.0.1:1234", false,
		  "http://127.0.0.1:1234: expected udp://HOST:PORT, unix:///PATH, file:///PATH "
		  "or stdout");
}
END_TEST

/* ------------------------------------------------------------------------
 * http:// (SpectatorD's admin server)
 * ------------------------------------------------------------------------ */

START_TEST(http_admin_addresses)
{
	struct url u = http_ok("http://127.0.0.1:1234");

	ck_assert_int_eq(u.kind, URL_HTTP);
	ck_assert_str_eq(u.text, "http://127.0.0.1:1234");
	ck_assert_int_eq(u.addr.in.sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(u.addr.in.sin_port), 1234);
	u = http_ok("http://[::1]:1234");
	ck_assert_int_eq(u.addr.in6.sin6_family, AF_INET6);
	u = http_ok("http://localhost:80");
	ck_assert_uint_eq(ntohl(u.addr.in.sin_addr.s_addr), 0x7f000001);

	http_bad("https://127.0.0.1:1234", "https://127.0.0.1:1234: expected http://HOST:PORT");
	http_bad("udp://127.0.0.1:1234", "udp://127.0.0.1:1234: expected http://HOST:PORT");
	http_bad("http://127.0.0.1", "http://127.0.0.1: expected http://HOST:PORT");
	http_bad("http://[::1]", "http://[::1]: expected http://[IPv6]:PORT");
	http_bad("http://127.0.0.1:70000",
		 "http://127.0.0.1:70000: port must be a number from 0 to 65535");
	http_bad("http://spectatord:1234",
		 "http://spectatord:1234: host must be an IPv4 address, [IPv6 address] or "
		 "localhost");
}
END_TEST

/* ------------------------------------------------------------------------
 * Questions about a parsed URL
 * ------------------------------------------------------------------------ */

START_TEST(loopback)
{
	static const struct {
		const char *url;
		bool loopback;
	} cases[] = {
		{ "udp://127.0.0.1:1", true },  { "udp://127.255.0.9:1", true },
		{ "udp://localhost:1", true },  { "udp://[::1]:1", true },
		{ "udp://0.0.0.0:1", false },   { "udp://10.0.0.1:1", false },
		{ "udp://128.0.0.1:1", false }, { "udp://126.255.255.255:1", false },
		{ "udp://[::]:1", false },      { "udp://[fe80::1]:1", false },
		{ "unix:///run/x", true },      /* not on any network */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct url u = parse_ok(cases[i].url, true);
		ck_assert_msg(url_is_loopback(&u) == cases[i].loopback, "%s", cases[i].url);
	}
	struct url h = http_ok("http://127.0.0.1:1234");
	ck_assert(url_is_loopback(&h));
	h = http_ok("http://192.168.1.1:1234");
	ck_assert(!url_is_loopback(&h));
}
END_TEST

START_TEST(same_address)
{
	static const struct {
		const char *a, *b;
		bool same;
	} cases[] = {
		{ "udp://127.0.0.1:1235", "udp://127.0.0.1:1235", true },
		{ "udp://localhost:1235", "udp://127.0.0.1:1235", true }, /* spelt apart */
		{ "udp://127.0.0.1:01235", "udp://127.0.0.1:1235", true },
		{ "udp://[::1]:1235", "udp://[0:0:0:0:0:0:0:1]:1235", true },
		{ "udp://127.0.0.1:1235", "udp://127.0.0.1:1236", false },
		{ "udp://127.0.0.1:1235", "udp://127.0.0.2:1235", false },
		{ "udp://127.0.0.1:1235", "udp://[::1]:1235", false },
		{ "unix:///run/a", "unix:///run/a", true },
		{ "unix:///run/a", "unix:///run/b", false },
		{ "unix:///run/a", "file:///run/a", false }, /* a socket is not a file */
		{ "stdout", "stdout", true },
		{ "stdout", "file:///dev/stdout", false },
		{ "udp://127.0.0.1:1235", "unix:///run/a", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct url a = parse_ok(cases[i].a, false), b = parse_ok(cases[i].b, false);
		ck_assert_msg(url_same_address(&a, &b) == cases[i].same, "%s vs %s", cases[i].a,
			      cases[i].b);
		ck_assert_msg(url_same_address(&b, &a) == cases[i].same, "%s vs %s", cases[i].b,
			      cases[i].a);
	}
	struct url h1 = http_ok("http://localhost:1234"), h2 = http_ok("http://127.0.0.1:1234");
	ck_assert(url_same_address(&h1, &h2));
	struct url u = parse_ok("udp://127.0.0.1:1234", false);
	ck_assert(!url_same_address(&h1, &u)); /* the admin server's TCP port is not UDP's */
}
END_TEST

/* A message never overruns the caller's buffer, however small. */
START_TEST(error_fits_a_small_buffer)
{
	struct url u;
	char err[16];

	memset(err, 'z', sizeof(err));
	ck_assert_int_eq(url_parse("udp://127.0.0.1:99999", true, &u, err, 8), -EINVAL);
	ck_assert_str_eq(err, "udp://1");
	ck_assert_int_eq(err[8], 'z');
}
END_TEST

int main(void)
{
	Suite *su = suite_create("url");
	TCase *tc = tcase_create("udp");
	tcase_add_test(tc, udp_ipv4);
	tcase_add_test(tc, udp_ipv6_needs_brackets);
	tcase_add_test(tc, udp_localhost_is_ipv4_loopback);
	tcase_add_test(tc, udp_ports_0_to_65535);
	tcase_add_test(tc, udp_bad_ports);
	suite_add_tcase(su, tc);

	tc = tcase_create("paths");
	tcase_add_test(tc, unix_absolute_path);
	tcase_add_test(tc, unix_path_as_long_as_sun_path_allows);
	tcase_add_test(tc, url_longer_than_its_text_buffer);
	tcase_add_test(tc, file_and_stdout_are_upstreams_only);
	suite_add_tcase(su, tc);

	tc = tcase_create("http");
	tcase_add_test(tc, http_admin_addresses);
	suite_add_tcase(su, tc);

	tc = tcase_create("questions");
	tcase_add_test(tc, loopback);
	tcase_add_test(tc, same_address);
	tcase_add_test(tc, error_fits_a_small_buffer);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
