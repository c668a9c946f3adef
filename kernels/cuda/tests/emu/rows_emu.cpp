/* The kernels of ../../rows.cu built as C++ for the CPU emulation. */
#include "../../rows.cu"
