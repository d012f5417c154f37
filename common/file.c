/*
 * file.c: a whole file read into memory, with a bound; see file.h.
 */
#include "file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ndt.h"

/* A first allocation for files that do not say their size (pipes, /proc). */
#define NDT_FILE_FIRST_CHUNK 4096

static int too_large(const char *path, size_t max, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
    return NDT_ERROR;
}

int ndt_file_read(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen)
{
    if (max > SIZE_MAX / 4)
        max = SIZE_MAX / 4; /* so that max + 1 and the doubling below cannot wrap */
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NDT_ERROR;
    }
    size_t cap = NDT_FILE_FIRST_CHUNK;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        if ((unsigned long long)st.st_size > max) {
            fclose(f);
            return too_large(path, max, err, errlen);
        }
        cap = (size_t)st.st_size + 1; /* + 1: room to see a file that grew */
    }
    if (cap > max + 1)
        cap = max + 1;
    char *buf = malloc(cap + 1);
    size_t n = 0;
    int rc = buf ? NDT_OK : NDT_ERROR;
    if (!buf)
        snprintf(err, errlen, "%s: out of memory for %zu bytes", path, cap);
    while (rc == NDT_OK) {
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f)) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            rc = NDT_ERROR;
        } else if (n > max) {
            rc = too_large(path, max, err, errlen);
        } else if (n < cap) {
            break; /* end of file */
        } else {
            size_t grown = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *more = realloc(buf, grown + 1);
            if (!more) {
                snprintf(err, errlen, "%s: out of memory for %zu bytes", path, grown);
                rc = NDT_ERROR;
            } else {
                buf = more;
                cap = grown;
            }
        }
    }
    fclose(f);
    if (rc != NDT_OK) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return NDT_OK;
}
