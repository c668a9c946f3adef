/* The kernels of ../../layout.cu built as C++ for the CPU emulation. */
#include "../../layout.cu"
