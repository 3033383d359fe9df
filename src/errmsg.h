/* errmsg.h - the one way a function that can fail for a reason worth
 * telling tells it: it writes one line into a buffer its caller owns and
 * returns a negative errno, so that the caller, who knows the context,
 * logs it once (or prints it, for --check-config). Pure. */
#ifndef RELAY_ERRMSG_H
#define RELAY_ERRMSG_H

#include <stddef.h>

/* Formats the message into buf (cap bytes, always NUL-terminated) and
 * returns err, which must be a negative errno. */
int errmsg(char *buf, size_t cap, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
