/* .npy writer: magic, version 1.0, a Python-dict header padded to 64 bytes, data. */
#include "batpipe/npy.h"

#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static const char *descr(int32_t dtype) {
    switch (dtype) {
    case BP_DTYPE_F32: return "<f4";
    case BP_DTYPE_F64: return "<f8";
    case BP_DTYPE_F16: return "<f2";
    case BP_DTYPE_I8: return "|i1";
    case BP_DTYPE_U8: return "|u1";
    case BP_DTYPE_I16: return "<i2";
    case BP_DTYPE_I32: return "<i4";
    case BP_DTYPE_I64: return "<i8";
    case BP_DTYPE_BOOL: return "|b1";
    default: return NULL;
    }
}

bp_status bp_npy_write(const char *path, const bp_tensor *t, bp_error *err) {
    const char *d = descr(t->dtype);
    if (!d) return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: .npy cannot hold %s tensors", path, bp_dtype_name(t->dtype));
    if (t->backend) return bp_error_set(err, BP_ERR_INVALID, "%s: tensor is not in host memory", path);
    bp_sbuf h = {0};
    bp_sbuf_printf(&h, "{'descr': '%s', 'fortran_order': False, 'shape': (", d);
    for (int32_t i = 0; i < t->ndim; i++) bp_sbuf_printf(&h, "%lld,%s", (long long)t->shape[i], i + 1 < t->ndim ? " " : "");
    bp_sbuf_printf(&h, "), }");
    size_t total = 10 + h.len + 1;
    size_t pad = (64 - total % 64) % 64;
    for (size_t i = 0; i < pad; i++) bp_sbuf_printf(&h, " ");
    bp_sbuf_printf(&h, "\n");
    if (h.failed || h.len > 65535) {
        bp_sbuf_free(&h);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: cannot build the .npy header", path);
    }
    size_t nbytes = bp_tensor_nbytes(t);
    size_t size = 10 + h.len + nbytes;
    unsigned char *buf = malloc(size);
    if (!buf) {
        bp_sbuf_free(&h);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(h.len & 0xff);
    buf[9] = (unsigned char)(h.len >> 8);
    memcpy(buf + 10, h.s, h.len);
    if (nbytes) memcpy(buf + 10 + h.len, t->data, nbytes);
    bp_sbuf_free(&h);
    bp_status st = bp_write_file_atomic(path, buf, size, err);
    free(buf);
    return st;
}
