/* Internal: small growable arrays and string helpers shared by core files. */
#ifndef BP_STRBUF_H
#define BP_STRBUF_H

#include <stddef.h>
#include <stdint.h>

/* Grow *ptr (element size `elem`) so that it holds at least `need`
 * elements; *cap is updated. Returns 0 on success, -1 on overflow/ENOMEM. */
int bp_grow(void **ptr, size_t *cap, size_t need, size_t elem);

/* strdup that returns NULL for NULL. */
char *bp_strdup(const char *s);
/* Formatted strdup. */
char *bp_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Levenshtein distance (bytes), capped at 100. */
int bp_edit_distance(const char *a, const char *b);

/* Directory part of a path ("." when none); caller frees. */
char *bp_dirname(const char *path);
/* Join dir and a relative path (absolute paths are returned as copies); caller frees. */
char *bp_path_join(const char *dir, const char *path);
/* File name without directory and extension; caller frees. */
char *bp_path_stem(const char *path);

/* Append printf-style text to a growable string. */
typedef struct bp_sbuf {
    char *s;
    size_t len, cap;
    int failed;
} bp_sbuf;
void bp_sbuf_printf(bp_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bp_sbuf_free(bp_sbuf *b);

#include "batpipe/util.h" /* bp_mkdir_p, bp_write_file_atomic */
/* Seconds on a monotonic clock. */
double bp_now(void);


#endif
