/* resync.c - see resync.h. */
#include "resync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "protocol.h"

static void begin(struct resync *r, const char *path);
static void timer_closed_cb(uv_handle_t *h);

/* ------------------------------------------------------------------------
 * Ending a request
 * ------------------------------------------------------------------------ */

static void one_closed(struct resync *r)
{
	if (closes_done(&r->closes) && r->closed_cb)
		r->closed_cb(r);
}

static void tcp_closed_cb(uv_handle_t *h)
{
	struct resync *r = h->data;

	free(h);
	one_closed(r);
}

static void drop_connection(struct resync *r)
{
	uv_timer_stop(&r->deadline);
	if (r->tcp) {
		closes_add(&r->closes, 1);
		uv_close((uv_handle_t *)r->tcp, tcp_closed_cb);
		r->tcp = NULL;
	}
}

/* A reply can be tens of MiB; between requests (30 s apart) it is not kept. */
static void release_reply(struct resync *r)
{
	free(r->reply);
	r->reply = NULL;
	r->len = r->cap = r->next_scan = 0;
}

static void request_failed(struct resync *r, const char *why)
{
	bool first = r->last_error[0] == '\0';

	drop_connection(r);
	release_reply(r);
	r->stats->spectatord_resync_failures++;
	snprintf(r->last_error, sizeof(r->last_error), "%s %s: %s", r->url.text, r->path, why);
	/* Once per run of failures: SpectatorD may well be down for a while. */
	if (first)
		log_warn("event=age_gauge_resync_failed error=\"%s\"", r->last_error);
	r->path = NULL;
}

/* ------------------------------------------------------------------------
 * The answers
 * ------------------------------------------------------------------------ */

/* The body of a complete 200 response, or NULL with *why set. */
static char *body_of(struct resync *r, const char **why)
{
	if (!r->reply || r->len == 0) {
		*why = "empty reply";
		return NULL;
	}
	r->reply[r->len] = '\0';
	char *end = strstr(r->reply, "\r\n\r\n");
	if (!end || strncmp(r->reply, "HTTP/1.", 7) != 0) {
		*why = "not an HTTP response";
		return NULL;
	}
	char *sp = strchr(r->reply, ' ');
	if (!sp || strncmp(sp + 1, "200", 3) != 0) {
		*why = "status is not 200";
		return NULL;
	}
	return end + 4;
}

/* SpectatorD's limit is an int; anything else is not SpectatorD's answer. */
#define RESYNC_MAX_LIMIT 1e9

static bool read_config(struct resync *r, const char *body)
{
	char err[128];
	struct json *doc = json_parse(body, err, sizeof(err));
	const struct json *limit = doc ? json_get(doc, "age_gauge_limit") : NULL;
	bool ok = limit && limit->type == JSON_NUMBER && limit->number >= 0 &&
		  limit->number <= RESYNC_MAX_LIMIT && limit->number == (double)(size_t)limit->number;

	if (ok)
		r->remote_limit = (size_t)limit->number;
	json_free(doc);
	return ok;
}

/* "A:name,k=v,...:0" for one /metrics entry, into line; false when the
 * entry is not shaped like SpectatorD's. */
static bool entry_line(const struct json *e, struct jbuf *line)
{
	const struct json *name = json_get(e, "name"), *tags = json_get(e, "tags");

	line->len = 0;
	if (!name || name->type != JSON_STRING || (tags && tags->type != JSON_OBJECT))
		return false;
	jbuf_printf(line, "A:%s", name->text);
	for (const struct json *t = tags ? tags->child : NULL; t; t = t->next) {
		if (t->type != JSON_STRING)
			return false;
		jbuf_printf(line, ",%s=%s", t->key, t->text);
	}
	jbuf_printf(line, ":0");
	return !line->failed;
}

static bool read_metrics(struct resync *r, const char *body)
{
	const char *text;
	size_t text_len;
	char err[128];

	/* /metrics holds every meter; only the age gauges are parsed. */
	if (json_member_text(body, "age_gauges", &text, &text_len) != 0)
		return false;
	char *copy = strndup(text, text_len);
	struct json *list = copy ? json_parse(copy, err, sizeof(err)) : NULL;
	free(copy);
	if (!list || list->type != JSON_ARRAY) {
		json_free(list);
		return false;
	}

	size_t n = 0, bytes = 0, arena_cap = 0, i = 0;
	for (const struct json *e = list->child; e; e = e->next)
		n++;
	/* Canonical ids go into one arena; their offsets, until it stops moving.
	 * A parser of its own, for one reply every resync_interval: its
	 * buffers are not worth keeping in between. */
	struct agg_id *ids = calloc(n ? n : 1, sizeof(*ids));
	size_t *off = calloc(n ? n : 1, sizeof(*off));
	char *arena = NULL;
	struct jbuf line;
	struct proto_parser ps;
	bool have_ps = proto_parser_init(&ps) == 0;
	bool ok = ids && off && have_ps;
	jbuf_init(&line);
	for (const struct json *e = list->child; ok && e; e = e->next, i++) {
		struct sample s;
		bool parsed = entry_line(e, &line) &&
			      proto_parse_line(&ps, line.buf, line.len, &s) == REJECT_NONE;
		/* An id the relay would refuse (another writer's) still holds one
		 * of SpectatorD's slots: keep its place with a unique stand-in. */
		char standin[32];
		const char *id = parsed ? s.id : standin;
		size_t id_len = parsed ? s.id_len : (size_t)snprintf(standin, sizeof(standin),
								      "\x01unparsed-%zu", i);
		if (bytes + id_len > arena_cap) {
			size_t want = (bytes + id_len) * 2 + 4096;
			char *grown = realloc(arena, want);
			if (!grown) {
				ok = false;
				break;
			}
			arena = grown;
			arena_cap = want;
		}
		memcpy(arena + bytes, id, id_len);
		off[i] = bytes;
		ids[i].len = id_len;
		bytes += id_len;
	}
	jbuf_deinit(&line);
	json_free(list);
	if (have_ps)
		proto_parser_deinit(&ps);
	if (ok) {
		for (size_t k = 0; k < n; k++)
			ids[k].id = arena + off[k];
		size_t before = agg_ages_count(r->ages);
		ok = agg_ages_replace(r->ages, ids, n) == 0;
		if (ok) {
			r->ages->remote_limit = r->remote_limit;
			r->ages->remote_known = true;
			if (agg_ages_count(r->ages) != before)
				log_info("event=age_gauge_resync spectatord_ids=%zu before=%zu after=%zu "
					 "limit=%zu",
					 n, before, agg_ages_count(r->ages), agg_ages_limit(r->ages));
		}
	}
	free(ids);
	free(off);
	free(arena);
	return ok;
}

static void finished(struct resync *r)
{
	const char *why = "unreadable body";
	char *body = body_of(r, &why);
	const char *path = r->path;

	drop_connection(r);
	if (body && strcmp(path, "/config") == 0 && read_config(r, body)) {
		release_reply(r);
		begin(r, "/metrics");
		return;
	}
	if (body && strcmp(path, "/metrics") == 0 && read_metrics(r, body)) {
		release_reply(r);
		r->stats->spectatord_resyncs++;
		if (r->last_error[0])
			log_info("event=age_gauge_resync_ok spectatord=%s", r->url.text);
		r->last_error[0] = '\0';
		r->path = NULL;
		return;
	}
	request_failed(r, body ? "unexpected content" : why);
}

/* ------------------------------------------------------------------------
 * One request
 * ------------------------------------------------------------------------ */

/* SpectatorD writes /metrics with age_gauges first and every other meter
 * after: once that list is complete, the rest (up to hundreds of MiB on a
 * busy host) need not be read. Looked for each time the reply has doubled,
 * so that the scans cost no more than the reading. */
static bool has_age_gauges(struct resync *r)
{
	const char *why, *text;
	size_t len;

	if (strcmp(r->path, "/metrics") != 0 || r->len < r->next_scan)
		return false;
	r->next_scan = r->len * 2;
	char *body = body_of(r, &why);
	return body && json_member_text(body, "age_gauges", &text, &len) == 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct resync *r = h->data;

	(void)suggested;
	if (r->cap - r->len < 65536 && r->cap < RESYNC_MAX_REPLY) {
		size_t cap = r->cap ? r->cap * 2 : 1 << 16;
		if (cap > RESYNC_MAX_REPLY)
			cap = RESYNC_MAX_REPLY;
		char *b = realloc(r->reply, cap + 1); /* + 1: body_of()'s NUL */
		if (b) {
			r->reply = b;
			r->cap = cap;
		}
	}
	*buf = uv_buf_init(r->reply + r->len, (unsigned)(r->cap - r->len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct resync *r = s->data;

	(void)buf;
	if (nread == UV_EOF) {
		finished(r);
	} else if (nread < 0) {
		request_failed(r, uv_strerror((int)nread));
	} else {
		r->len += (size_t)nread;
		if (has_age_gauges(r))
			finished(r);
		else if (r->len >= RESYNC_MAX_REPLY)
			request_failed(r, "no complete age_gauges list in the first 64 MiB");
	}
}

static void write_cb(uv_write_t *req, int status)
{
	struct resync *r = req->data;

	/* Cancelled: the connection was dropped, and that was dealt with. */
	if (status != 0 && status != UV_ECANCELED)
		request_failed(r, uv_strerror(status));
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct resync *r = req->data;
	static char request[128];

	if (status == UV_ECANCELED)
		return; /* dropped meanwhile */
	if (status != 0) {
		request_failed(r, uv_strerror(status));
		return;
	}
	int n = snprintf(request, sizeof(request),
			 "GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n", r->path);
	uv_buf_t b = uv_buf_init(request, (unsigned)n);
	r->write_req.data = r;
	if (uv_write(&r->write_req, (uv_stream_t *)r->tcp, &b, 1, write_cb) != 0 ||
	    uv_read_start((uv_stream_t *)r->tcp, alloc_cb, read_cb) != 0)
		request_failed(r, "cannot send the request");
}

static void deadline_cb(uv_timer_t *t)
{
	request_failed(t->data, "no answer within 5 s");
}

static void begin(struct resync *r, const char *path)
{
	r->path = path;
	r->len = 0;
	r->tcp = malloc(sizeof(*r->tcp));
	if (!r->tcp) {
		request_failed(r, "out of memory");
		return;
	}
	uv_tcp_init(r->loop, r->tcp);
	r->tcp->data = r;
	r->connect_req.data = r;
	uv_timer_start(&r->deadline, deadline_cb, RESYNC_DEADLINE_MS, 0);
	int rc = uv_tcp_connect(&r->connect_req, r->tcp, &r->url.addr.sa, connect_cb);
	if (rc != 0)
		request_failed(r, uv_strerror(rc));
}

static void period_cb(uv_timer_t *t)
{
	struct resync *r = t->data;

	if (r->path || !r->url.text[0])
		return; /* one at a time; or switched off by a reload */
	agg_ages_mark(r->ages);
	begin(r, "/config");
}

void resync_now(struct resync *r)
{
	if (!r->path && r->url.text[0])
		uv_timer_start(&r->period, period_cb, 0, r->interval_ms);
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

int resync_open(struct resync *r, uv_loop_t *loop, const struct url *url, uint64_t interval_ms,
		 struct agg_ages *ages, struct stats *stats)
{
	int rc;

	memset(r, 0, sizeof(*r));
	r->loop = loop;
	r->url = *url;
	r->interval_ms = interval_ms;
	r->ages = ages;
	r->stats = stats;
	if ((rc = uv_timer_init(loop, &r->period)) != 0)
		return rc;
	r->period.data = r;
	if ((rc = uv_timer_init(loop, &r->deadline)) != 0) {
		closes_add(&r->closes, 1);
		uv_close((uv_handle_t *)&r->period, timer_closed_cb);
		return rc;
	}
	r->deadline.data = r;
	if (url->text[0])
		uv_timer_start(&r->period, period_cb, 0, interval_ms);
	return 0;
}

void resync_reconfigure(struct resync *r, const struct url *url, uint64_t interval_ms)
{
	bool changed = strcmp(url->text, r->url.text) != 0 || interval_ms != r->interval_ms;

	if (!changed)
		return;
	if (r->path) {
		drop_connection(r);
		release_reply(r);
		r->path = NULL;
	}
	r->url = *url;
	r->interval_ms = interval_ms;
	r->last_error[0] = '\0';
	if (!url->text[0]) {
		uv_timer_stop(&r->period);
		r->ages->remote_limit = 0;
		r->ages->remote_known = false;
		return;
	}
	uv_timer_start(&r->period, period_cb, 0, interval_ms);
}

static void timer_closed_cb(uv_handle_t *h)
{
	one_closed(h->data);
}

void resync_close(struct resync *r, void (*cb)(struct resync *r))
{
	r->closed_cb = cb;
	drop_connection(r);
	release_reply(r);
	closes_add(&r->closes, 2);
	uv_close((uv_handle_t *)&r->period, timer_closed_cb);
	uv_close((uv_handle_t *)&r->deadline, timer_closed_cb);
}
