/*
 * arena.c: bump allocator, see arena.h for why.
 *
 * Blocks form a singly linked list.  Allocation bumps a cursor inside the
 * current block; when it does not fit, the next block of the chain is used
 * (after a reset the chain is walked again from the first block), and only
 * when the chain is exhausted is a new block malloc'ed.  Every pointer
 * returned is aligned for any scalar type.
 */
#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ndt_arena_block {
    ndt_arena_block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

#define ARENA_ALIGN (alignof(max_align_t))

void ndt_arena_init(ndt_arena *arena, size_t block_size, size_t cap)
{
    arena->head = NULL;
    arena->first = NULL;
    arena->block_size = block_size ? block_size : 64 * 1024;
    arena->cap = cap;
    arena->allocated = 0;
}

static size_t align_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
}

static ndt_arena_block *block_new(ndt_arena *arena, size_t min_size)
{
    size_t size = arena->block_size;
    if (size < min_size)
        size = min_size;
    if (arena->cap && arena->allocated + size > arena->cap)
        return NULL;
    ndt_arena_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    arena->allocated += size;
    return b;
}

void *ndt_arena_alloc(ndt_arena *arena, size_t size)
{
    size_t need = align_up(size ? size : 1);
    ndt_arena_block *b = arena->head;

    while (b && b->size - b->used < need) {
        /* Reuse a later block kept from before the last reset. */
        if (b->next) {
            b = b->next;
            b->used = 0;
            arena->head = b;
            continue;
        }
        ndt_arena_block *nb = block_new(arena, need);
        if (!nb)
            return NULL;
        b->next = nb;
        b = nb;
        arena->head = b;
    }
    if (!b) {
        b = block_new(arena, need);
        if (!b)
            return NULL;
        arena->first = arena->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

char *ndt_arena_strndup(ndt_arena *arena, const char *s, size_t len)
{
    char *p = ndt_arena_alloc(arena, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void ndt_arena_reset(ndt_arena *arena)
{
    arena->head = arena->first;
    if (arena->first)
        arena->first->used = 0;
}

void ndt_arena_free(ndt_arena *arena)
{
    ndt_arena_block *b = arena->first;
    while (b) {
        ndt_arena_block *next = b->next;
        free(b);
        b = next;
    }
    arena->head = arena->first = NULL;
    arena->allocated = 0;
}
