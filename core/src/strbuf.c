/* Small helpers: growable arrays, strings, paths, atomic file writes. */
#include "strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int bp_grow(void **ptr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) return -1;
        ncap *= 2;
    }
    if (elem && ncap > SIZE_MAX / elem) return -1;
    void *p = realloc(*ptr, ncap * elem);
    if (!p) return -1;
    memset((char *)p + *cap * elem, 0, (ncap - *cap) * elem);
    *ptr = p;
    *cap = ncap;
    return 0;
}

char *bp_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *bp_strdupf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0) out = NULL;
    va_end(ap);
    return out;
}

int bp_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 100;
    int row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (a[i - 1] != b[j - 1]);
            int del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}

char *bp_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return bp_strdup(".");
    if (slash == path) return bp_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

char *bp_path_join(const char *dir, const char *path) {
    if (path[0] == '/' || !dir || !dir[0] || strcmp(dir, ".") == 0) return bp_strdup(path);
    return bp_strdupf("%s/%s", dir, path);
}

char *bp_path_stem(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = (dot && dot != base) ? (size_t)(dot - base) : strlen(base);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, base, n);
    s[n] = '\0';
    return s;
}

void bp_sbuf_printf(bp_sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int w = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)w < room) {
            b->len += (size_t)w;
            return;
        }
        if (bp_grow((void **)&b->s, &b->cap, b->len + (size_t)w + 1, 1) != 0) {
            b->failed = 1;
            return;
        }
    }
}

void bp_sbuf_free(bp_sbuf *b) {
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

bp_status bp_write_file_atomic(const char *path, const void *data, size_t size, bp_error *err) {
    char *dir = bp_dirname(path);
    char *tmpl = dir ? bp_strdupf("%s/.%s.XXXXXX", dir, strrchr(path, '/') ? strrchr(path, '/') + 1 : path) : NULL;
    free(dir);
    if (!tmpl) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        int e = errno;
        free(tmpl);
        return bp_error_set(err, BP_ERR_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
    const char *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            unlink(tmpl);
            free(tmpl);
            return bp_error_set(err, BP_ERR_IO, "%s: write failed: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || fchmod(fd, 0644) != 0) {
        int e = errno;
        close(fd);
        unlink(tmpl);
        free(tmpl);
        return bp_error_set(err, BP_ERR_IO, "%s: cannot flush: %s", path, strerror(e));
    }
    if (close(fd) != 0 || rename(tmpl, path) != 0) {
        int e = errno;
        unlink(tmpl);
        free(tmpl);
        return bp_error_set(err, BP_ERR_IO, "%s: cannot move the finished file into place: %s", path, strerror(e));
    }
    free(tmpl);
    return BP_OK;
}

bp_status bp_mkdir_p(const char *path, bp_error *err) {
    char *p = bp_strdup(path);
    if (!p) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                bp_error_set(err, BP_ERR_IO, "%s: cannot create directory %s: %s", path, p, strerror(e));
                free(p);
                return BP_ERR_IO;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return bp_error_set(err, BP_ERR_IO, "%s: exists and is not a directory", path);
    return BP_OK;
}

double bp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
