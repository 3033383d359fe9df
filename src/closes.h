/* closes.h - the close callbacks a module waits for before its memory may
 * go: each module that owns several libuv handles counts them here, and
 * calls its own closed callback when the last one has fired. */
#ifndef RELAY_CLOSES_H
#define RELAY_CLOSES_H

#include <stdbool.h>

struct closes {
	int pending;
};

/* One more uv_close() under way. */
static inline void closes_add(struct closes *c, int n)
{
	c->pending += n;
}

/* A close callback fired. Returns true for the last one. */
static inline bool closes_done(struct closes *c)
{
	return --c->pending == 0;
}

#endif
