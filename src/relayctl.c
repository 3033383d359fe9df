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
	"forget-age-gauges, senders, rejects, reload (`help` asks the relay).\n";

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
	if (optind >= argc || argc - optind > 2) {
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
