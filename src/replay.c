/* replay.c - see replay.h. */
#include "replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "aggregate.h"
#include "clock.h"
#include "encode.h"
#include "errmsg.h"
#include "protocol.h"

struct replay {
	struct proto_parser ps;
	struct agg_table table;
	struct agg_ages ages;
	struct admit_policy policy;
	char *buf;                 /* one datagram, max_datagram + 1 bytes */
	struct packer pk;
	FILE *out;
	struct replay_result *res;
};

static int flush_packer(struct replay *r, char *err, size_t errlen)
{
	if (r->pk.len && fwrite(r->pk.buf, 1, r->pk.len, r->out) != r->pk.len)
		return errmsg(err, errlen, -EIO, "cannot write the forwarded lines");
	r->res->forwarded += r->pk.lines;
	packer_reset(&r->pk);
	return 0;
}

/* A line forwarded as it came: it leaves before the window closes, as in
 * the relay, so before the table's lines. */
static int forward(struct replay *r, const struct sample *s, char *err, size_t errlen)
{
	if (packer_add_sample(&r->pk, s))
		return 0;
	int rc = flush_packer(r, err, errlen);
	if (rc == 0 && !packer_add_sample(&r->pk, s))
		return errmsg(err, errlen, -EINVAL, "a line longer than max_datagram was admitted");
	return rc;
}

static int one_line(struct replay *r, const char *line, size_t len, char *err, size_t errlen)
{
	struct sample s;
	struct admit a;
	enum reject_reason why = proto_parse_line(&r->ps, line, len, &s);

	if (why == REJECT_NONE) {
		double now = admit_needs_now(&s) ? clock_realtime() : 0;
		why = admit_line(&r->table, &r->ages, &r->policy, &s, now, &a);
	}
	if (why != REJECT_NONE) {
		r->res->rejected[why]++;
		return 0;
	}
	for (size_t i = 0; i < a.nforward; i++) {
		int rc = forward(r, &a.forward[i], err, errlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The window's close: its lines, datagram by datagram. */
static int close_window(struct replay *r, char *err, size_t errlen)
{
	struct agg_cursor c;
	size_t dist;
	int rc = flush_packer(r, err, errlen);

	agg_cursor_start(&c);
	while (rc == 0 && !agg_cursor_done(&r->table, &c)) {
		if (packer_add_table(&r->pk, &r->table, &c, &dist) == 0)
			agg_cursor_skip_line(&r->table, &c); /* cannot happen: one size */
		rc = flush_packer(r, err, errlen);
	}
	return rc;
}

int replay_run(FILE *in, FILE *out, const struct config *cfg, struct replay_result *res,
	       char *err, size_t errlen)
{
	struct replay r = { .out = out, .res = res };
	struct agg_limits lim = { cfg->max_series, cfg->max_key_bytes, cfg->max_series_per_name,
				  cfg->max_datagram };
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	r.policy = (struct admit_policy){ cfg->max_datagram, cfg->merge_timers };
	r.buf = malloc(cfg->max_datagram + 1);
	if (!r.buf || proto_parser_init(&r.ps) != 0 || agg_table_init(&r.table, &lim) != 0 ||
	    agg_ages_init(&r.ages, cfg->age_gauge_limit) != 0) {
		rc = errmsg(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	packer_init(&r.pk, r.buf, cfg->max_datagram);
	for (;;) {
		ssize_t n = getline(&line, &cap, in);
		if (n < 0)
			break;
		size_t len = (size_t)n;
		if (len && line[len - 1] == '\n')
			len--;
		if (len == 0)
			continue; /* empty lines are skipped, as in a datagram */
		res->lines++;
		if ((rc = one_line(&r, line, len, err, errlen)) != 0)
			goto out;
	}
	if (ferror(in)) {
		rc = errmsg(err, errlen, -EIO, "cannot read the lines to replay");
		goto out;
	}
	rc = close_window(&r, err, errlen);
out:
	free(line);
	agg_ages_deinit(&r.ages);
	agg_table_deinit(&r.table);
	proto_parser_deinit(&r.ps);
	free(r.buf);
	return rc;
}
