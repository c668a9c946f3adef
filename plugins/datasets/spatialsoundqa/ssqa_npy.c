/* spatialsoundqa: a small, bounds-checked .npy reader for binaural room
 * responses (format versions 1.0, 2.0 and 3.0; little-endian float32 or
 * float64; shape (2, n) or (n, 2); C or Fortran order), as the official
 * release stores them (mp3d_reverb/binaural/<scene>/<k>.npy). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssqa.h"

#define NPY_MAX_BYTES ((size_t)1 << 31)

/* Find `'key':` in the header dict and return a pointer past the colon. */
static const char *dict_value(const char *h, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 < n; i++) {
        if ((h[i] == '\'' || h[i] == '"') && strncmp(h + i + 1, key, kl) == 0 && h[i + 1 + kl] == h[i]) {
            const char *p = h + i + 2 + kl;
            while (p < h + n && (*p == ' ' || *p == ':')) p++;
            return p < h + n ? p : NULL;
        }
    }
    return NULL;
}

bp_status ssqa_npy_parse_binaural(const void *data, size_t size, const char *label, bp_tensor **out, bp_error *err) {
    *out = NULL;
    const unsigned char *b = data;
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", label);
    unsigned major = b[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) return bp_error_set(err, BP_ERR_FORMAT, "%s: truncated .npy header", label);
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    } else {
        return bp_error_set(err, BP_ERR_FORMAT, "%s: .npy format version %u is not supported", label, major);
    }
    if (hlen > size - off || hlen > 65536)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: .npy header of %zu bytes runs past the file (%zu bytes)", label,
                            hlen, size);
    const char *h = (const char *)b + off;
    const char *descr = dict_value(h, hlen, "descr");
    const char *fortran = dict_value(h, hlen, "fortran_order");
    const char *shape = dict_value(h, hlen, "shape");
    if (!descr || !fortran || !shape)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: .npy header lacks descr, fortran_order or shape", label);
    size_t esize;
    if (strncmp(descr, "'<f4'", 5) == 0 || strncmp(descr, "\"<f4\"", 5) == 0)
        esize = 4;
    else if (strncmp(descr, "'<f8'", 5) == 0 || strncmp(descr, "\"<f8\"", 5) == 0)
        esize = 8;
    else
        return bp_error_set(err, BP_ERR_FORMAT, "%s: dtype %.8s is not little-endian float32 or float64", label, descr);
    int is_fortran = strncmp(fortran, "True", 4) == 0;
    if (!is_fortran && strncmp(fortran, "False", 5) != 0)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: malformed fortran_order", label);
    if (*shape != '(') return bp_error_set(err, BP_ERR_FORMAT, "%s: malformed shape", label);
    int64_t dims[4];
    int nd = 0;
    const char *p = shape + 1, *end = h + hlen;
    while (p < end && *p != ')') {
        while (p < end && (*p == ' ' || *p == ',')) p++;
        if (p < end && *p == ')') break;
        char *e;
        errno = 0;
        long long v = strtoll(p, &e, 10);
        if (e == p || errno || v < 0 || v > ((int64_t)1 << 40) || nd >= 4)
            return bp_error_set(err, BP_ERR_FORMAT, "%s: malformed shape", label);
        dims[nd++] = v;
        p = e;
    }
    if (p >= end) return bp_error_set(err, BP_ERR_FORMAT, "%s: malformed shape", label);
    if (nd != 2 || (dims[0] != 2 && dims[1] != 2))
        return bp_error_set(err, BP_ERR_FORMAT, "%s: expected a binaural response of shape (2, n) or (n, 2)", label);
    int chan_first = dims[0] == 2; /* (2, 2) is read as (channels, samples) */
    int64_t n = chan_first ? dims[1] : dims[0];
    if (n < 1) return bp_error_set(err, BP_ERR_FORMAT, "%s: empty response", label);
    size_t need = (size_t)n * 2 * esize;
    if (need > NPY_MAX_BYTES || need > size - off - hlen)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: truncated: %zu data bytes needed, %zu present", label, need,
                            size - off - hlen);
    const unsigned char *d = b + off + hlen;
    int64_t shp[2] = {2, n};
    bp_status st = bp_tensor_new(NULL, BP_DTYPE_F32, 2, shp, out, err);
    if (st != BP_OK) return st;
    float *o = (*out)->data;
    for (int64_t c = 0; c < 2; c++)
        for (int64_t i = 0; i < n; i++) {
            /* element (c, i) of a (2, n) array, or (i, c) of an (n, 2) one */
            int64_t r = chan_first ? c : i, k = chan_first ? i : c, R = chan_first ? 2 : n, K = chan_first ? n : 2;
            size_t flat = (size_t)(is_fortran ? k * R + r : r * K + k);
            if (esize == 4) {
                float v;
                memcpy(&v, d + flat * 4, 4);
                o[c * n + i] = v;
            } else {
                double v;
                memcpy(&v, d + flat * 8, 8);
                o[c * n + i] = (float)v;
            }
        }
    st = bp_tensor_check_finite(*out, label, err);
    if (st != BP_OK) {
        bp_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

bp_status ssqa_npy_read_binaural(const char *path, bp_tensor **out, bp_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return bp_error_set(err, errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO, "%s: cannot open: %s", path,
                            strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return bp_error_set(err, BP_ERR_IO, "%s: cannot seek", path);
    }
    long len = ftell(f);
    if (len < 0 || (size_t)len > NPY_MAX_BYTES) {
        fclose(f);
        return bp_error_set(err, BP_ERR_FORMAT, "%s: implausible size", path);
    }
    rewind(f);
    void *buf = malloc((size_t)len + 1);
    if (!buf) {
        fclose(f);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    bp_status st = got == (size_t)len ? ssqa_npy_parse_binaural(buf, (size_t)len, path, out, err)
                                      : bp_error_set(err, BP_ERR_IO, "%s: read failed", path);
    free(buf);
    return st;
}
