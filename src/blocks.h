/* blocks.h - blocks of 8-byte words in power-of-two sizes, carved from one
 * arena that is emptied all at once. Pure.
 *
 * A window's timer and distribution series keep a number of bucket counts
 * and samples that grows as lines arrive. Each keeps one block per kind;
 * outgrowing a block moves it to one twice the size and frees the old one
 * for the next series that needs that size, so a steady window allocates
 * nothing from the system, and blocks_clear() at the window's end frees
 * every block at once. Blocks are named by offset, not pointer: the arena
 * moves when it grows. */
#ifndef RELAY_BLOCKS_H
#define RELAY_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#define BLOCKS_NONE UINT32_MAX
/* Classes 0 .. BLOCKS_CLASSES - 1 hold 4, 8, ... 512 words. */
#define BLOCKS_CLASSES 8

struct blocks {
	uint64_t *words;
	size_t len, cap;      /* words carved from the arena, and allocated */
	size_t limit;         /* most words the arena may grow to */
	size_t in_use;        /* words in blocks handed out and not freed */
	uint32_t free[BLOCKS_CLASSES]; /* free lists, linked through each
					  block's first word; BLOCKS_NONE ends */
};

static inline size_t blocks_size(unsigned cls)
{
	return (size_t)4 << cls;
}

/* limit_bytes bounds the arena. Allocates nothing yet. */
void blocks_init(struct blocks *b, size_t limit_bytes);
void blocks_deinit(struct blocks *b);
void blocks_set_limit(struct blocks *b, size_t limit_bytes);

/* A block of class cls (< BLOCKS_CLASSES): its offset, or BLOCKS_NONE past
 * the limit or out of memory. Pointers from blocks_at() are void after it. */
uint32_t blocks_alloc(struct blocks *b, unsigned cls);

/* Gives a block back for reuse. BLOCKS_NONE is a no-op. */
void blocks_free(struct blocks *b, uint32_t off, unsigned cls);

static inline uint64_t *blocks_at(const struct blocks *b, uint32_t off)
{
	return b->words + off;
}

/* Frees every block. The arena shrinks when it was far larger than what
 * was carved from it since the last clear, so memory follows the working
 * set. */
void blocks_clear(struct blocks *b);

/* Bytes held from the allocator. */
static inline size_t blocks_memory(const struct blocks *b)
{
	return b->cap * sizeof(uint64_t);
}

#endif
