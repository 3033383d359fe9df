/* ingest.c - see ingest.h. */
#include "ingest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ingest_init(struct ingest *in, struct window *window, struct stats *stats, struct tap *tap)
{
	memset(in, 0, sizeof(*in));
	in->window = window;
	in->stats = stats;
	in->tap = tap;
	return proto_parser_init(&in->ps);
}

void ingest_deinit(struct ingest *in)
{
	proto_parser_deinit(&in->ps);
}

/* One line in flight: parsed, its table slot being fetched, not yet
 * recorded. */
struct pending {
	const char *line;
	size_t len;
	enum reject_reason r;
	struct sample s;
};

static void settle(struct ingest *in, struct pending *p, const struct sender_id *from,
		   size_t *rejected)
{
	enum reject_reason r = p->r;

	if (r == REJECT_NONE)
		r = window_record(in->window, &p->s);
	if (tap_on(in->tap))
		tap_line(in->tap, r == REJECT_NONE ? TAP_IN : TAP_REJECT, r, p->line, p->len);
	if (r != REJECT_NONE) {
		in->stats->rejected[r]++;
		(*rejected)++;
		if (in->on_reject)
			in->on_reject(in->observer, from, p->line, p->len, r);
	}
}

size_t ingest_datagram(struct ingest *in, const char *buf, size_t len, bool truncated,
		       const struct sender_id *from)
{
	struct stats *st = in->stats;
	struct proto_lines it;
	struct pending ahead[2];
	size_t lines = 0, rejected = 0;
	bool partial;

	st->received_datagrams++;
	st->received_bytes += len;
	if (truncated || len > PROTO_SAFE_DATAGRAM)
		st->received_truncated++;
	/* Parse a line ahead: while the next line's table slot loads, the
	 * current one is recorded. Lines are still recorded in order. */
	proto_lines_init(&it, buf, len, truncated);
	for (unsigned cur = 0;; cur ^= 1) {
		struct pending *p = &ahead[cur];
		if (!proto_lines_next(&it, &p->line, &p->len, &partial))
			break;
		lines++;
		if (partial)
			p->r = REJECT_TRUNCATED;
		else if ((p->r = proto_parse_line(&in->ps, p->line, p->len, &p->s)) == REJECT_NONE)
			window_prepare(in->window, &p->s);
		if (lines > 1)
			settle(in, &ahead[cur ^ 1], from, &rejected);
	}
	if (lines > 0)
		settle(in, &ahead[(lines - 1) & 1], from, &rejected);
	if (it.nul_cut)
		st->received_nul_cut++;
	st->received_lines += lines;
	if (in->on_datagram)
		in->on_datagram(in->observer, from, len, lines, rejected);
	return lines;
}

enum reject_reason ingest_line(struct ingest *in, const char *line, size_t len)
{
	struct sample s;
	enum reject_reason r = proto_parse_line(&in->ps, line, len, &s);

	if (r == REJECT_NONE)
		r = window_record(in->window, &s);
	if (r != REJECT_NONE)
		in->stats->rejected[r]++;
	return r;
}

int ingest_canonical_id(struct ingest *in, const char *text, char *buf, size_t cap, size_t *len)
{
	/* An id is what a line holds between its type and its value. */
	char line[1100];
	struct sample s;
	int n = snprintf(line, sizeof(line), "A:%s:1", text);

	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	if (proto_parse_line(&in->ps, line, (size_t)n, &s) != REJECT_NONE || s.id_len > cap)
		return -EINVAL;
	memcpy(buf, s.id, s.id_len);
	*len = s.id_len;
	return 0;
}
