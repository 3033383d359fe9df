/* log.h - level-gated logging to stderr, one line per event.
 *
 * Lines look like "<6>event=listen url=udp://127.0.0.1:1235 rcvbuf=16777216":
 * the <N> prefix is the syslog priority, which journald reads from stderr, and
 * the rest are stable key=value fields. The level is checked before anything
 * is formatted. On the hot path, count instead of logging, or use a
 * log_ratelimit so that a flood of bad input cannot flood the journal. */
#ifndef RELAY_LOG_H
#define RELAY_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

extern enum log_level log_threshold;

void log_set_level(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(level, ...)                                   \
	do {                                                 \
		if ((level) <= log_threshold)                \
			log_write((level), __VA_ARGS__);     \
	} while (0)
#define log_err(...) log_at(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LVL_DEBUG, __VA_ARGS__)

/* At most `burst` lines per `interval_ms`; the next line that passes says how
 * many were suppressed. Zero-initialise, then set burst and interval_ms. */
struct log_ratelimit {
	uint64_t interval_ms;
	unsigned burst;
	uint64_t start_ms;
	unsigned used;
	uint64_t suppressed;
};

/* Returns true if a line may be written now; *suppressed receives the count
 * of lines dropped since the last one that was written. */
bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed);

#endif
