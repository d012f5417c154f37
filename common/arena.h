/*
 * arena.h: bump allocator for memory whose lifetime is one unit of work.
 *
 * The scrape hot path allocates everything for one scrape (unescaped label
 * values, label arrays, encoded messages) from an arena and resets it when
 * the scrape is done, instead of freeing piece by piece.  Blocks are kept
 * across resets, so a steady-state scrape allocates nothing from malloc.
 * An arena has a hard cap: an allocation past it fails (returns NULL) and
 * the caller counts the drop, so a hostile target cannot grow memory
 * without bound.
 */
#ifndef NDT_ARENA_H
#define NDT_ARENA_H

#include <stddef.h>

typedef struct ndt_arena_block ndt_arena_block;

typedef struct ndt_arena {
    ndt_arena_block *head;    /* block currently being filled */
    ndt_arena_block *first;   /* chain of all blocks, reused after reset */
    size_t block_size;        /* default size of a new block */
    size_t cap;               /* total bytes the arena may hold, 0 = none */
    size_t allocated;         /* bytes of blocks obtained from malloc */
} ndt_arena;

void ndt_arena_init(ndt_arena *arena, size_t block_size, size_t cap);
void *ndt_arena_alloc(ndt_arena *arena, size_t size);
char *ndt_arena_strndup(ndt_arena *arena, const char *s, size_t len);
void ndt_arena_reset(ndt_arena *arena);
void ndt_arena_free(ndt_arena *arena);

#endif
