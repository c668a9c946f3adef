// The public headers are usable from C++ (extern "C", no C-only constructs).
#include "batpipe/batpipe.h"

int main() {
    bp_spec s = bp_spec_any();
    return s.ndim == -1 ? 0 : 1;
}
