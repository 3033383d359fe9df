/* encode.c - the line writer. */
#include "encode.h"

#include <string.h>

#include "numfmt.h"

static size_t value_text(char *dst, enum meter_type type, double d, uint64_t u)
{
	return type == METER_MONO_U64 ? numfmt_u64(dst, u) : numfmt_double(dst, d);
}

size_t encode_sample_len(const struct sample *s)
{
	char num[NUMFMT_MAX];
	size_t n = 1 + 1 + s->id_len + 1 +
		   (meter_is_passthrough(s->type) ? s->num_len
						  : value_text(num, s->type, s->v.d, s->v.u));

	if (s->has_extra)
		n += 1 + numfmt_i64(num, s->extra);
	return n;
}

/* Writes one line if it fits. The value is the given text, or formatted
 * once into a stack buffer, before anything is committed. */
static bool put_line(struct packer *pk, char sym, bool has_extra, int64_t extra, const char *id,
		     size_t id_len, const char *text, size_t nlen)
{
	char ext[NUMFMT_MAX];
	size_t elen = has_extra ? numfmt_i64(ext, extra) : 0;
	size_t total = 1 + (has_extra ? 1 + elen : 0) + 1 + id_len + 1 + nlen + 1;

	if (pk->len + total > pk->cap)
		return false;
	char *w = pk->buf + pk->len;
	*w++ = sym;
	if (has_extra) {
		*w++ = ',';
		memcpy(w, ext, elen);
		w += elen;
	}
	*w++ = ':';
	memcpy(w, id, id_len);
	w += id_len;
	*w++ = ':';
	memcpy(w, text, nlen);
	w += nlen;
	*w++ = '\n';
	pk->len += total;
	pk->lines++;
	return true;
}

bool packer_add_sample(struct packer *pk, const struct sample *s)
{
	char num[NUMFMT_MAX];
	const char *text = s->num;
	size_t nlen = s->num_len;

	/* Merged types get their new value formatted; timers, distributions
	 * and X keep the text they came with. */
	if (!meter_is_passthrough(s->type)) {
		nlen = value_text(num, s->type, s->v.d, s->v.u);
		text = num;
	}
	return put_line(pk, meter_symbol[s->type], s->has_extra, s->extra, s->id, s->id_len, text,
			nlen);
}

size_t packer_add_table(struct packer *pk, const struct agg_table *t, size_t *cursor)
{
	size_t added = 0;
	size_t pos = *cursor;
	struct keytab_entry *e;

	while ((e = keytab_next(&t->kt, &pos))) {
		if (agg_entry_emits(e)) {
			const struct agg_value *v = keytab_val(e);
			enum meter_type type = (enum meter_type)meter_from_symbol(e->kind);
			char num[NUMFMT_MAX];
			size_t nlen = value_text(num, type, v->v.d, v->v.u);
			if (!put_line(pk, (char)e->kind, type == METER_GAUGE && v->ttl != 0, v->ttl,
				      keytab_key(&t->kt, e), e->key_len, num, nlen))
				break;
			added++;
		}
		*cursor = pos;
	}
	return added;
}
