/* log.c - see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LVL_INFO;

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "<%d>", (int)level);
	va_list ap;

	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line, so that lines from a crash handler or another
	 * writer never interleave mid-line. A failed write has nowhere to go. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed)
{
	if (now_ms - rl->start_ms >= rl->interval_ms) {
		rl->start_ms = now_ms;
		rl->used = 0;
	}
	if (rl->used >= rl->burst) {
		rl->suppressed++;
		return false;
	}
	rl->used++;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}
