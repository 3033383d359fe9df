/* fuzz_check.h - one fuzz input through parse, merge and encode, with every
 * invariant checked. The libFuzzer target (fuzz_core.c) and the replay driver
 * (fuzz_replay.c) both call it, so a kept crash input fails `make test` too.
 *
 * An input is a small configuration, then records:
 *
 *     input   = header *( record SEP ) [ record ]
 *     header  = 5 bytes: max_datagram (2), max_series, age_gauge_limit, max_key_bytes
 *     record  = FLUSH [ take [ fail ] ]
 *                                  ; close the window; the upstream then takes
 *                                  ; `take` datagrams of it (absent or 0xff:
 *                                  ; all), and with `fail` present and not 0,
 *                                  ; fails to send the next one, which the
 *                                  ; window takes back and must give again
 *             / TRUNC datagram     ; a datagram the kernel cut (MSG_TRUNC)
 *             / LIMITS *3OCTET     ; a reload: max_series, age_gauge_limit and
 *                                  ; max_key_bytes as in the header (absent: kept)
 *             / FORGET [ id ]      ; drop one id from the age-gauge set, or all
 *             / datagram           ; any other bytes, at most 65535 of them
 *
 * The age_gauge_limit byte also sets merge_timers: of its bits 0x70 (which
 * the limit does not use), 0x10 alone turns it off, anything else leaves it
 * on, so that inputs older than this rule keep the default. A reload that
 * carries the byte applies it to the lines that follow, as the daemon does.
 *
 * A reload keeps max_datagram: lines already accepted were checked against
 * it, and window.c drops those a smaller one cannot carry.
 *
 * Each datagram goes through proto_lines_* and proto_parse_line, and each
 * accepted sample the way window_record() takes it: too-long when
 * encode_fits() says so; X, and t T d D with merge_timers off or an id too
 * long for their statistics (encode_dist_fits()), packed as they arrive;
 * everything else recorded into the open window's table, and forwarded or
 * split as agg_outcome says. A flush lets the upstream take more of the last
 * window if it had not taken all of it, keeps the open window open if it
 * still has not, and otherwise swaps and encodes. The input ends with
 * flushes that deliver everything.
 *
 * The checks: nothing crashes (ASan, UBSan); every datagram holds whole
 * '\n'-terminated lines, at most max_datagram bytes of them and the last
 * '\n', and does not start with '\n'; every accepted sample matches a
 * naive reference (canonical id, strtod/strtoull/strtoll values); too-long
 * refuses only lines that could not be sent; every pass-through line
 * re-parses to exactly the sample it came from; every table matches a model
 * of docs/protocol.md 12.2 and 12.9 written without aggregate.c, forwards
 * included; and each window's datagrams carry exactly the lines the model
 * says it owes, in order, as canonical text that re-parses to the owed
 * sample, packed greedily with each series whole in one datagram when one
 * can hold it. */
#ifndef RELAY_FUZZ_CHECK_H
#define RELAY_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_HEADER 5
#define FUZZ_SEP 0x1e   /* ASCII RS: between records */
#define FUZZ_FLUSH 0x1f /* ASCII US: first byte of a flush record */
#define FUZZ_TRUNC 0x1d /* ASCII GS: first byte of a truncated datagram */
#define FUZZ_LIMITS 0x1c /* ASCII FS: first byte of a reload of the limits */
#define FUZZ_FORGET 0x1b /* ASCII ESC: first byte of an age-gauge removal */

/* Headers for seeds. Roomy: 65507-byte datagrams and no limit a small input
 * reaches. Tight: 512-byte datagrams, 9 series, 2 age gauges, 272 key bytes.
 * Both keep merge_timers on. */
extern const uint8_t fuzz_header_roomy[FUZZ_HEADER];
extern const uint8_t fuzz_header_tight[FUZZ_HEADER];

/* Runs one input (borrowed for the call). Returns 0. On a broken invariant
 * it prints what broke, the line at hand and the label to stderr, and aborts. */
int fuzz_check(const uint8_t *data, size_t size);

/* Names the input in failure messages, e.g. a file name. Borrowed until the
 * next call; NULL clears it. */
void fuzz_check_label(const char *label);

/* Frees the parsers and buffers fuzz_check() keeps between inputs. */
void fuzz_check_cleanup(void);

#endif
