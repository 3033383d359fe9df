/* blocks.c - see blocks.h. */
#include "blocks.h"

#include <stdlib.h>

#define MIN_WORDS 512u
/* Offsets are 32-bit word indexes. */
#define MAX_WORDS ((size_t)UINT32_MAX - 1)

static void reset_free(struct blocks *b)
{
	for (unsigned c = 0; c < BLOCKS_CLASSES; c++)
		b->free[c] = BLOCKS_NONE;
}

void blocks_init(struct blocks *b, size_t limit_bytes)
{
	b->words = NULL;
	b->len = b->cap = b->in_use = 0;
	blocks_set_limit(b, limit_bytes);
	reset_free(b);
}

void blocks_set_limit(struct blocks *b, size_t limit_bytes)
{
	b->limit = limit_bytes / sizeof(uint64_t) < MAX_WORDS ? limit_bytes / sizeof(uint64_t)
							       : MAX_WORDS;
}

void blocks_deinit(struct blocks *b)
{
	free(b->words);
	blocks_init(b, b->limit * sizeof(uint64_t));
}

uint32_t blocks_alloc(struct blocks *b, unsigned cls)
{
	size_t n = blocks_size(cls);
	uint32_t off = b->free[cls];

	if (off != BLOCKS_NONE) {
		b->free[cls] = (uint32_t)b->words[off];
		b->in_use += n;
		return off;
	}
	if (b->len + n > b->limit)
		return BLOCKS_NONE;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : MIN_WORDS;
		while (cap < b->len + n)
			cap *= 2;
		if (cap > b->limit)
			cap = b->limit;
		uint64_t *w = realloc(b->words, cap * sizeof(*w));
		if (!w)
			return BLOCKS_NONE;
		b->words = w;
		b->cap = cap;
	}
	off = (uint32_t)b->len;
	b->len += n;
	b->in_use += n;
	return off;
}

void blocks_free(struct blocks *b, uint32_t off, unsigned cls)
{
	if (off == BLOCKS_NONE)
		return;
	b->words[off] = b->free[cls];
	b->free[cls] = off;
	b->in_use -= blocks_size(cls);
}

void blocks_clear(struct blocks *b)
{
	/* Freed blocks go to the free lists, never back to the arena: len is
	 * the most this window needed. Shrink only far above that, so that a
	 * steady working set never reallocates. A failed shrink keeps the old
	 * arena. */
	size_t want = b->len > MIN_WORDS ? b->len : MIN_WORDS;

	if (b->cap > want * 4) {
		uint64_t *w = realloc(b->words, want * sizeof(*w));
		if (w) {
			b->words = w;
			b->cap = want;
		}
	}
	b->len = b->in_use = 0;
	reset_free(b);
}
