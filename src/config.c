/* config.c - the option table and its INI reader. See config.h. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"


#define OFF(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define KIB 1024ull
#define MIB (1024ull * 1024)
#define GIB (1024ull * 1024 * 1024)

/* ------------------------------------------------------------------------
 * The table. conf/relay.ini, docs/configuration.md and the admin `config`
 * command follow it; tests/blackbox/test_docs.py checks that they do.
 * ------------------------------------------------------------------------ */

const struct config_option config_options[] = {
	{ "relay", "listen", CONF_URL_LIST, OFF(listen),
	  "udp://127.0.0.1:1235 udp://[::1]:1235 unix:///run/spectator-relay/relay.unix", 1,
	  CONFIG_MAX_LISTEN, true,
	  "where clients send: udp://HOST:PORT and unix:///PATH, separated by spaces or commas" },
	{ "relay", "upstream", CONF_URL, OFF(upstream), "unix:///run/spectatord/spectatord.unix", 0,
	  0, true, "where SpectatorD listens: unix:///PATH, udp://HOST:PORT, file:///PATH or stdout" },
	{ "relay", "window", CONF_DURATION, OFF(window_ms), "1s", 100, 5000, true,
	  "how long lines are merged before they are forwarded; 100ms to 5s" },
	{ "relay", "shutdown_timeout", CONF_DURATION, OFF(shutdown_timeout_ms), "5s", 0, 60000, true,
	  "on SIGTERM, how long to keep trying to deliver the last window; 0 to 60s" },
	{ "relay", "merge_timers", CONF_BOOL, OFF(merge_timers), "true", 0, 0, true,
	  "merge t T d D lines into the statistics SpectatorD publishes for them; false "
	  "forwards every sample as it came" },

	{ "limits", "max_series", CONF_COUNT, OFF(max_series), "1000000", 1, 100000000, true,
	  "distinct series merged in one window; new ones beyond are refused (series-limit), "
	  "timers forwarded unmerged" },
	{ "limits", "max_key_bytes", CONF_SIZE, OFF(max_key_bytes), "256MiB", 1 * MIB,
	  4 * GIB - 1, true, "bytes of series ids held in one window; new ones beyond are refused" },
	{ "limits", "max_series_per_name", CONF_COUNT, OFF(max_series_per_name), "0", 0, 100000000,
	  true, "distinct series of one name in one window, so that one runaway metric cannot "
		"starve the others; 0 means no limit" },
	{ "limits", "age_gauge_limit", CONF_COUNT, OFF(age_gauge_limit), "1000", 0, 1000000, true,
	  "distinct age gauge ids ever forwarded, as SpectatorD's --age_gauge_limit" },
	{ "limits", "max_datagram", CONF_SIZE, OFF(max_datagram), "61440", 512, 65507, true,
	  "largest datagram sent upstream, in bytes; 512 to 65507" },
	{ "limits", "max_pending_bytes", CONF_SIZE, OFF(max_pending_bytes), "64MiB", 64 * KIB,
	  4 * GIB, true,
	  "lines forwarded as they came held while SpectatorD is slow or away; oldest dropped first" },

	{ "sockets", "receive_buffer", CONF_SIZE, OFF(receive_buffer), "16MiB", 4 * KIB, 1 * GIB,
	  true, "SO_RCVBUF of every listening socket (SO_RCVBUFFORCE when permitted)" },
	{ "sockets", "unix_mode", CONF_MODE, OFF(unix_mode), "0666", 0, 0777, true,
	  "file mode of the unix listening sockets" },
	{ "sockets", "unix_group", CONF_GROUP, OFF(unix_group), "", 0, 0, true,
	  "group of the unix listening sockets; empty keeps the relay's own" },

	{ "admin", "socket", CONF_PATH, OFF(admin_socket), "/run/spectator-relay/admin.sock", 0, 0,
	  false, "absolute path of the admin unix stream socket; empty disables it" },
	{ "admin", "mode", CONF_MODE, OFF(admin_mode), "0666", 0, 0777, false,
	  "file mode of the admin socket" },
	{ "admin", "group", CONF_GROUP, OFF(admin_group), "", 0, 0, false,
	  "group that may run mutating admin commands (flush, reload, forget-*), and owns the socket" },

	{ "spectatord", "admin", CONF_HTTP, OFF(spectatord_admin), "http://127.0.0.1:1234", 0, 0,
	  true, "SpectatorD's admin server, read for its age gauges; empty: never" },
	{ "spectatord", "resync_interval", CONF_DURATION, OFF(resync_interval_ms), "30s", 1000,
	  600000, true, "how often the age-gauge set is read from SpectatorD; 1s to 10m" },

	{ "self_metrics", "enabled", CONF_BOOL, OFF(self_metrics), "true", 0, 0, true,
	  "forward the relay's own meters (spectatorRelay.*) upstream every 5 seconds" },
	{ "self_metrics", "tags", CONF_TAGS, OFF(self_metrics_tags), "", 0, 0, true,
	  "extra tags on every self-metric: key=value,key=value" },

	{ "log", "level", CONF_LEVEL, OFF(log_level), "info", 0, 0, true,
	  "error, warn, info or debug" },
};

const size_t config_noptions = sizeof(config_options) / sizeof(config_options[0]);

static const char *const sections[] = { "relay",      "limits",       "sockets", "admin",
					"spectatord", "self_metrics", "log" };

/* ------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------ */

/* [log] level: the names, and the syslog priorities log.h's levels are. */
static const struct {
	const char *name;
	uint64_t priority;
} levels[] = { { "error", 3 }, { "warn", 4 }, { "info", 6 }, { "debug", 7 } };

static int level_parse(const char *s, uint64_t *out)
{
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcmp(s, levels[i].name) == 0) {
			*out = levels[i].priority;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *level_name(uint64_t priority)
{
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (levels[i].priority == priority)
			return levels[i].name;
	return "info";
}

/* A decimal integer followed by one of units[]; returns 0 or -EINVAL. */
static int number_with_unit(const char *s, const char *const *units, const uint64_t *scale,
			    size_t nunits, bool unit_required, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '\0') {
		if (unit_required)
			return -EINVAL;
		*out = v;
		return 0;
	}
	for (size_t i = 0; i < nunits; i++) {
		if (strcmp(p, units[i]) == 0) {
			if (v > UINT64_MAX / scale[i])
				return -ERANGE;
			*out = v * scale[i];
			return 0;
		}
	}
	return -EINVAL;
}

static void format_duration(uint64_t ms, char *buf, size_t cap)
{
	if (ms >= 60000 && ms % 60000 == 0)
		snprintf(buf, cap, "%llum", (unsigned long long)(ms / 60000));
	else if (ms >= 1000 && ms % 1000 == 0)
		snprintf(buf, cap, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, cap, "%llums", (unsigned long long)ms);
}

static void format_size(uint64_t b, char *buf, size_t cap)
{
	if (b >= GIB && b % GIB == 0)
		snprintf(buf, cap, "%lluGiB", (unsigned long long)(b / GIB));
	else if (b >= MIB && b % MIB == 0)
		snprintf(buf, cap, "%lluMiB", (unsigned long long)(b / MIB));
	else if (b >= KIB && b % KIB == 0)
		snprintf(buf, cap, "%lluKiB", (unsigned long long)(b / KIB));
	else
		snprintf(buf, cap, "%llu", (unsigned long long)b);
}

static void format_bound(const struct config_option *o, uint64_t v, char *buf, size_t cap)
{
	if (o->type == CONF_DURATION)
		format_duration(v, buf, cap);
	else if (o->type == CONF_SIZE)
		format_size(v, buf, cap);
	else if (o->type == CONF_MODE)
		snprintf(buf, cap, "%04llo", (unsigned long long)v);
	else
		snprintf(buf, cap, "%llu", (unsigned long long)v);
}

static bool tag_byte_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~' || c == '^';
}

static int check_tags(const char *s, char *err, size_t errlen)
{
	const char *p = s;

	if (*p == '\0')
		return 0;
	for (;;) {
		const char *k = p;
		while (tag_byte_ok(*p))
			p++;
		if (p == k || *p != '=')
			return errmsg(err, errlen, -EINVAL, "expected key=value,key=value with keys and values "
						   "made of [-._A-Za-z0-9~^]");
		if (p - k == 4 && memcmp(k, "name", 4) == 0)
			return errmsg(err, errlen, -EINVAL, "the tag key 'name' is reserved");
		const char *v = ++p;
		while (tag_byte_ok(*p))
			p++;
		if (p == v)
			return errmsg(err, errlen, -EINVAL, "empty tag value");
		if (*p == '\0')
			return 0;
		if (*p != ',')
			return errmsg(err, errlen, -EINVAL, "expected key=value,key=value with keys and values "
						   "made of [-._A-Za-z0-9~^]");
		p++;
	}
}

/* The one place a group name becomes an id. It reads the group database
 * (NSS), which makes config.c less than pure; but a name that passes
 * --check-config and a reload must not fail the next start, so the file
 * is not valid until the name is known. Returns 0, -ENOENT or -errno. */
static int lookup_group(const char *name, gid_t *gid)
{
	size_t cap = 1024;

	/* A group with many members needs a larger buffer (ERANGE). */
	for (;;) {
		struct group gr, *found = NULL;
		char *buf = malloc(cap);
		if (!buf)
			return -ENOMEM;
		int r = getgrnam_r(name, &gr, buf, cap, &found);
		free(buf);
		if (r == ERANGE && cap < (1u << 20)) {
			cap *= 2;
			continue;
		}
		if (r != 0)
			return -r;
		if (!found)
			return -ENOENT;
		*gid = gr.gr_gid;
		return 0;
	}
}

/* Sets one option from its text. append: a repeated listen line adds to the
 * list instead of replacing it. Returns 0 or -EINVAL with the reason. */
static int set_value(struct config *c, const struct config_option *o, const char *value,
		     bool append, char *err, size_t errlen)
{
	char *field = (char *)c + o->offset;
	uint64_t v = 0;
	int r = 0;

	switch (o->type) {
	case CONF_URL_LIST: {
		char copy[1024];
		if (!append)
			c->nlisten = 0;
		if (strlen(value) >= sizeof(copy))
			return errmsg(err, errlen, -EINVAL, "value too long");
		strcpy(copy, value);
		for (char *save = NULL, *tok = strtok_r(copy, " \t,", &save); tok;
		     tok = strtok_r(NULL, " \t,", &save)) {
			if (c->nlisten == CONFIG_MAX_LISTEN)
				return errmsg(err, errlen, -EINVAL, "at most %d addresses", CONFIG_MAX_LISTEN);
			r = url_parse(tok, true, &c->listen[c->nlisten], err, errlen);
			if (r != 0)
				return r;
			for (size_t i = 0; i < c->nlisten; i++)
				if (url_same_address(&c->listen[i], &c->listen[c->nlisten]))
					return errmsg(err, errlen, -EINVAL, "%s is listed twice", tok);
			c->nlisten++;
		}
		if (c->nlisten == 0)
			return errmsg(err, errlen, -EINVAL, "at least one address is required");
		return 0;
	}
	case CONF_URL:
		return url_parse(value, false, (struct url *)field, err, errlen);
	case CONF_HTTP:
		if (value[0] == '\0') {
			memset(field, 0, sizeof(struct url));
			return 0;
		}
		return url_parse_http(value, (struct url *)field, err, errlen);
	case CONF_DURATION: {
		static const char *const units[] = { "ms", "s", "m" };
		static const uint64_t scale[] = { 1, 1000, 60000 };
		r = number_with_unit(value, units, scale, 3, true, &v);
		if (r == -EINVAL)
			return errmsg(err, errlen, -EINVAL, "expected a duration such as 250ms, 1s or 2m");
		break;
	}
	case CONF_SIZE: {
		static const char *const units[] = { "B", "KiB", "MiB", "GiB" };
		static const uint64_t scale[] = { 1, KIB, MIB, GIB };
		r = number_with_unit(value, units, scale, 4, false, &v);
		if (r == -EINVAL)
			return errmsg(err, errlen, -EINVAL, "expected a size such as 65536, 64KiB or 16MiB");
		break;
	}
	case CONF_COUNT:
		r = number_with_unit(value, NULL, NULL, 0, false, &v);
		if (r == -EINVAL)
			return errmsg(err, errlen, -EINVAL, "expected a whole number");
		break;
	case CONF_MODE: {
		char *end;
		if (value[0] != '0' || strlen(value) > 5)
			return errmsg(err, errlen, -EINVAL, "expected an octal mode such as 0660");
		v = strtoull(value, &end, 8);
		if (*end != '\0')
			return errmsg(err, errlen, -EINVAL, "expected an octal mode such as 0660");
		r = 0;
		break;
	}
	case CONF_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))
			*(bool *)field = true;
		else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))
			*(bool *)field = false;
		else
			return errmsg(err, errlen, -EINVAL, "expected true or false");
		return 0;
	case CONF_PATH:
		/* The relay's working directory is nobody's business: a relative
		 * path would put the socket wherever it was started. */
		if (value[0] && value[0] != '/')
			return errmsg(err, errlen, -EINVAL, "must be an absolute path, or empty to disable the "
						   "%s socket", o->section);
		if (strlen(value) >= o->size)
			return errmsg(err, errlen, -EINVAL, "longer than %zu bytes", o->size - 1);
		strcpy(field, value);
		return 0;
	case CONF_GROUP: {
		struct config_group *g = (struct config_group *)field;
		gid_t gid = (gid_t)-1;
		if (strlen(value) >= sizeof(g->name))
			return errmsg(err, errlen, -EINVAL, "longer than %zu bytes", sizeof(g->name) - 1);
		r = value[0] ? lookup_group(value, &gid) : 0;
		if (r == -ENOENT)
			return errmsg(err, errlen, -EINVAL, "unknown group %s", value);
		if (r != 0)
			return errmsg(err, errlen, r, "cannot look up group %s: %s", value, strerror(-r));
		strcpy(g->name, value);
		g->gid = gid;
		return 0;
	}
	case CONF_TAGS:
		if (strlen(value) >= o->size)
			return errmsg(err, errlen, -EINVAL, "longer than %zu bytes", o->size - 1);
		r = check_tags(value, err, errlen);
		if (r != 0)
			return r;
		strcpy(field, value);
		return 0;
	case CONF_LEVEL: {
		uint64_t level;
		if (level_parse(value, &level) != 0)
			return errmsg(err, errlen, -EINVAL, "expected error, warn, info or debug");
		*(uint64_t *)field = level;
		return 0;
	}
	}

	if (r == -ERANGE || v < o->min || v > o->max) {
		char lo[32], hi[32];
		format_bound(o, o->min, lo, sizeof(lo));
		format_bound(o, o->max, hi, sizeof(hi));
		return errmsg(err, errlen, -EINVAL, "must be between %s and %s", lo, hi);
	}
	*(uint64_t *)field = v;
	return 0;
}

static const struct config_option *find_option(const char *section, const char *name)
{
	for (size_t i = 0; i < config_noptions; i++)
		if (!strcmp(config_options[i].section, section) && !strcmp(config_options[i].name, name))
			return &config_options[i];
	return NULL;
}

static bool known_section(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strlen(sections[i]) == n && !memcmp(sections[i], s, n))
			return true;
	return false;
}

void config_defaults(struct config *c)
{
	char err[256];

	memset(c, 0, sizeof(*c));
	c->listen_is_default = true;
	for (size_t i = 0; i < config_noptions; i++) {
		int r = set_value(c, &config_options[i], config_options[i].def, false, err, sizeof(err));
		/* The table's defaults are tested; a bad one is a build defect. */
		if (r != 0) {
			fprintf(stderr, "built-in default of %s: %s\n", config_options[i].name, err);
			abort();
		}
	}
}

/* ------------------------------------------------------------------------
 * Reading a file
 * ------------------------------------------------------------------------ */

struct load_ctx {
	struct config *c;
	char *msg;            /* the first error, without its "FILE:LINE: " */
	size_t msglen;
	bool failed;
	bool seen[64];
	int line_of[64];      /* where each option was set */
	int listen_line[CONFIG_MAX_LISTEN]; /* where each listen address was */
	const char *next;     /* the text still to read */
	int line;             /* the line inih is on */
};

/* inih's reader: one line per call, as ini_parse_string() reads, counted
 * so that errors found after the parse (a pair of keys that clash) can
 * name their line too. */
static char *read_line_cb(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	int n = 0;

	if (*ctx->next == '\0' || num < 2)
		return NULL;
	while (n < num - 1 && ctx->next[n] != '\0') {
		str[n] = ctx->next[n];
		if (ctx->next[n++] == '\n')
			break;
	}
	str[n] = '\0';
	ctx->next += n;
	ctx->line++;
	return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	const struct config_option *o = find_option(section, name);
	char why[256];

	if (ctx->failed)
		return 1; /* report only the first error; its line is the one inih returns */
	if (!o) {
		ctx->failed = true;
		if (section[0] == '\0')
			snprintf(ctx->msg, ctx->msglen, "%s: outside any [section]", name);
		else if (!known_section(section, strlen(section)))
			snprintf(ctx->msg, ctx->msglen, "[%s]: unknown section", section);
		else
			snprintf(ctx->msg, ctx->msglen, "%s: unknown key in [%s]", name, section);
		return 0;
	}
	size_t idx = (size_t)(o - config_options);
	bool again = ctx->seen[idx];
	if (again && o->type != CONF_URL_LIST) {
		ctx->failed = true;
		snprintf(ctx->msg, ctx->msglen, "%s: set twice", name);
		return 0;
	}
	ctx->seen[idx] = true;
	ctx->line_of[idx] = ctx->line;
	size_t had = again ? ctx->c->nlisten : 0;
	if (o->offset == offsetof(struct config, listen))
		ctx->c->listen_is_default = false;
	if (set_value(ctx->c, o, value, again, why, sizeof(why)) != 0) {
		ctx->failed = true;
		snprintf(ctx->msg, ctx->msglen, "%s: %s", name, why);
		return 0;
	}
	if (o->type == CONF_URL_LIST)
		for (size_t i = had; i < ctx->c->nlisten; i++)
			ctx->listen_line[i] = ctx->line;
	return 1;
}

/* The key a line sets, for a message about the line itself: "max_series"
 * in "max_series = 1"; "" for a section, a comment or a continuation. */
static void key_of_line(const char *line, size_t n, char *key, size_t cap)
{
	size_t k = 0;

	while (k < n && ((line[k] >= 'a' && line[k] <= 'z') || (line[k] >= 'A' && line[k] <= 'Z') ||
			 (line[k] >= '0' && line[k] <= '9') || line[k] == '_'))
		k++;
	size_t end = k;
	while (k < n && (line[k] == ' ' || line[k] == '\t'))
		k++;
	if (end == 0 || k == n || (line[k] != '=' && line[k] != ':'))
		end = 0;
	snprintf(key, cap, "%.*s%s", (int)end, line, end ? ": " : "");
}

/* The longest line inih reads whole: INI_MAX_LINE holds it, its '\n' and
 * a NUL. */
#define LINE_BYTES (INI_MAX_LINE - 2)

/* inih cuts lines at INI_MAX_LINE and misses empty unknown sections; check
 * both here so that neither passes silently. Returns the first bad line. */
static int prescan(const char *text, char *msg, size_t msglen)
{
	int lineno = 0;

	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (n > LINE_BYTES) {
			char key[80];
			key_of_line(p, n, key, sizeof(key));
			snprintf(msg, msglen, "%sline longer than %d bytes", key, LINE_BYTES);
			return lineno;
		}
		const char *s = p;
		while (s < p + n && (*s == ' ' || *s == '\t'))
			s++;
		if (s < p + n && *s == '[') {
			const char *close = memchr(s, ']', (size_t)(p + n - s));
			if (close && !known_section(s + 1, (size_t)(close - s - 1))) {
				snprintf(msg, msglen, "[%.*s]: unknown section", (int)(close - s - 1), s + 1);
				return lineno;
			}
		}
		p = nl ? nl + 1 : p + n;
	}
	return 0;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	size_t cap = 1 << 16;
	char *text = malloc(cap + 1);
	size_t len = text ? fread(text, 1, cap, f) : 0;
	bool too_big = text && len == cap && fgetc(f) != EOF;
	fclose(f);
	if (!text) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (too_big) {
		free(text);
		snprintf(err, errlen, "%s: larger than 64 KiB", path);
		return -EFBIG;
	}
	text[len] = '\0';
	const char *nul = memchr(text, '\0', len);
	if (nul) {
		/* inih would stop reading there, silently. */
		int at = 1;
		const char *start = text;
		for (const char *p = text; p < nul; p++)
			if (*p == '\n') {
				at++;
				start = p + 1;
			}
		char key[80];
		key_of_line(start, (size_t)(nul - start), key, sizeof(key));
		snprintf(err, errlen, "%s:%d: %scontains a NUL byte", path, at, key);
		free(text);
		return -EINVAL;
	}

	char pre[256] = "", msg[256] = "";
	int pre_line = prescan(text, pre, sizeof(pre));
	struct load_ctx ctx = { .c = c, .msg = msg, .msglen = sizeof(msg), .next = text };
	int line = ini_parse_stream(read_line_cb, &ctx, on_key, &ctx);
	free(text);

	if (line < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (pre_line > 0 && (line == 0 || pre_line <= line)) {
		snprintf(err, errlen, "%s:%d: %s", path, pre_line, pre);
		return -EINVAL;
	}
	if (line > 0) {
		snprintf(err, errlen, "%s:%d: %s", path, line,
			 msg[0] ? msg : "syntax error: expected [section] or key = value");
		return -EINVAL;
	}
	/* Each key is valid alone; this pair is not: every line forwarded
	 * would come back to be merged again, forever. Blame the upstream
	 * where the file sets it, else the listen line that names it. */
	size_t up = (size_t)(find_option("relay", "upstream") - config_options);
	for (size_t i = 0; i < c->nlisten; i++) {
		if (!url_same_address(&c->listen[i], &c->upstream))
			continue;
		if (ctx.seen[up])
			snprintf(err, errlen, "%s:%d: upstream: %s is also a listen address", path,
				 ctx.line_of[up], c->upstream.text);
		else
			snprintf(err, errlen, "%s:%d: listen: %s is also the upstream", path,
				 ctx.listen_line[i], c->listen[i].text);
		return -EINVAL;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	return 0;
}

/* ------------------------------------------------------------------------
 * Writing it back
 * ------------------------------------------------------------------------ */

void config_value_text(const struct config *c, const struct config_option *o, char *buf, size_t cap)
{
	const char *field = (const char *)c + o->offset;
	uint64_t v = 0;

	/* Only numeric options are uint64_t fields. */
	if (o->type == CONF_DURATION || o->type == CONF_SIZE || o->type == CONF_COUNT ||
	    o->type == CONF_MODE || o->type == CONF_LEVEL)
		memcpy(&v, field, sizeof(v));
	switch (o->type) {
	case CONF_URL_LIST: {
		size_t n = 0;
		buf[0] = '\0';
		for (size_t i = 0; i < c->nlisten && n < cap; i++)
			n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", c->listen[i].text);
		return;
	}
	case CONF_URL:
	case CONF_HTTP:
		snprintf(buf, cap, "%s", ((const struct url *)field)->text);
		return;
	case CONF_DURATION:
		format_duration(v, buf, cap);
		return;
	case CONF_SIZE:
		format_size(v, buf, cap);
		return;
	case CONF_COUNT:
		snprintf(buf, cap, "%llu", (unsigned long long)v);
		return;
	case CONF_MODE:
		snprintf(buf, cap, "%04llo", (unsigned long long)v);
		return;
	case CONF_BOOL:
		snprintf(buf, cap, "%s", *(const bool *)field ? "true" : "false");
		return;
	case CONF_PATH:
	case CONF_TAGS:
		snprintf(buf, cap, "%s", field);
		return;
	case CONF_GROUP:
		snprintf(buf, cap, "%s", ((const struct config_group *)field)->name);
		return;
	case CONF_LEVEL:
		snprintf(buf, cap, "%s", level_name(v));
		return;
	}
}

/* The listen list as config_load() reads it back: on indented continuation
 * lines once one line would be longer than LINE_BYTES. */
static void format_listen(const struct config *c, struct jbuf *out)
{
	size_t col = strlen("listen =");

	jbuf_printf(out, "listen =");
	for (size_t i = 0; i < c->nlisten; i++) {
		size_t n = strlen(c->listen[i].text);
		if (i > 0 && col + 1 + n > LINE_BYTES) {
			jbuf_printf(out, "\n ");
			col = 1;
		}
		jbuf_printf(out, " %s", c->listen[i].text);
		col += 1 + n;
	}
	jbuf_printf(out, "\n");
}

void config_format_ini(const struct config *c, struct jbuf *out)
{
	const char *section = "";
	char value[CONFIG_VALUE_MAX];
	const char *head = "; effective configuration (";
	const char *from = c->path[0] ? c->path : "built-in defaults";
	size_t room = LINE_BYTES - strlen(head) - strlen(")");

	/* Every line must read back: a path too long for the comment is cut. */
	if (strlen(from) > room)
		jbuf_printf(out, "%s%.*s...)\n", head, (int)(room - 3), from);
	else
		jbuf_printf(out, "%s%s)\n", head, from);
	for (size_t i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		if (strcmp(section, o->section) != 0) {
			jbuf_printf(out, "%s[%s]\n", i ? "\n" : "", o->section);
			section = o->section;
		}
		if (o->type == CONF_URL_LIST) {
			format_listen(c, out);
			continue;
		}
		config_value_text(c, o, value, sizeof(value));
		/* A value read from a line without spaces around '=' may leave
		 * no room for them. */
		bool tight = strlen(o->name) + strlen(" = ") + strlen(value) > LINE_BYTES;
		jbuf_printf(out, "%s%s%s\n", o->name, tight ? "=" : " = ", value);
	}
}

void config_format_json(const struct config *c, struct jbuf *out)
{
	const char *section = "";
	char value[CONFIG_VALUE_MAX];

	jbuf_printf(out, "{\"path\": ");
	jbuf_cstring(out, c->path);
	for (size_t i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		if (strcmp(section, o->section) != 0) {
			jbuf_printf(out, "%s, \"%s\": {", section[0] ? "}" : "", o->section);
			section = o->section;
		} else {
			jbuf_printf(out, ", ");
		}
		jbuf_printf(out, "\"%s\": ", o->name);
		const char *field = (const char *)c + o->offset;
		if (o->type == CONF_URL_LIST) {
			jbuf_printf(out, "[");
			for (size_t j = 0; j < c->nlisten; j++) {
				jbuf_printf(out, "%s", j ? ", " : "");
				jbuf_cstring(out, c->listen[j].text);
			}
			jbuf_printf(out, "]");
		} else if (o->type == CONF_COUNT) {
			jbuf_printf(out, "%llu", (unsigned long long)*(const uint64_t *)field);
		} else if (o->type == CONF_BOOL) {
			jbuf_printf(out, "%s", *(const bool *)field ? "true" : "false");
		} else {
			config_value_text(c, o, value, sizeof(value));
			jbuf_cstring(out, value);
		}
	}
	jbuf_printf(out, "}}");
}

void config_keep_restart_only(struct config *next, const struct config *running)
{
	for (size_t i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		if (!o->reloadable)
			memcpy((char *)next + o->offset, (const char *)running + o->offset, o->size);
	}
}

void config_diff(const struct config *a, const struct config *b, char *live, size_t live_cap,
		 char *restart, size_t restart_cap)
{
	/* Whole values: two listen lists may differ only in their last address. */
	char va[CONFIG_VALUE_MAX], vb[CONFIG_VALUE_MAX];
	size_t nl = 0, nr = 0;

	live[0] = restart[0] = '\0';
	for (size_t i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		config_value_text(a, o, va, sizeof(va));
		config_value_text(b, o, vb, sizeof(vb));
		if (strcmp(va, vb) == 0)
			continue;
		if (o->reloadable && nl < live_cap)
			nl += (size_t)snprintf(live + nl, live_cap - nl, "%s%s.%s", nl ? " " : "",
					       o->section, o->name);
		else if (!o->reloadable && nr < restart_cap)
			nr += (size_t)snprintf(restart + nr, restart_cap - nr, "%s%s.%s",
					       nr ? " " : "", o->section, o->name);
	}
}
