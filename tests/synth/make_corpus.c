/* Test helper: write the generated test corpus (synth_test_util.h) under argv[1]. */
#include "synth_test_util.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: synth_make_corpus DIR\n");
        return 2;
    }
    mkdir(argv[1], 0755);
    return tu_make_corpus(argv[1]) == 0 ? 0 : 1;
}
