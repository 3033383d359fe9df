/* admit.c - see admit.h. */
#include "admit.h"

#include "encode.h"

bool admit_mergeable(const struct admit_policy *p, const struct sample *s)
{
	if (s->type == METER_SAMPLED)
		return false;
	if (!agg_is_dist(s->type))
		return true;
	return p->merge_timers && encode_dist_fits(s->id_len, p->max_datagram);
}

enum reject_reason admit_line(struct agg_table *t, struct agg_ages *ages,
			      const struct admit_policy *p, const struct sample *s, double now,
			      struct admit *out)
{
	struct agg_outcome oc = { .forward = !admit_mergeable(p, s) };

	out->nforward = 0;
	out->merged = false;
	if (!encode_fits(s, p->max_datagram))
		return REJECT_TOO_LONG;
	if (!oc.forward) {
		enum reject_reason r = agg_table_record(t, ages, s, now, &oc);
		if (r != REJECT_NONE)
			return r;
	}
	if (oc.split) {
		/* The series as it stood, as a line of its own. */
		struct sample *line = &out->forward[out->nforward++];
		*line = *s;
		line->has_extra = oc.old.ttl != 0;
		line->extra = oc.old.ttl;
		line->v.d = oc.old.v.d;
	}
	if (oc.forward)
		out->forward[out->nforward++] = *s;
	out->merged = !oc.forward;
	return REJECT_NONE;
}

void admit_count(struct stats *st, const struct sample *s, const struct admit *a)
{
	if (agg_is_dist(s->type))
		(*(a->merged ? &st->timers_lines_in : &st->timers_unmerged))++;
	else if (a->merged) /* not a counter whose sum could not be sent */
		st->merged_lines_in++;
}
