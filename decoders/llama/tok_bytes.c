/* llama plugin — GPT-2's byte-level alphabet: every byte gets a printable
 * code point so that BPE works on text without spaces or control bytes.
 * Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to themselves; the other 68
 * bytes map to U+0100, U+0101, ... in byte order (so ' ' is U+0120 "Ġ" and
 * '\n' is U+010A "Ċ"). */
#include "tok_internal.h"

static int byte_is_printable(uint32_t b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    /* rank of b among the non-printable bytes */
    uint32_t rank;
    if (b <= 0x20)
        rank = b; /* 0x00..0x20: 33 bytes */
    else if (b <= 0xA0)
        rank = 33 + (b - 0x7F); /* 0x7F..0xA0: 34 bytes */
    else
        rank = 67; /* 0xAD */
    return 256 + rank;
}

int32_t tok_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int32_t)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t rank = cp - 256;
    if (rank <= 32) return (int32_t)rank;
    if (rank <= 66) return (int32_t)(0x7F + rank - 33);
    return 0xAD;
}
