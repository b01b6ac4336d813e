/* weir-world: flat-map-function
 *
 * Splits a line of text into lower-case words, one record per word, keyed
 * by the word (runs of letters and digits; everything else separates).
 *
 * C has no Unicode tables, so this one knows a little: ASCII, Latin-1,
 * Latin Extended-A, Greek and Cyrillic letters are lower-cased; Unicode
 * punctuation and symbols (U+0080-U+00BF, U+00D7, U+00F7, U+2000-U+2BFF,
 * U+3000-U+303F, U+FE30-U+FE6F, U+FF00-U+FF20) separate words; any other
 * character is part of a word, as it is. The Rust, Python and JavaScript
 * versions use full Unicode rules; on text of those scripts they agree. */
#include <weir.h>

/* Decodes one UTF-8 character at p[0..n); returns its length (1 for a stray byte). */
static size_t decode(const uint8_t *p, size_t n, uint32_t *cp) {
    size_t len = p[0] < 0x80 ? 1 : (p[0] >> 5) == 6 ? 2 : (p[0] >> 4) == 14 ? 3 : (p[0] >> 3) == 30 ? 4 : 1;
    if (len > n) len = 1;
    *cp = len == 1 ? p[0] : p[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) *cp = *cp << 6 | (p[i] & 0x3f);
    return len;
}

static size_t encode(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) return out[0] = (uint8_t)cp, 1;
    if (cp < 0x800) return out[0] = (uint8_t)(0xc0 | cp >> 6), out[1] = (uint8_t)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

static int separates(uint32_t c) {
    if (c < 0x80) return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
    return c <= 0xbf || c == 0xd7 || c == 0xf7 || (c >= 0x2000 && c <= 0x2bff) || (c >= 0x3000 && c <= 0x303f) ||
           (c >= 0xfe30 && c <= 0xfe6f) || (c >= 0xff00 && c <= 0xff20);
}

static uint32_t lower(uint32_t c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7)) return c + 0x20;
    if (c >= 0x100 && c <= 0x137 && c % 2 == 0) return c + 1;
    if (c >= 0x391 && c <= 0x3ab && c != 0x3a2) return c + 0x20;
    if (c >= 0x410 && c <= 0x42f) return c + 0x20;
    if (c >= 0x400 && c <= 0x40f) return c + 0x50;
    return c;
}

int weir_flat_map(const weir_record *in, weir_emitter *out) {
    uint8_t word[1024];
    size_t n = 0;
    const uint8_t *p = in->value.ptr;
    size_t left = in->value.len;
    while (1) {
        uint32_t c = ' ';
        size_t len = left ? decode(p, left, &c) : 0;
        if (left && !separates(c)) {
            if (n + 4 <= sizeof word) n += encode(lower(c), word + n);
        } else if (n > 0) {
            weir_out *o = weir_emit(out);
            weir_out_bytes(o, word, n);
            weir_out_set_key(o, word, n);
            n = 0;
        }
        if (!left) return 0;
        p += len;
        left -= len;
    }
}
