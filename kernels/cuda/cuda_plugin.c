/* bp-cuda.so: the plugin entry, the "cuda" backend descriptor and its
 * parameters, the machine score, and instance creation/destruction.
 *
 * On a machine without a usable GPU (no driver, no device, a driver too old
 * for this CUDA runtime) `score` returns 0 — the registry then lists the
 * plugin as unable to run here — and `create` fails with BP_ERR_DEVICE and a
 * message "cuda: no CUDA device: <reason>". Neither crashes nor hangs:
 * cudaGetDeviceCount only reports the missing driver. */
#include <stdio.h>
#include <stdlib.h>

#include "batpipe/plugin.h"
#include "cuda_internal.h"

/* ------------------------------------------------------------ descriptor -- */

static const bp_param_spec cuda_params[] = {
    {sizeof(bp_param_spec), "device", BP_PARAM_INT, "0", 0.0, 1023.0, NULL,
     "CUDA device index (as in cudaSetDevice / nvidia-smi order); 0 = the first GPU"},
    {sizeof(bp_param_spec), "tf32", BP_PARAM_BOOL, "false", BP_NO_RANGE, NULL,
     "let F32 matmul/conv2d use TF32 tensor cores (much faster, ~1e-3 relative error); BF16 matmul is unaffected"},
    {sizeof(bp_param_spec), "scratch_mb", BP_PARAM_INT, "512", 1.0, 1048576.0, NULL,
     "upper bound in MiB of the conv2d im2col buffer; larger batches are processed in chunks (>= 1 image)"},
};

static const bp_descriptor cuda_descriptor = {
    sizeof(bp_descriptor),
    "cuda",
    "1.0.0",
    "NVIDIA GPU compute backend: cuBLAS matmul/conv2d (F32, BF16), CUDA kernels for every other op",
    "checked against float64 references (kernels/cuda/tests, tests/backend_ops)",
    cuda_params,
    (uint32_t)(sizeof cuda_params / sizeof cuda_params[0]),
};

static const bp_descriptor *const cuda_descriptors[] = {&cuda_descriptor};

/* ----------------------------------------------------------------- score -- */

static int32_t cuda_score(void) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return count > 0 ? 100 : 0;
}

/* -------------------------------------------------------------- instance -- */

static void cuda_destroy(bp_backend_impl *be) {
    if (!be) return;
    cuda_backend *cb = cuda_of(be);
    if (cudaSetDevice(cb->device) == cudaSuccess) {
        if (cb->stream) (void)cudaStreamSynchronize(cb->stream);
        if (cb->blas) (void)cublasDestroy(cb->blas);
        if (cb->scratch) (void)cudaFree(cb->scratch);
        if (cb->status) (void)cudaFree(cb->status);
        if (cb->stream) (void)cudaStreamDestroy(cb->stream);
    }
    free(cb);
}

/* "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, 132 SMs)" */
static void describe_device(const struct cudaDeviceProp *p, char *buf, size_t cap) {
    snprintf(buf, cap, "%.80s (sm_%d%d, %.1f GiB, %d SMs)", p->name, p->major, p->minor,
             (double)p->totalGlobalMem / (1024.0 * 1024.0 * 1024.0), p->multiProcessorCount);
}

static bp_status no_device(cudaError_t e, bp_error *err) {
    if (e != cudaSuccess)
        return bp_error_set(err, BP_ERR_DEVICE, "cuda: no CUDA device: %s (%s)", cudaGetErrorString(e),
                            cudaGetErrorName(e));
    return bp_error_set(err, BP_ERR_DEVICE, "cuda: no CUDA device: the driver reports 0 devices");
}

static bp_status cuda_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                             bp_error *err) {
    *instance = NULL;
    if (index != 0) return bp_error_set(err, BP_ERR_NOT_FOUND, "cuda: no backend component %u", index);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count < 1) {
        (void)cudaGetLastError();
        return no_device(e, err);
    }
    const int64_t device = bp_params_int(params, "device");
    if (device < 0 || device >= count)
        return bp_error_set(err, BP_ERR_DEVICE, "cuda: device %lld requested, but this machine has %d CUDA device%s",
                            (long long)device, count, count == 1 ? "" : "s");
    int64_t scratch_mb = bp_params_find(params, "scratch_mb") ? bp_params_int(params, "scratch_mb") : 512;
    if (scratch_mb < 1) scratch_mb = 1;

    cuda_backend *cb = calloc(1, sizeof *cb);
    if (!cb) return bp_error_set(err, BP_ERR_NOMEM, "cuda: out of memory");
    cb->device = (int32_t)device;
    cb->tf32 = bp_params_bool(params, "tf32");
    cb->scratch_limit = (size_t)scratch_mb << 20;
    cb->host = host;

    bp_backend_impl *be = &cb->impl;
    be->struct_size = sizeof *be;
    be->self = cb;
    be->name = "cuda";
    be->device_type = BP_DEVICE_GPU;
    be->host_memory = 0;
    be->n_threads = 1;
    be->destroy = cuda_destroy;

    struct cudaDeviceProp prop;
    bp_status st = cuda_check(cudaSetDevice(cb->device), "create (cudaSetDevice)", err);
    if (st == BP_OK) st = cuda_check(cudaGetDeviceProperties(&prop, cb->device), "create (device properties)", err);
    if (st == BP_OK) {
        describe_device(&prop, be->device, sizeof be->device);
        be->has_bf16 = prop.major >= 8;
        e = cuda_kernels_probe();
        if (e != cudaSuccess)
            st = bp_error_set(err, BP_ERR_DEVICE,
                              "cuda: %s: this plugin has no kernels for sm_%d%d (%s); rebuild with "
                              "CMAKE_CUDA_ARCHITECTURES including %d%d",
                              be->device, prop.major, prop.minor, cudaGetErrorString(e), prop.major, prop.minor);
    }
    if (st == BP_OK)
        st = cuda_check(cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking), "create (stream)", err);
    if (st == BP_OK) st = cuda_check(cudaMalloc((void **)&cb->status, sizeof *cb->status), "create (alloc)", err);
    if (st == BP_OK) st = cublas_check(cublasCreate(&cb->blas), "create (cublasCreate)", err);
    if (st == BP_OK) st = cublas_check(cublasSetStream(cb->blas, cb->stream), "create (cublasSetStream)", err);
    if (st != BP_OK) {
        cuda_destroy(be);
        return st;
    }

    be->alloc = cuda_mem_alloc;
    be->free = cuda_mem_free;
    be->write = cuda_mem_write;
    be->read = cuda_mem_read;
    be->copy = cuda_mem_copy;
    be->synchronize = cuda_mem_synchronize;
    be->matmul = cuda_op_matmul;
    be->conv2d = cuda_op_conv2d;
    be->unary = cuda_op_unary;
    be->binary = cuda_op_binary;
    be->affine = cuda_op_affine;
    be->softmax = cuda_op_softmax;
    be->layernorm = cuda_op_layernorm;
    be->rmsnorm = cuda_op_rmsnorm;
    be->reduce = cuda_op_reduce;
    be->convert = cuda_op_convert;
    be->permute = cuda_op_permute;
    be->get_rows = cuda_op_get_rows;
    be->fill = cuda_op_fill;

    bp_logf(host, BP_LOG_INFO, "cuda", "device %d: %s%s", cb->device, be->device, cb->tf32 ? ", TF32 allowed" : "");
    *instance = be;
    return BP_OK;
}

/* ----------------------------------------------------------------- entry -- */

static const bp_factory cuda_factory = {
    sizeof(bp_factory),
    1,
    cuda_descriptors,
    cuda_create,
};

static const bp_factory *cuda_get_factory(const char *kind_id) {
    return (kind_id && strcmp(kind_id, BP_KIND_BACKEND_ID) == 0) ? &cuda_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, "cuda", "1.0.0", "MIT", cuda_score, NULL, NULL, cuda_get_factory,
};
