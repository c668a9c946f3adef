/* The kernels of ../../blas_kernels.cu built as C++ for the CPU emulation. */
#include "../../blas_kernels.cu"
