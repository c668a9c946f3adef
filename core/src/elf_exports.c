/* A bounds-checked reader of an ELF64 file's dynamic symbol table. */
#include "elf_exports.h"

#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int in_file(size_t off, size_t len, size_t size) { return off <= size && len <= size - off; }

bp_status bp_elf_exports(const char *path, void (*fn)(void *user, const char *name), void *user, bp_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return bp_error_set(err, BP_ERR_IO, "%s: cannot open", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        close(fd);
        return bp_error_set(err, BP_ERR_FORMAT, "%s: too small to be an ELF file", path);
    }
    size_t size = (size_t)sb.st_size;
    const unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return bp_error_set(err, BP_ERR_IO, "%s: cannot map", path);
    bp_status st = BP_OK;
    Elf64_Ehdr eh;
    memcpy(&eh, m, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_shentsize != sizeof(Elf64_Shdr) ||
        !in_file(eh.e_shoff, (size_t)eh.e_shnum * sizeof(Elf64_Shdr), size)) {
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: not a 64-bit ELF shared object", path);
        goto done;
    }
    for (size_t i = 0; i < eh.e_shnum; i++) {
        Elf64_Shdr sh;
        memcpy(&sh, m + eh.e_shoff + i * sizeof sh, sizeof sh);
        if (sh.sh_type != SHT_DYNSYM) continue;
        if (sh.sh_link >= eh.e_shnum || sh.sh_entsize != sizeof(Elf64_Sym) || !in_file(sh.sh_offset, sh.sh_size, size)) {
            st = bp_error_set(err, BP_ERR_FORMAT, "%s: malformed dynamic symbol table", path);
            goto done;
        }
        Elf64_Shdr strh;
        memcpy(&strh, m + eh.e_shoff + (size_t)sh.sh_link * sizeof strh, sizeof strh);
        if (!in_file(strh.sh_offset, strh.sh_size, size)) {
            st = bp_error_set(err, BP_ERR_FORMAT, "%s: malformed string table", path);
            goto done;
        }
        const char *strtab = (const char *)m + strh.sh_offset;
        for (size_t k = 0; k < sh.sh_size / sizeof(Elf64_Sym); k++) {
            Elf64_Sym sym;
            memcpy(&sym, m + sh.sh_offset + k * sizeof sym, sizeof sym);
            int bind = ELF64_ST_BIND(sym.st_info), type = ELF64_ST_TYPE(sym.st_info);
            if (sym.st_shndx == SHN_UNDEF || (bind != STB_GLOBAL && bind != STB_WEAK)) continue;
            if (type != STT_FUNC && type != STT_OBJECT) continue;
            if (ELF64_ST_VISIBILITY(sym.st_other) != STV_DEFAULT) continue;
            if (sym.st_name >= strh.sh_size || !memchr(strtab + sym.st_name, '\0', strh.sh_size - sym.st_name)) continue;
            fn(user, strtab + sym.st_name);
        }
    }
done:
    munmap((void *)m, size);
    return st;
}
