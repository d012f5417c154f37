/*
 * testbed_heap.c: the min-heap of user timers (when each thinking user
 * sends its next request).
 *
 * Capacity is fixed at creation (one entry per possible user, since a user
 * is thinking at most once), so a push never allocates.  Entries compare by
 * time, then by insertion sequence: two timers at the same instant always
 * pop in the same order, which the campaign's determinism relies on.
 */
#include <stdlib.h>

#include "common/ndt.h"
#include "testbed/testbed_internal.h"

int testbed_heap_init(testbed_heap *h, int cap)
{
    h->items = calloc((size_t)cap, sizeof(*h->items));
    h->len = 0;
    h->cap = cap;
    h->seq = 0;
    return h->items ? NDT_OK : NDT_ERROR;
}

void testbed_heap_free(testbed_heap *h)
{
    free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

static int testbed_timer_less(const testbed_timer *a, const testbed_timer *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

int testbed_heap_push(testbed_heap *h, double t, int user)
{
    if (h->len == h->cap)
        return NDT_ERROR;
    int i = h->len++;
    testbed_timer item = { t, h->seq++, user };
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!testbed_timer_less(&item, &h->items[parent]))
            break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = item;
    return NDT_OK;
}

const testbed_timer *testbed_heap_peek(const testbed_heap *h)
{
    return h->len ? &h->items[0] : NULL;
}

void testbed_heap_pop(testbed_heap *h)
{
    if (!h->len)
        return;
    testbed_timer last = h->items[--h->len];
    int i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && testbed_timer_less(&h->items[child + 1], &h->items[child]))
            child++;
        if (!testbed_timer_less(&h->items[child], &last))
            break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (h->len)
        h->items[i] = last;
}
