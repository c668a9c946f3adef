/* Every public header compiles on its own in C11 (and, via test_headers_cxx.cpp, in C++). */
#include "batpipe/batpipe.h"

int main(void) {
    bp_error err = BP_ERROR_INIT;
    bp_error_set(&err, BP_ERR_INVALID, "%s", "x");
    return err.code == BP_ERR_INVALID ? 0 : 1;
}
