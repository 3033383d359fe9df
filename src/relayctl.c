/* relayctl.c - spectator-relayctl, the admin client.
 *
 *     spectator-relayctl [--socket PATH] [--config FILE] [--json] COMMAND [ARG]
 *
 * Sends one command to the relay's admin socket and prints the reply: as it
 * came with --json, otherwise aligned key/value pairs, with tables for
 * `senders`, `rejects` and `help`. Exits 0 on success, 1 when the relay is
 * unreachable or answers with an error, 2 on a usage error. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "json.h"

#define REPLY_TIMEOUT_S 10

static const char usage[] =
	"usage: spectator-relayctl [--socket PATH] [--config FILE] [--json] COMMAND [ARG]\n"
	"\n"
	"Talks to a running spectator-relay over its admin socket.\n"
	"\n"
	"  -s, --socket PATH   the admin socket (default: [admin] socket of the\n"
	"                      configuration, else /run/spectator-relay/admin.sock)\n"
	"  -c, --config FILE   read the admin socket path from FILE (default:\n"
	"                      " CONFIG_DEFAULT_PATH ", if it exists)\n"
	"  -j, --json          print the relay's JSON reply as it is\n"
	"  -h, --help          print this help\n"
	"\n"
	"Commands: help, stats, config, flush, age-gauges, forget-age-gauge ID,\n"
	"forget-age-gauges, senders, rejects, top [N], reload (`help` asks the relay),\n"
	"and\n"
	"\n"
	"  tap [--seconds N] [--json | --raw] [PREFIX]\n"
	"      streams, one event per line, the lines that come in (in LINE), are\n"
	"      refused (reject REASON LINE) and go out (out LINE) for ids whose name\n"
	"      starts with PREFIX, until N seconds have passed, Ctrl-C, or the relay\n"
	"      stops; --json: one JSON object per event; --raw: only the lines that\n"
	"      came in, as `spectator-relay --replay` reads them.\n";

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "spectator-relayctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Sends the request and reads the whole reply into *reply (caller frees). */
static int ask(const char *path, const char *request, char **reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = REPLY_TIMEOUT_S };

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* A relay that closed the connection first (it makes room for newer
	 * clients) may have said why: a failed send is reported only if no
	 * reply follows, and never as SIGPIPE. */
	size_t len = strlen(request);
	ssize_t sent = send(fd, request, len, MSG_NOSIGNAL);
	int send_err = sent == (ssize_t)len ? 0 : sent < 0 ? errno : EPIPE;
	shutdown(fd, SHUT_WR);

	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (!buf) {
			close(fd);
			return -ENOMEM;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 || (got == 0 && n == 0 && send_err)) {
			int e = send_err ? send_err : errno == EAGAIN ? ETIMEDOUT : errno;
			free(buf);
			close(fd);
			return -e;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n == cap) {
			char *b = realloc(buf, (cap *= 2) + 1);
			if (!b)
				free(buf);
			buf = b;
		}
	}
	close(fd);
	buf[n] = '\0';
	*reply = buf;
	return 0;
}

/* ------------------------------------------------------------------------
 * Printing for people
 * ------------------------------------------------------------------------ */

static void scalar(const struct json *v, char *buf, size_t cap)
{
	switch (v->type) {
	case JSON_NULL:
		snprintf(buf, cap, "-");
		break;
	case JSON_BOOL:
		snprintf(buf, cap, "%s", v->boolean ? "true" : "false");
		break;
	case JSON_NUMBER:
	case JSON_STRING:
		snprintf(buf, cap, "%s", v->text);
		break;
	default:
		snprintf(buf, cap, "...");
	}
}

struct pair {
	char key[160];
	char value[512];
};

static void flatten(const struct json *v, const char *prefix, struct pair **pairs, size_t *n,
		    size_t *cap)
{
	if (v->type == JSON_OBJECT || v->type == JSON_ARRAY) {
		size_t i = 0;
		for (const struct json *c = v->child; c; c = c->next, i++) {
			char key[160];
			if (v->type == JSON_OBJECT)
				snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", c->key);
			else
				snprintf(key, sizeof(key), "%s[%zu]", prefix, i);
			flatten(c, key, pairs, n, cap);
		}
		return;
	}
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*pairs = realloc(*pairs, *cap * sizeof(**pairs));
		if (!*pairs)
			exit(1);
	}
	snprintf((*pairs)[*n].key, sizeof((*pairs)[*n].key), "%s", prefix);
	scalar(v, (*pairs)[*n].value, sizeof((*pairs)[*n].value));
	(*n)++;
}

static void print_pairs(const struct json *v)
{
	struct pair *pairs = NULL;
	size_t n = 0, cap = 0, width = 0;

	flatten(v, "", &pairs, &n, &cap);
	for (size_t i = 0; i < n; i++)
		if (strlen(pairs[i].key) > width)
			width = strlen(pairs[i].key);
	for (size_t i = 0; i < n; i++)
		printf("%-*s  %s\n", (int)width, pairs[i].key, pairs[i].value);
	free(pairs);
}

/* One table cell: times as local hh:mm:ss, long text cut. */
static void cell_text(const struct json *row, const char *col, bool last, char *cell, size_t cap)
{
	const struct json *v = json_get(row, col);

	if (v && v->type == JSON_NUMBER && (!strcmp(col, "time") || !strcmp(col, "last_seen"))) {
		time_t t = (time_t)v->number;
		struct tm tm;
		strftime(cell, cap, "%H:%M:%S", localtime_r(&t, &tm));
		return;
	}
	scalar(v ? v : &(struct json){ .type = JSON_NULL }, cell, cap);
	if (!last && strlen(cell) > 60)
		strcpy(cell + 57, "...");
}

/* A table: one row per element of arr, one column per key in cols. */
static void print_table(const struct json *arr, const char *const *cols, const char *const *heads,
			size_t ncols)
{
	size_t rows = 0, width[8] = { 0 };
	char cell[512];

	for (const struct json *r = arr ? arr->child : NULL; r; r = r->next)
		rows++;
	for (size_t c = 0; c < ncols; c++)
		width[c] = strlen(heads[c]);
	for (const struct json *r = arr ? arr->child : NULL; r; r = r->next)
		for (size_t c = 0; c < ncols; c++) {
			cell_text(r, cols[c], c + 1 == ncols, cell, sizeof(cell));
			if (strlen(cell) > width[c])
				width[c] = strlen(cell);
		}
	for (size_t c = 0; c < ncols; c++)
		printf("%-*s%s", c + 1 < ncols ? (int)width[c] : 0, heads[c], c + 1 < ncols ? "  " : "\n");
	for (const struct json *r = arr ? arr->child : NULL; r; r = r->next) {
		for (size_t c = 0; c < ncols; c++) {
			cell_text(r, cols[c], c + 1 == ncols, cell, sizeof(cell));
			printf("%-*s%s", c + 1 < ncols ? (int)width[c] : 0, cell, c + 1 < ncols ? "  " : "\n");
		}
	}
	if (rows == 0)
		printf("(none)\n");
}

static void print_reply(const char *command, const struct json *v)
{
	if (!strcmp(command, "senders")) {
		static const char *const cols[] = { "sender", "transport", "datagrams", "lines",
						    "bytes", "rejects", "top_reject", "last_seen" };
		static const char *const heads[] = { "SENDER", "TRANSPORT", "DATAGRAMS", "LINES",
						     "BYTES", "REJECTS", "TOP REJECT", "LAST SEEN" };
		printf("By lines:\n");
		print_table(json_get(v, "by_lines"), cols, heads, 8);
		printf("\nBy rejects:\n");
		print_table(json_get(v, "by_rejects"), cols, heads, 8);
	} else if (!strcmp(command, "rejects")) {
		static const char *const cols[] = { "time", "reason", "sender", "line" };
		static const char *const heads[] = { "TIME", "REASON", "SENDER", "LINE" };
		print_table(json_get(v, "rejects"), cols, heads, 4);
	} else if (!strcmp(command, "top")) {
		static const char *const cols[] = { "type", "lines_per_second", "lines", "merges",
						    "id" };
		static const char *const heads[] = { "TYPE", "LINES/S", "LINES", "MERGES", "ID" };
		print_table(v, cols, heads, 5);
	} else if (!strcmp(command, "help")) {
		static const char *const cols[] = { "usage", "privileged", "help" };
		static const char *const heads[] = { "COMMAND", "PRIVILEGED", "WHAT IT DOES" };
		print_table(json_get(v, "commands"), cols, heads, 3);
	} else if (!strcmp(command, "age-gauges")) {
		const struct json *lim = json_get(v, "limit"), *cnt = json_get(v, "count");
		printf("%s of %s age gauge slots used\n", cnt ? cnt->text : "?", lim ? lim->text : "?");
		const struct json *ids = json_get(v, "ids");
		for (const struct json *i = ids ? ids->child : NULL; i; i = i->next)
			printf("%s\n", i->text);
	} else {
		print_pairs(v);
	}
}

/* ------------------------------------------------------------------------
 * tap: a stream of events, until the relay closes it
 * ------------------------------------------------------------------------ */

enum tap_format { TAP_TEXT, TAP_JSON, TAP_RAW };

/* One event line (without its '\n') as the chosen format has it. */
static void tap_event(char *ev, size_t len, enum tap_format fmt)
{
	char *sp = memchr(ev, ' ', len);
	size_t wlen = sp ? (size_t)(sp - ev) : len;
	const char *rest = sp ? sp + 1 : ev + len;
	size_t rlen = len - (sp ? wlen + 1 : wlen);

	if (wlen == 4 && !memcmp(ev, "lost", 4)) {
		/* Never mixed into the lines a replay reads. */
		fprintf(stderr, "spectator-relayctl: %.*s events lost: this client read too slowly\n",
			(int)rlen, rest);
		if (fmt == TAP_JSON)
			printf("{\"event\": \"lost\", \"count\": %.*s}\n", (int)rlen, rest);
		return;
	}
	if (fmt == TAP_TEXT) {
		printf("%.*s\n", (int)len, ev);
		return;
	}
	const char *reason = NULL;
	size_t reason_len = 0;
	if (wlen == 6 && !memcmp(ev, "reject", 6)) {
		const char *sp2 = memchr(rest, ' ', rlen);
		if (sp2) {
			reason = rest;
			reason_len = (size_t)(sp2 - rest);
			rlen -= reason_len + 1;
			rest = sp2 + 1;
		}
	}
	if (fmt == TAP_RAW) {
		if (!(wlen == 3 && !memcmp(ev, "out", 3)))
			printf("%.*s\n", (int)rlen, rest);
		return;
	}
	struct jbuf j;
	jbuf_init(&j);
	jbuf_printf(&j, "{\"event\": ");
	jbuf_string(&j, ev, wlen);
	if (reason) {
		jbuf_printf(&j, ", \"reason\": ");
		jbuf_string(&j, reason, reason_len);
	}
	jbuf_printf(&j, ", \"line\": ");
	jbuf_string(&j, rest, rlen);
	jbuf_printf(&j, "}\n");
	if (j.buf)
		fputs(j.buf, stdout);
	jbuf_deinit(&j);
}

static int tap(const char *path, int argc, char **argv, bool json)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "raw", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	enum tap_format fmt = json ? TAP_JSON : TAP_TEXT;
	unsigned long long seconds = 0;
	int c;

	optind = 0; /* GNU getopt starts over, at argv[1] */
	while ((c = getopt_long(argc, argv, "n:jr", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'n':
			seconds = strtoull(optarg, &end, 10);
			if (*end || optarg[0] < '0' || optarg[0] > '9') {
				fputs(usage, stderr);
				return 2;
			}
			break;
		case 'j':
			fmt = TAP_JSON;
			break;
		case 'r':
			fmt = TAP_RAW;
			break;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		fputs(usage, stderr);
		return 2;
	}
	const char *prefix = optind < argc ? argv[optind] : "";

	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return die("cannot reach the relay at %s: %s", path, strerror(ENAMETOOLONG));
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return die("cannot reach the relay at %s: %s", path, strerror(errno));
	char request[1100];
	int n = snprintf(request, sizeof(request), "tap %llu %s\n", seconds, prefix);
	if (n < 0 || (size_t)n >= sizeof(request) ||
	    send(fd, request, (size_t)n, MSG_NOSIGNAL) != (ssize_t)n) {
		close(fd);
		return die("cannot send to the relay at %s", path);
	}

	/* The first line is the relay's answer: {"tap": true, ...} or an error;
	 * then events until it closes. */
	size_t cap = 1 << 18, len = 0;
	char *buf = malloc(cap);
	bool started = false;
	int status = 0;
	for (;;) {
		ssize_t got = buf ? read(fd, buf + len, cap - len) : -1;
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
		char *p = buf, *nl;
		while ((nl = memchr(p, '\n', len - (size_t)(p - buf)))) {
			*nl = '\0';
			if (!started) {
				char err[128];
				struct json *v = json_parse(p, err, sizeof(err));
				const struct json *e = v ? json_get(v, "error") : NULL;
				if (!v || e) {
					fprintf(stderr, "spectator-relayctl: %s\n",
						e && e->text ? e->text : "unreadable reply");
					json_free(v);
					status = 1;
					goto out;
				}
				json_free(v);
				started = true;
			} else {
				tap_event(p, (size_t)(nl - p), fmt);
			}
			p = nl + 1;
		}
		fflush(stdout);
		len -= (size_t)(p - buf);
		memmove(buf, p, len);
		if (len == cap) /* a line longer than any the relay sends */
			break;
	}
	if (!started)
		status = die("the relay at %s closed the connection", path);
out:
	free(buf);
	close(fd);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *socket_path = NULL, *config_path = NULL;
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "+s:c:jh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	bool tapping = optind < argc && !strcmp(argv[optind], "tap");
	if (optind >= argc || (!tapping && argc - optind > 2)) {
		fputs(usage, stderr);
		return 2;
	}
	const char *command = argv[optind];
	const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;

	static struct config cfg;
	char err[512];
	config_defaults(&cfg);
	if (config_path && config_load(&cfg, config_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "spectator-relayctl: %s\n", err);
		return 2;
	}
	/* Like the relay, read the default file when there is one; a broken
	 * one must not keep an operator from a running relay. */
	if (!config_path && !socket_path && access(CONFIG_DEFAULT_PATH, F_OK) == 0 &&
	    config_load(&cfg, CONFIG_DEFAULT_PATH, err, sizeof(err)) != 0) {
		fprintf(stderr, "spectator-relayctl: %s; trying the default admin socket\n", err);
		config_defaults(&cfg);
	}
	if (!socket_path)
		socket_path = cfg.admin_socket;
	if (!socket_path[0])
		return die("the admin socket is disabled in %s",
			   config_path ? config_path : "the configuration");
	if (tapping)
		return tap(socket_path, argc - optind, argv + optind, json);

	char request[1100];
	snprintf(request, sizeof(request), "%s%s%s\n", command, arg ? " " : "", arg ? arg : "");
	char *reply = NULL;
	int r = ask(socket_path, request, &reply);
	if (r != 0)
		return die("cannot reach the relay at %s: %s", socket_path, strerror(-r));

	struct json *v = json_parse(reply, err, sizeof(err));
	if (!v) {
		fprintf(stderr, "spectator-relayctl: unreadable reply (%s)\n", err);
		free(reply);
		return 1;
	}
	const struct json *e = json_get(v, "error");
	int status = 0;
	if (e) {
		fprintf(stderr, "spectator-relayctl: %s\n", e->text ? e->text : "error");
		status = 1;
	} else if (json) {
		fputs(reply, stdout);
	} else {
		print_reply(command, v);
	}
	json_free(v);
	free(reply);
	return status;
}
