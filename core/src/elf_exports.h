/* Internal: list the dynamic symbols a shared object exports. */
#ifndef BP_ELF_EXPORTS_H
#define BP_ELF_EXPORTS_H

#include "batpipe/error.h"

/* Calls fn(user, name) for every defined, default-visibility global/weak
 * function or object in the file's dynamic symbol table. */
bp_status bp_elf_exports(const char *path, void (*fn)(void *user, const char *name), void *user, bp_error *err);

#endif
