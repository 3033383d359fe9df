/* protocol.h - SpectatorD datagrams to validated samples. Pure: no I/O, no
 * globals, no allocation after proto_parser_init().
 *
 * A datagram holds lines separated by '\n'. Each line is
 *
 *     line   = type [ "," extra ] ":" name *( "," key "=" value ) ":" number
 *     type   = "A" / "c" / "C" / "d" / "D" / "g" / "m" / "t" / "T" / "U" / "X"
 *     extra  = *ws [ "+" / "-" ] 1*DIGIT        ; g: TTL seconds, X: epoch ms
 *     number = *ws decimal-or-inf-or-nan *ws   ; U: *ws ["+"] 1*DIGIT ["." *DIGIT] *ws
 *
 * and is accepted only if spectatord would accept it and would do with it what
 * the sender evidently meant; the order of checks and the reason for every
 * refusal follow docs/protocol.md section 12.7 and tests/data/protocol-vectors.tsv.
 */
#ifndef RELAY_PROTOCOL_H
#define RELAY_PROTOCOL_H

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metric.h"

/* SpectatorD reads a datagram into 65536 bytes: a longer unix datagram is
 * cut there, and 65535 bytes is the most it takes safely (protocol.md,
 * section 1). UDP payloads never exceed 65507. */
#define PROTO_SAFE_DATAGRAM 65535u
#define PROTO_SPECTATORD_READ 65536u

/* No line SpectatorD takes is longer. Longer lines are refused as too-long;
 * whether a shorter one fits the relay's own datagrams is the window's to
 * say (encode_fits()). */
#define PROTO_MAX_LINE PROTO_SAFE_DATAGRAM

struct proto_tag {
	uint32_t key_off, key_len; /* into the line, then into the scratch copy */
	uint32_t val_off, val_len;
	uint32_t order;            /* position on the line: later wins on duplicates */
};

/* Scratch space for one parser; owned by whoever owns the loop that parses. */
struct proto_parser {
	struct proto_tag *tags;    /* PROTO_MAX_LINE / 4 + 1 entries */
	char *scratch;             /* replaced tag bytes, PROTO_MAX_LINE */
	char *ids[2];              /* canonical ids that had to be rebuilt, used in
				      turn so that one sample outlives the next parse */
	unsigned next_id;
	char *num;                 /* NUL-terminated copy of a number for strtod */
	uint64_t *bits;            /* one bit per byte of a line: bytes to look at */
	locale_t c_locale;         /* strtod_l: values never depend on the locale */
};

/* Allocates the scratch buffers. Returns 0 or -ENOMEM. */
int proto_parser_init(struct proto_parser *ps);
void proto_parser_deinit(struct proto_parser *ps);

/* Walks the lines of one datagram. Framing is the relay's, not spectatord's:
 * the datagram ends at its first NUL byte, lines end at '\n', empty lines are
 * skipped wherever they are. */
struct proto_lines {
	const char *p, *end;
	bool nul_cut;              /* the datagram had a NUL; bytes after it are ignored */
	bool truncated;            /* the datagram was cut: an unterminated last line is partial */
};

/* buf is borrowed for as long as the walk and the samples it yields live.
 * truncated: the datagram went on past buf. One longer than SpectatorD's
 * read (PROTO_SPECTATORD_READ) is cut there as well; a reader passes one
 * byte more than that read, so that a line whose '\n' is that byte is whole
 * and a line started there is partial. */
void proto_lines_init(struct proto_lines *it, const char *buf, size_t len, bool truncated);

/* Yields the next non-empty line, without its '\n'. Returns false at the end.
 * *partial is set for the unterminated last line of a truncated datagram,
 * which the caller must refuse as REJECT_TRUNCATED rather than parse. */
bool proto_lines_next(struct proto_lines *it, const char **line, size_t *len, bool *partial);

/* Parses one line (no '\n'; any bytes). Returns REJECT_NONE and fills *out, or
 * the reason the line is refused (then *out is unspecified). out->id borrows
 * from line or from ps; ps's copy lasts until the second call after this one,
 * so that a caller may parse one line ahead. */
enum reject_reason proto_parse_line(struct proto_parser *ps, const char *line, size_t len,
				    struct sample *out);

#endif
