/*
 * file.h: a whole file read into memory, with a bound.
 *
 * Registry entries, model files, file_sd target lists, credential files:
 * each is read whole and parsed from memory, and each has a size no honest
 * file comes near.  One reader holds the rules they share: the bound is
 * checked before anything is allocated when the file says its size (a
 * regular file), the buffer is never larger than the file, a file that
 * grows while it is read still stops at the bound, and the text is
 * NUL-terminated for parsers that want a C string.
 */
#ifndef NDT_FILE_H
#define NDT_FILE_H

#include <stddef.h>

/* *out: malloc'ed, NUL-terminated (*len excludes the NUL); the caller frees
 * it.  NDT_ERROR with "PATH: cannot open: why", "PATH: cannot read: why" or
 * "PATH: larger than MAX bytes" in err, *out untouched. */
int ndt_file_read(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen);

#endif
