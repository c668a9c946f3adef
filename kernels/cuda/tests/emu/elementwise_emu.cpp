/* The kernels of ../../elementwise.cu built as C++ for the CPU emulation. */
#include "../../elementwise.cu"
