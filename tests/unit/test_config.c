/* test_config.c - the option table and its reader: the defaults, every
 * option type accepted and refused with "FILE:LINE: key: reason", the file's
 * own faults (unknown names, a key set twice, long lines, NUL bytes), the
 * one rule across keys (upstream is not a listen address), what a reload
 * reports and keeps, and the two ways the configuration is written back.
 * Every file is written in a fresh temporary directory. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "testutil.h"

static char dir[64];
static char path[300];
static char long_dir[300]; /* a directory with a long name in dir, or "" */

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/relay.ini", dir);
}

static void teardown(void)
{
	char p[128];

	unlink(path);
	snprintf(p, sizeof(p), "%s/printed.ini", dir);
	unlink(p);
	if (long_dir[0])
		rmdir(long_dir);
	long_dir[0] = '\0';
	rmdir(dir);
}

static void write_at(const char *where, const char *text, size_t len)
{
	FILE *f = fopen(where, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* Loads text (len bytes, NULs allowed) from path over the defaults. */
static int load_n(struct config *c, const char *text, size_t len, char *err, size_t errlen)
{
	write_at(path, text, len);
	config_defaults(c);
	err[0] = '\0';
	return config_load(c, path, err, errlen);
}

static void load_ok(struct config *c, const char *text)
{
	char err[512];

	ck_assert_msg(load_n(c, text, strlen(text), err, sizeof(err)) == 0, "%s", err);
}

/* Refused with exactly "PATH:" + want. */
static void load_bad_n(const char *text, size_t len, const char *want)
{
	static struct config c;
	char err[512], full[512];

	ck_assert_int_eq(load_n(&c, text, len, err, sizeof(err)), -EINVAL);
	snprintf(full, sizeof(full), "%s:%s", path, want);
	ck_assert_str_eq(err, full);
}

static void load_bad(const char *text, const char *want)
{
	load_bad_n(text, strlen(text), want);
}

static const struct config_option *option(const char *section, const char *name)
{
	for (size_t i = 0; i < config_noptions; i++)
		if (!strcmp(config_options[i].section, section) && !strcmp(config_options[i].name, name))
			return &config_options[i];
	ck_abort_msg("no option %s.%s", section, name);
	return NULL;
}

static const char *text_of(const struct config *c, const char *section, const char *name)
{
	static char buf[4][4096];
	static unsigned turn;
	char *b = buf[turn++ % 4];

	config_value_text(c, option(section, name), b, sizeof(buf[0]));
	return b;
}

/* ------------------------------------------------------------------------
 * Defaults
 * ------------------------------------------------------------------------ */

START_TEST(defaults)
{
	static struct config c;

	config_defaults(&c);
	ck_assert_str_eq(c.path, "");
	ck_assert(c.listen_is_default);
	ck_assert_uint_eq(c.nlisten, 3);
	ck_assert_str_eq(c.listen[0].text, "udp://127.0.0.1:1235");
	ck_assert_str_eq(c.listen[1].text, "udp://[::1]:1235");
	ck_assert_str_eq(c.listen[2].text, "unix:///run/spectator-relay/relay.unix");
	ck_assert_int_eq(c.upstream.kind, URL_UNIX);
	ck_assert_str_eq(c.upstream.path, "/run/spectatord/spectatord.unix");
	ck_assert_uint_eq(c.window_ms, 1000);
	ck_assert_uint_eq(c.shutdown_timeout_ms, 5000);
	ck_assert(c.merge_timers);
	ck_assert_uint_eq(c.max_series, 1000000);
	ck_assert_uint_eq(c.max_key_bytes, 256u << 20);
	ck_assert_uint_eq(c.max_series_per_name, 0);
	ck_assert_uint_eq(c.age_gauge_limit, 1000);
	ck_assert_uint_eq(c.max_datagram, 61440);
	ck_assert_uint_eq(c.max_pending_bytes, 64u << 20);
	ck_assert_uint_eq(c.receive_buffer, 16u << 20);
	ck_assert_uint_eq(c.unix_mode, 0666);
	ck_assert_str_eq(c.unix_group.name, "");
	ck_assert_uint_eq(c.unix_group.gid, (gid_t)-1);
	ck_assert_str_eq(c.admin_socket, "/run/spectator-relay/admin.sock");
	ck_assert_uint_eq(c.admin_mode, 0666);
	ck_assert_int_eq(c.spectatord_admin.kind, URL_HTTP);
	ck_assert_str_eq(c.spectatord_admin.text, "http://127.0.0.1:1234");
	ck_assert_uint_eq(c.resync_interval_ms, 30000);
	ck_assert(c.self_metrics);
	ck_assert_str_eq(c.self_metrics_tags, "");
	ck_assert_uint_eq(c.log_level, 6);
}
END_TEST

START_TEST(empty_file_is_the_defaults)
{
	static struct config c, d;

	load_ok(&c, "; nothing but a comment\n\n");
	config_defaults(&d);
	ck_assert_str_eq(c.path, path);
	ck_assert(c.listen_is_default);
	memset(c.path, 0, sizeof(c.path));
	ck_assert(memcmp(&c, &d, sizeof(c)) == 0);
}
END_TEST

START_TEST(missing_file)
{
	static struct config c;
	char err[512], want[512];

	config_defaults(&c);
	snprintf(want, sizeof(want), "%s/none.ini: No such file or directory", dir);
	snprintf(path, sizeof(path), "%s/none.ini", dir);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(at_most_64_kib)
{
	static struct config c;
	static char text[(64 << 10) + 1];
	char err[512], want[512];

	/* Comment lines, exactly 64 KiB of them: read. */
	for (size_t i = 0; i < sizeof(text) - 1; i += 64) {
		memset(text + i, ' ', 64);
		text[i] = ';';
		text[i + 63] = '\n';
	}
	ck_assert_int_eq(load_n(&c, text, sizeof(text) - 1, err, sizeof(err)), 0);
	/* One byte more: refused as a whole, without a line. */
	text[sizeof(text) - 1] = '\n';
	ck_assert_int_eq(load_n(&c, text, sizeof(text), err, sizeof(err)), -EFBIG);
	snprintf(want, sizeof(want), "%s: larger than 64 KiB", path);
	ck_assert_str_eq(err, want);
}
END_TEST

/* ------------------------------------------------------------------------
 * Every type, accepted
 * ------------------------------------------------------------------------ */

static const struct {
	const char *section, *name, *value;
	const char *text; /* as config_value_text() writes it back */
} accepted[] = {
	{ "relay", "window", "250ms", "250ms" },
	{ "relay", "window", "100ms", "100ms" },
	{ "relay", "window", "5s", "5s" },
	{ "relay", "window", "2000ms", "2s" },
	{ "relay", "shutdown_timeout", "0ms", "0ms" },
	{ "relay", "shutdown_timeout", "1m", "1m" },
	{ "relay", "shutdown_timeout", "30s", "30s" },
	{ "relay", "shutdown_timeout", "60000ms", "1m" },
	{ "spectatord", "resync_interval", "10m", "10m" },
	{ "spectatord", "resync_interval", "1s", "1s" },
	{ "limits", "max_datagram", "512", "512" },
	{ "limits", "max_datagram", "65507", "65507" },
	{ "limits", "max_datagram", "1KiB", "1KiB" },
	{ "limits", "max_datagram", "1024B", "1KiB" },
	{ "limits", "max_pending_bytes", "64KiB", "64KiB" },
	{ "limits", "max_pending_bytes", "65536", "64KiB" },
	{ "limits", "max_pending_bytes", "4GiB", "4GiB" },
	{ "limits", "max_pending_bytes", "3072MiB", "3GiB" },
	{ "limits", "max_key_bytes", "1MiB", "1MiB" },
	{ "limits", "max_key_bytes", "4294967295", "4294967295" },
	{ "sockets", "receive_buffer", "4KiB", "4KiB" },
	{ "sockets", "receive_buffer", "1GiB", "1GiB" },
	{ "limits", "max_series", "1", "1" },
	{ "limits", "max_series", "100000000", "100000000" },
	{ "limits", "max_series_per_name", "0", "0" },
	{ "limits", "age_gauge_limit", "1000000", "1000000" },
	{ "sockets", "unix_mode", "0600", "0600" },
	{ "sockets", "unix_mode", "0", "0000" },
	{ "sockets", "unix_mode", "0777", "0777" },
	{ "admin", "mode", "00660", "0660" },
	{ "relay", "merge_timers", "false", "false" },
	{ "relay", "merge_timers", "no", "false" },
	{ "relay", "merge_timers", "off", "false" },
	{ "relay", "merge_timers", "yes", "true" },
	{ "relay", "merge_timers", "on", "true" },
	{ "self_metrics", "enabled", "true", "true" },
	{ "admin", "socket", "", "" },
	{ "admin", "socket", "/run/x/admin.sock", "/run/x/admin.sock" },
	{ "sockets", "unix_group", "root", "root" },
	{ "sockets", "unix_group", "", "" },
	{ "admin", "group", "root", "root" },
	{ "log", "level", "error", "error" },
	{ "log", "level", "warn", "warn" },
	{ "log", "level", "debug", "debug" },
	{ "self_metrics", "tags", "region=eu-west-1,az=b", "region=eu-west-1,az=b" },
	{ "self_metrics", "tags", "a.b_c-d~e^f=A9", "a.b_c-d~e^f=A9" },
	{ "self_metrics", "tags", "", "" },
	{ "spectatord", "admin", "", "" },
	{ "spectatord", "admin", "http://[::1]:1234", "http://[::1]:1234" },
	{ "relay", "upstream", "stdout", "stdout" },
	{ "relay", "upstream", "file:///var/tmp/out.txt", "file:///var/tmp/out.txt" },
	{ "relay", "upstream", "udp://127.0.0.1:1234", "udp://127.0.0.1:1234" },
	/* Separated by spaces or commas, written back with spaces. */
	{ "relay", "listen", "udp://127.0.0.1:9,unix:///run/r.unix",
	  "udp://127.0.0.1:9 unix:///run/r.unix" },
	{ "relay", "listen", "udp://[::1]:9 , udp://127.0.0.1:9\t unix:///r",
	  "udp://[::1]:9 udp://127.0.0.1:9 unix:///r" },
};

START_TEST(every_type_accepted)
{
	static struct config c;
	char text[512];

	snprintf(text, sizeof(text), "[%s]\n%s = %s\n", accepted[_i].section, accepted[_i].name,
		 accepted[_i].value);
	load_ok(&c, text);
	ck_assert_str_eq(text_of(&c, accepted[_i].section, accepted[_i].name), accepted[_i].text);
}
END_TEST

START_TEST(stored_units)
{
	static struct config c;

	load_ok(&c, "[relay]\nwindow = 250ms\nshutdown_timeout = 1m\nmerge_timers = off\n"
		    "[limits]\nmax_datagram = 1KiB\nmax_pending_bytes = 2GiB\nmax_series = 7\n"
		    "[sockets]\nunix_mode = 0640\nunix_group = root\n"
		    "[log]\nlevel = debug\n");
	ck_assert_uint_eq(c.window_ms, 250);
	ck_assert_uint_eq(c.shutdown_timeout_ms, 60000);
	ck_assert(!c.merge_timers);
	ck_assert_uint_eq(c.max_datagram, 1024);
	ck_assert_uint_eq(c.max_pending_bytes, 2ull << 30);
	ck_assert_uint_eq(c.max_series, 7);
	ck_assert_uint_eq(c.unix_mode, 0640);
	ck_assert_uint_eq(c.unix_group.gid, 0);
	ck_assert_uint_eq(c.log_level, 7);
	ck_assert(c.listen_is_default);
}
END_TEST

START_TEST(repeated_listen_lines_add_addresses)
{
	static struct config c;

	load_ok(&c, "[relay]\nlisten = udp://127.0.0.1:9\nlisten = unix:///run/a\n"
		    "  unix:///run/b, unix:///run/c\n");
	ck_assert(!c.listen_is_default);
	ck_assert_uint_eq(c.nlisten, 4);
	ck_assert_str_eq(c.listen[0].text, "udp://127.0.0.1:9");
	ck_assert_str_eq(c.listen[3].text, "unix:///run/c");
}
END_TEST

/* ------------------------------------------------------------------------
 * Every type, refused: "LINE: key: reason"
 * ------------------------------------------------------------------------ */

static const struct {
	const char *section, *name, *value;
	const char *why;
} refused[] = {
	/* durations */
	{ "relay", "window", "99ms", "must be between 100ms and 5s" },
	{ "relay", "window", "5001ms", "must be between 100ms and 5s" },
	{ "relay", "window", "1", "expected a duration such as 250ms, 1s or 2m" },
	{ "relay", "window", "1h", "expected a duration such as 250ms, 1s or 2m" },
	{ "relay", "window", "1.5s", "expected a duration such as 250ms, 1s or 2m" },
	{ "relay", "window", "-1s", "expected a duration such as 250ms, 1s or 2m" },
	{ "relay", "window", "1 s", "expected a duration such as 250ms, 1s or 2m" },
	{ "relay", "window", "", "expected a duration such as 250ms, 1s or 2m" },
	{ "relay", "window", "99999999999999999999ms", "must be between 100ms and 5s" },
	{ "relay", "window", "999999999999999999m", "must be between 100ms and 5s" },
	{ "relay", "shutdown_timeout", "61s", "must be between 0ms and 1m" },
	{ "spectatord", "resync_interval", "999ms", "must be between 1s and 10m" },
	/* sizes */
	{ "limits", "max_datagram", "511", "must be between 512 and 65507" },
	{ "limits", "max_datagram", "65508", "must be between 512 and 65507" },
	{ "limits", "max_datagram", "64KiB", "must be between 512 and 65507" },
	{ "limits", "max_datagram", "1.5KiB", "expected a size such as 65536, 64KiB or 16MiB" },
	{ "limits", "max_datagram", "1kib", "expected a size such as 65536, 64KiB or 16MiB" },
	{ "limits", "max_datagram", "1KB", "expected a size such as 65536, 64KiB or 16MiB" },
	{ "limits", "max_datagram", "0x400", "expected a size such as 65536, 64KiB or 16MiB" },
	{ "limits", "max_pending_bytes", "4097MiB", "must be between 64KiB and 4GiB" },
	{ "limits", "max_pending_bytes", "18446744073709551616",
	  "must be between 64KiB and 4GiB" },
	{ "limits", "max_pending_bytes", "17179869184GiB", "must be between 64KiB and 4GiB" },
	{ "limits", "max_key_bytes", "1048575", "must be between 1MiB and 4294967295" },
	{ "sockets", "receive_buffer", "4095", "must be between 4KiB and 1GiB" },
	/* counts */
	{ "limits", "max_series", "0", "must be between 1 and 100000000" },
	{ "limits", "max_series", "100000001", "must be between 1 and 100000000" },
	{ "limits", "max_series", "-1", "expected a whole number" },
	{ "limits", "max_series", "1e6", "expected a whole number" },
	{ "limits", "max_series", "1000k", "expected a whole number" },
	{ "limits", "age_gauge_limit", "1000001", "must be between 0 and 1000000" },
	/* modes */
	{ "sockets", "unix_mode", "666", "expected an octal mode such as 0660" },
	{ "sockets", "unix_mode", "0888", "expected an octal mode such as 0660" },
	{ "sockets", "unix_mode", "0o666", "expected an octal mode such as 0660" },
	{ "sockets", "unix_mode", "000666", "expected an octal mode such as 0660" },
	{ "sockets", "unix_mode", "", "expected an octal mode such as 0660" },
	{ "sockets", "unix_mode", "01000", "must be between 0000 and 0777" },
	{ "admin", "mode", "04755", "must be between 0000 and 0777" },
	/* bools */
	{ "relay", "merge_timers", "1", "expected true or false" },
	{ "relay", "merge_timers", "True", "expected true or false" },
	{ "self_metrics", "enabled", "", "expected true or false" },
	/* levels */
	{ "log", "level", "warning", "expected error, warn, info or debug" },
	{ "log", "level", "INFO", "expected error, warn, info or debug" },
	/* paths */
	{ "admin", "socket", "admin.sock",
	  "must be an absolute path, or empty to disable the admin socket" },
	{ "admin", "socket",
	  "/0123456789/0123456789/0123456789/0123456789/0123456789/0123456789/0123456789/"
	  "0123456789/0123456789/01234567",
	  "longer than 107 bytes" },
	/* groups */
	{ "sockets", "unix_group", "no-such-group-here", "unknown group no-such-group-here" },
	{ "admin", "group", "no-such-group-here", "unknown group no-such-group-here" },
	{ "admin", "group", "0123456789012345678901234567890123456789012345678901234567890123",
	  "longer than 63 bytes" },
	/* tags */
	{ "self_metrics", "tags", "name=x", "the tag key 'name' is reserved" },
	{ "self_metrics", "tags", "a=1,name=x", "the tag key 'name' is reserved" },
	{ "self_metrics", "tags", "a=", "empty tag value" },
	{ "self_metrics", "tags", "a=b,",
	  "expected key=value,key=value with keys and values made of [-._A-Za-z0-9~^]" },
	{ "self_metrics", "tags", "=b",
	  "expected key=value,key=value with keys and values made of [-._A-Za-z0-9~^]" },
	{ "self_metrics", "tags", "a=b c",
	  "expected key=value,key=value with keys and values made of [-._A-Za-z0-9~^]" },
	{ "self_metrics", "tags", "a=b=c",
	  "expected key=value,key=value with keys and values made of [-._A-Za-z0-9~^]" },
	{ "self_metrics", "tags", "a:b=c",
	  "expected key=value,key=value with keys and values made of [-._A-Za-z0-9~^]" },
	{ "self_metrics", "tags", "a",
	  "expected key=value,key=value with keys and values made of [-._A-Za-z0-9~^]" },
	/* URLs */
	{ "relay", "upstream", "udp://127.0.0.1", "udp://127.0.0.1: expected udp://HOST:PORT" },
	{ "relay", "upstream", "tcp://127.0.0.1:1",
	  "tcp://127.0.0.1:1: expected udp://HOST:PORT, unix:///PATH, file:///PATH or stdout" },
	{ "relay", "upstream", "", ": expected udp://HOST:PORT, unix:///PATH, file:///PATH or stdout" },
	{ "spectatord", "admin", "ftp://127.0.0.1:1", "ftp://127.0.0.1:1: expected http://HOST:PORT" },
	{ "spectatord", "admin", "http://127.0.0.1:99999",
	  "http://127.0.0.1:99999: port must be a number from 0 to 65535" },
	/* URL lists */
	{ "relay", "listen", "udp://127.0.0.1:9 udp://127.0.0.1:9", "udp://127.0.0.1:9 is listed twice" },
	{ "relay", "listen", "udp://localhost:9,udp://127.0.0.1:9", "udp://127.0.0.1:9 is listed twice" },
	{ "relay", "listen", "unix:///run/a unix:///run/b unix:///run/a", "unix:///run/a is listed twice" },
	{ "relay", "listen", "stdout", "stdout: expected udp://HOST:PORT or unix:///PATH" },
	{ "relay", "listen", "file:///run/a", "file:///run/a: expected udp://HOST:PORT or unix:///PATH" },
	{ "relay", "listen", "udp://127.0.0.1:65536",
	  "udp://127.0.0.1:65536: port must be a number from 0 to 65535" },
	{ "relay", "listen", "", "at least one address is required" },
	{ "relay", "listen", ", ,", "at least one address is required" },
};

START_TEST(every_type_refused)
{
	char text[512], want[512];

	/* On line 3, after a line that is fine, so that the line is the key's. */
	snprintf(text, sizeof(text), "[%s]\n\n%s = %s\n[log]\nlevel = info\n", refused[_i].section,
		 refused[_i].name, refused[_i].value);
	snprintf(want, sizeof(want), "3: %s: %s", refused[_i].name, refused[_i].why);
	load_bad(text, want);
}
END_TEST

START_TEST(at_most_16_listen_addresses)
{
	char text[2048];
	size_t n = (size_t)snprintf(text, sizeof(text), "[relay]\nlisten =");

	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%sudp://127.0.0.1:%d\n",
				      i ? "  " : " ", 5000 + i);
	static struct config c;
	load_ok(&c, text);
	ck_assert_uint_eq(c.nlisten, CONFIG_MAX_LISTEN);
	snprintf(text + n, sizeof(text) - n, "listen = unix:///run/one-more\n");
	load_bad(text, "18: listen: at most 16 addresses");
}
END_TEST

START_TEST(a_repeated_listen_line_may_not_repeat_an_address)
{
	load_bad("[relay]\nlisten = udp://127.0.0.1:9\n; another line\nlisten = udp://localhost:9\n",
		 "4: listen: udp://localhost:9 is listed twice");
}
END_TEST

/* ------------------------------------------------------------------------
 * Faults of the file itself
 * ------------------------------------------------------------------------ */

START_TEST(unknown_section)
{
	load_bad("[relay]\nwindow = 1s\n[nope]\nwindow = 1s\n", "3: [nope]: unknown section");
	/* Even an empty one, which inih never reports. */
	load_bad("[relay]\n[nope]\n", "2: [nope]: unknown section");
	load_bad("  [Relay]\n", "1: [Relay]: unknown section");
}
END_TEST

START_TEST(unknown_key)
{
	load_bad("[relay]\nwindow = 1s\nwindows = 2s\n", "3: windows: unknown key in [relay]");
	load_bad("[limits]\nwindow = 1s\n", "2: window: unknown key in [limits]");
}
END_TEST

/* Every key belongs to a section: one above them all is named, not called
 * an unknown section "[]". */
START_TEST(key_outside_a_section)
{
	load_bad("window = 1s\n[relay]\n", "1: window: outside any [section]");
	load_bad("; a comment first\n\nlevel = debug\n", "3: level: outside any [section]");
}
END_TEST

START_TEST(set_twice)
{
	load_bad("[relay]\nwindow = 1s\nmerge_timers = true\nwindow = 2s\n", "4: window: set twice");
	/* The same section opened again is the same section. */
	load_bad("[relay]\nwindow = 1s\n[log]\nlevel = info\n[relay]\nwindow = 1s\n",
		 "6: window: set twice");
	/* An indented line continues the value above: a second window. */
	load_bad("[relay]\nwindow = 1s\n  2s\n", "3: window: set twice");
}
END_TEST

START_TEST(syntax_error)
{
	load_bad("[relay]\nwindow 1s\n", "2: syntax error: expected [section] or key = value");
	load_bad("[relay\n", "1: syntax error: expected [section] or key = value");
}
END_TEST

/* inih cuts lines longer than it reads in one go; the relay refuses them
 * instead, naming the key when there is one. */
START_TEST(long_line)
{
	static struct config c;
	char text[1024], line[512];
	size_t max = 198; /* docs/configuration.md */

	/* A comment of exactly the longest length: fine. */
	memset(line, 'x', sizeof(line));
	line[0] = ';';
	line[max] = '\0';
	snprintf(text, sizeof(text), "[relay]\n%s\nwindow = 1s\n", line);
	load_ok(&c, text);
	ck_assert_uint_eq(c.window_ms, 1000);
	/* One byte longer: refused. */
	line[max] = 'x';
	line[max + 1] = '\0';
	snprintf(text, sizeof(text), "[relay]\n%s\nwindow = 1s\n", line);
	load_bad(text, "2: line longer than 198 bytes");
	/* A key's value: the key is named. */
	snprintf(text, sizeof(text), "[relay]\nupstream = unix:///%s\n", line + 10);
	load_bad(text, "2: upstream: line longer than 198 bytes");
	/* Before a fault further down, the long line is the first one. */
	snprintf(text, sizeof(text), "[relay]\n%s\nbogus = 1\n", line);
	load_bad(text, "2: line longer than 198 bytes");
	snprintf(text, sizeof(text), "[relay]\nbogus = 1\n%s\n", line);
	load_bad(text, "2: bogus: unknown key in [relay]");
}
END_TEST

START_TEST(nul_byte)
{
	static const char a[] = "[relay]\nwindow = 1s\0\n";
	static const char b[] = "[relay]\n; a comment \0 hides the rest\nwindow = forever\n";
	static const char c[] = "[re\0lay]\n";

	load_bad_n(a, sizeof(a) - 1, "2: window: contains a NUL byte");
	load_bad_n(b, sizeof(b) - 1, "2: contains a NUL byte");
	load_bad_n(c, sizeof(c) - 1, "1: contains a NUL byte");
}
END_TEST

/* The first fault is the one reported. */
START_TEST(first_fault_wins)
{
	load_bad("[relay]\nwindow = 1h\nmax_series = 0\n[nope]\n",
		 "2: window: expected a duration such as 250ms, 1s or 2m");
}
END_TEST

/* ------------------------------------------------------------------------
 * Across keys: the upstream is not a listen address
 * ------------------------------------------------------------------------ */

START_TEST(upstream_equal_to_a_listen_address)
{
	/* Blamed on the upstream line, wherever it is. */
	load_bad("[relay]\nlisten = udp://127.0.0.1:9 unix:///run/r.unix\n"
		 "upstream = udp://localhost:9\n",
		 "3: upstream: udp://localhost:9 is also a listen address");
	load_bad("[relay]\nupstream = unix:///run/r.unix\n\n"
		 "listen = udp://127.0.0.1:9 unix:///run/r.unix\n",
		 "2: upstream: unix:///run/r.unix is also a listen address");
	/* The default upstream: blamed on the listen line that names it. */
	load_bad("[relay]\nlisten = udp://127.0.0.1:9\n"
		 "  unix:///run/spectatord/spectatord.unix\n",
		 "3: listen: unix:///run/spectatord/spectatord.unix is also the upstream");
	/* A file is not a socket, and another port is another address. */
	static struct config c;
	load_ok(&c, "[relay]\nlisten = unix:///run/r.unix udp://127.0.0.1:9\n"
		    "upstream = udp://127.0.0.1:10\n");
	load_ok(&c, "[relay]\nlisten = unix:///run/r.unix\nupstream = file:///run/r.unix\n");
}
END_TEST

/* ------------------------------------------------------------------------
 * Every option set to something other than its default
 * ------------------------------------------------------------------------ */

static void write_everything_changed(char *text, size_t cap)
{
	snprintf(text, cap,
		 "[relay]\n"
		 "listen = udp://127.0.0.1:7001 unix://%s/relay.unix\n"
		 "upstream = unix://%s/spectatord.unix\n"
		 "window = 250ms\n"
		 "shutdown_timeout = 2s\n"
		 "merge_timers = false\n"
		 "[limits]\n"
		 "max_series = 5000\n"
		 "max_key_bytes = 2MiB\n"
		 "max_series_per_name = 100\n"
		 "age_gauge_limit = 10\n"
		 "max_datagram = 1400\n"
		 "max_pending_bytes = 1MiB\n"
		 "[sockets]\n"
		 "receive_buffer = 64KiB\n"
		 "unix_mode = 0660\n"
		 "unix_group = root\n"
		 "[admin]\n"
		 "socket = %s/admin.sock\n"
		 "mode = 0600\n"
		 "group = root\n"
		 "[spectatord]\n"
		 "admin = http://[::1]:4321\n"
		 "resync_interval = 1m\n"
		 "[self_metrics]\n"
		 "enabled = false\n"
		 "tags = region=eu-west-1,az=b\n"
		 "[log]\n"
		 "level = debug\n",
		 dir, dir, dir);
}

static void load_everything_changed(struct config *c)
{
	char text[2048];

	write_everything_changed(text, sizeof(text));
	load_ok(c, text);
}

/* The tests below cover every option only if this file changes them all. */
START_TEST(everything_changed_changes_every_option)
{
	static struct config c, d;

	load_everything_changed(&c);
	config_defaults(&d);
	for (size_t i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		ck_assert_msg(strcmp(text_of(&c, o->section, o->name), text_of(&d, o->section, o->name)),
			      "%s.%s is not changed by write_everything_changed()", o->section,
			      o->name);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * What a reload reports and keeps
 * ------------------------------------------------------------------------ */

START_TEST(diff_lists_live_and_restart_options)
{
	static struct config a, b;
	char live[512], restart[512];

	config_defaults(&a);
	config_defaults(&b);
	config_diff(&a, &b, live, sizeof(live), restart, sizeof(restart));
	ck_assert_str_eq(live, "");
	ck_assert_str_eq(restart, "");

	b.window_ms = 2000;
	b.max_series = 5;
	b.admin_mode = 0600;
	b.self_metrics_tags[0] = 'x'; /* compared as text, whatever it holds */
	b.self_metrics_tags[1] = '\0';
	snprintf(b.admin_socket, sizeof(b.admin_socket), "%s", "");
	config_diff(&a, &b, live, sizeof(live), restart, sizeof(restart));
	ck_assert_str_eq(live, "relay.window limits.max_series self_metrics.tags");
	ck_assert_str_eq(restart, "admin.socket admin.mode");
}
END_TEST

START_TEST(diff_of_everything)
{
	static struct config a, b;
	char live[1024], restart[512], want[1024] = "";
	size_t n = 0;

	config_defaults(&a);
	load_everything_changed(&b);
	config_diff(&a, &b, live, sizeof(live), restart, sizeof(restart));
	for (size_t i = 0; i < config_noptions; i++)
		if (config_options[i].reloadable)
			n += (size_t)snprintf(want + n, sizeof(want) - n, "%s%s.%s", n ? " " : "",
					      config_options[i].section, config_options[i].name);
	ck_assert_str_eq(live, want);
	/* docs/operations.md: the [admin] keys need a restart, and only they. */
	ck_assert_str_eq(restart, "admin.socket admin.mode admin.group");
}
END_TEST

/* A listen list differs only in its last address, far into its text. */
START_TEST(diff_sees_the_whole_listen_list)
{
	static struct config a, b;
	char text[8192], live[512], restart[512];
	size_t n = (size_t)snprintf(text, sizeof(text), "[relay]\nlisten =");

	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      " unix:///run/spectator-relay/a-rather-long-directory-name/"
				      "and-a-long-socket-name-%02d.unix\n",
				      i);
	load_ok(&a, text);
	text[n - 8] = 'X'; /* ...-15.unix -> ...-X5.unix */
	load_ok(&b, text);
	ck_assert_str_ne(a.listen[15].text, b.listen[15].text);
	config_diff(&a, &b, live, sizeof(live), restart, sizeof(restart));
	ck_assert_str_eq(live, "relay.listen");
	ck_assert_str_eq(restart, "");
}
END_TEST

START_TEST(keep_restart_only_keeps_exactly_those)
{
	static struct config running, next, loaded;

	config_defaults(&running);
	load_everything_changed(&loaded);
	next = loaded;
	config_keep_restart_only(&next, &running);
	for (size_t i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		const struct config *want = o->reloadable ? &loaded : &running;
		ck_assert_msg(!strcmp(text_of(&next, o->section, o->name),
				      text_of(want, o->section, o->name)),
			      "%s.%s: %s", o->section, o->name, text_of(&next, o->section, o->name));
	}
	/* The group's id goes with its name. */
	ck_assert_uint_eq(next.admin_group.gid, (gid_t)-1);
	ck_assert_uint_eq(next.unix_group.gid, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * Written back: INI that reads back the same, JSON that parses
 * ------------------------------------------------------------------------ */

/* Every option's field is the same in a and b. */
static void assert_same_options(const struct config *a, const struct config *b)
{
	for (size_t i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		ck_assert_msg(!strcmp(text_of(a, o->section, o->name), text_of(b, o->section, o->name)),
			      "%s.%s: %s vs %s", o->section, o->name, text_of(a, o->section, o->name),
			      text_of(b, o->section, o->name));
		if (o->type == CONF_URL_LIST)
			continue;
		ck_assert_msg(memcmp((const char *)a + o->offset, (const char *)b + o->offset,
				     o->size) == 0,
			      "%s.%s differs in memory", o->section, o->name);
	}
	ck_assert_uint_eq(a->nlisten, b->nlisten);
	for (size_t i = 0; i < a->nlisten; i++)
		ck_assert(memcmp(&a->listen[i], &b->listen[i], sizeof(a->listen[i])) == 0);
}

/* c, printed as INI and read back from a file, is c. */
static void assert_ini_round_trip(const struct config *c)
{
	static struct config back;
	struct jbuf out;
	char printed[128], err[512];

	jbuf_init(&out);
	config_format_ini(c, &out);
	ck_assert(!out.failed);
	snprintf(printed, sizeof(printed), "%s/printed.ini", dir);
	write_at(printed, out.buf, out.len);
	config_defaults(&back);
	ck_assert_msg(config_load(&back, printed, err, sizeof(err)) == 0, "%s\n%s", err, out.buf);
	jbuf_deinit(&out);
	assert_same_options(c, &back);
}

START_TEST(ini_round_trip_of_the_defaults)
{
	static struct config c;

	config_defaults(&c);
	assert_ini_round_trip(&c);
}
END_TEST

START_TEST(ini_round_trip_of_everything_changed)
{
	static struct config c;

	load_everything_changed(&c);
	assert_ini_round_trip(&c);
}
END_TEST

/* Values as long as a file can hold them: a line of at most 198 bytes, as
 * many listen lines as addresses, and a file whose path is too long for the
 * comment that names it. */
START_TEST(ini_round_trip_of_the_longest_values)
{
	static struct config c;
	char text[8192], tags[256], name[201];
	size_t n = (size_t)snprintf(text, sizeof(text), "[relay]\nlisten =");

	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      " unix:///run/spectator-relay/a-rather-long-directory-name/"
				      "and-a-long-socket-name-%02d.unix\n",
				      i);
	/* "tags=" and 193 bytes: the longest line. */
	memset(tags, 'v', sizeof(tags));
	memcpy(tags, "k=", 2);
	tags[193] = '\0';
	snprintf(text + n, sizeof(text) - n, "[self_metrics]\ntags=%s\n", tags);
	memset(name, 'd', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(long_dir, sizeof(long_dir), "%s/%s", dir, name);
	ck_assert_int_eq(mkdir(long_dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/relay.ini", long_dir);
	load_ok(&c, text);
	ck_assert_str_eq(c.path, path);
	ck_assert_uint_eq(c.nlisten, CONFIG_MAX_LISTEN);
	ck_assert_str_eq(c.self_metrics_tags, tags);
	assert_ini_round_trip(&c);
}
END_TEST

START_TEST(ini_has_every_option_in_table_order)
{
	static struct config c;
	struct jbuf out;
	const char *p;

	config_defaults(&c);
	jbuf_init(&out);
	config_format_ini(&c, &out);
	ck_assert_str_eq(strtok(out.buf, "\n"), "; effective configuration (built-in defaults)");
	p = out.buf + strlen(out.buf) + 1;
	for (size_t i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		char want[256];
		snprintf(want, sizeof(want), "\n%s = %s\n", o->name, text_of(&c, o->section, o->name));
		const char *at = strstr(p, want);
		ck_assert_msg(at, "%s missing after %.40s", want, p);
		p = at + 1;
	}
	jbuf_deinit(&out);
}
END_TEST

static const struct json *member(const struct json *obj, const char *key)
{
	const struct json *v = json_get(obj, key);

	ck_assert_msg(v != NULL, "no member %s", key);
	return v;
}

START_TEST(json_parses_and_says_the_same)
{
	static struct config c;
	struct jbuf out;
	char err[256];

	load_everything_changed(&c);
	/* A path that needs escaping. */
	snprintf(c.admin_socket, sizeof(c.admin_socket), "/run/a \"quoted\" \\ path");
	jbuf_init(&out);
	config_format_json(&c, &out);
	ck_assert(!out.failed);
	struct json *doc = json_parse(out.buf, err, sizeof(err));
	ck_assert_msg(doc != NULL, "%s: %s", err, out.buf);
	ck_assert_int_eq(doc->type, JSON_OBJECT);
	ck_assert_str_eq(member(doc, "path")->text, path);

	/* Every option, in its section, as the INI text says it (numbers and
	 * booleans as such, lists as arrays). */
	for (size_t i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		const struct json *sec = member(doc, o->section);
		ck_assert_int_eq(sec->type, JSON_OBJECT);
		const struct json *v = member(sec, o->name);
		const char *want = text_of(&c, o->section, o->name);
		switch (o->type) {
		case CONF_URL_LIST: {
			ck_assert_int_eq(v->type, JSON_ARRAY);
			size_t k = 0;
			for (const struct json *e = v->child; e; e = e->next, k++) {
				ck_assert_int_eq(e->type, JSON_STRING);
				ck_assert_str_eq(e->text, c.listen[k].text);
			}
			ck_assert_uint_eq(k, c.nlisten);
			break;
		}
		case CONF_COUNT:
			ck_assert_int_eq(v->type, JSON_NUMBER);
			ck_assert_str_eq(v->text, want);
			break;
		case CONF_BOOL:
			ck_assert_int_eq(v->type, JSON_BOOL);
			ck_assert(v->boolean == !strcmp(want, "true"));
			break;
		default:
			ck_assert_int_eq(v->type, JSON_STRING);
			ck_assert_str_eq(v->text, want);
			break;
		}
	}
	ck_assert_str_eq(member(member(doc, "admin"), "socket")->text, "/run/a \"quoted\" \\ path");
	json_free(doc);
	jbuf_deinit(&out);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("config");
	TCase *tc = tcase_create("defaults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, empty_file_is_the_defaults);
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, at_most_64_kib);
	suite_add_tcase(su, tc);

	tc = tcase_create("types");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, every_type_accepted, 0, sizeof(accepted) / sizeof(accepted[0]));
	tcase_add_test(tc, stored_units);
	tcase_add_test(tc, repeated_listen_lines_add_addresses);
	tcase_add_loop_test(tc, every_type_refused, 0, sizeof(refused) / sizeof(refused[0]));
	tcase_add_test(tc, at_most_16_listen_addresses);
	tcase_add_test(tc, a_repeated_listen_line_may_not_repeat_an_address);
	suite_add_tcase(su, tc);

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, unknown_section);
	tcase_add_test(tc, unknown_key);
	tcase_add_test(tc, key_outside_a_section);
	tcase_add_test(tc, set_twice);
	tcase_add_test(tc, syntax_error);
	tcase_add_test(tc, long_line);
	tcase_add_test(tc, nul_byte);
	tcase_add_test(tc, first_fault_wins);
	tcase_add_test(tc, upstream_equal_to_a_listen_address);
	suite_add_tcase(su, tc);

	tc = tcase_create("reload");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, everything_changed_changes_every_option);
	tcase_add_test(tc, diff_lists_live_and_restart_options);
	tcase_add_test(tc, diff_of_everything);
	tcase_add_test(tc, diff_sees_the_whole_listen_list);
	tcase_add_test(tc, keep_restart_only_keeps_exactly_those);
	suite_add_tcase(su, tc);

	tc = tcase_create("format");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, ini_round_trip_of_the_defaults);
	tcase_add_test(tc, ini_round_trip_of_everything_changed);
	tcase_add_test(tc, ini_round_trip_of_the_longest_values);
	tcase_add_test(tc, ini_has_every_option_in_table_order);
	tcase_add_test(tc, json_parses_and_says_the_same);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
