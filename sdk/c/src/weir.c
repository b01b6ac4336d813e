/* The world-independent part of the C SDK: the batch layout (wit/batch.md),
 * output records, parameters, errors, JSON fields and number formatting. */
#include "weir_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ------------------------------------------------------------ */

void weir__buf_reserve(weir_buf *b, size_t extra) {
    if (b->cap - b->len >= extra) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) cap *= 2;
    uint8_t *p = realloc(b->ptr, cap);
    if (!p) abort(); /* out of memory: the host contains the trap */
    b->ptr = p;
    b->cap = cap;
}

void weir__buf_append(weir_buf *b, const void *data, size_t len) {
    weir__buf_reserve(b, len);
    if (len) memcpy(b->ptr + b->len, data, len);
    b->len += len;
}

void weir__buf_u8(weir_buf *b, uint8_t v) { weir__buf_append(b, &v, 1); }

void weir__buf_u32(weir_buf *b, uint32_t v) {
    uint8_t le[4] = {v, v >> 8, v >> 16, v >> 24};
    weir__buf_append(b, le, 4);
}

void weir__buf_i64(weir_buf *b, int64_t v) {
    uint64_t u = (uint64_t)v;
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(u >> (8 * i));
    weir__buf_append(b, le, 8);
}

void weir__buf_bytes(weir_buf *b, const void *data, size_t len) {
    weir__buf_u32(b, (uint32_t)len);
    weir__buf_append(b, data, len);
}

void weir__buf_put_u32(weir_buf *b, size_t at, uint32_t v) {
    uint8_t le[4] = {v, v >> 8, v >> 16, v >> 24};
    memcpy(b->ptr + at, le, 4);
}

/* ---- reading ------------------------------------------------------------ */

weir_reader weir__reader(const uint8_t *ptr, size_t len) {
    weir_reader r = {ptr, len, 0, false};
    return r;
}

static bool take(weir_reader *r, size_t n) {
    if (r->bad || r->len - r->pos < n) {
        r->bad = true;
        return false;
    }
    return true;
}

uint32_t weir__read_u32(weir_reader *r) {
    if (!take(r, 4)) return 0;
    const uint8_t *p = r->ptr + r->pos;
    r->pos += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int64_t weir__read_i64(weir_reader *r) {
    if (!take(r, 8)) return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | r->ptr[r->pos + i];
    r->pos += 8;
    return (int64_t)v;
}

static weir_bytes slice(weir_reader *r, size_t n) {
    weir_bytes b = {NULL, 0};
    if (!take(r, n)) return b;
    b.ptr = r->ptr + r->pos;
    b.len = n;
    r->pos += n;
    return b;
}

weir_bytes weir__read_bytes(weir_reader *r) { return slice(r, weir__read_u32(r)); }

bool weir__read_opt_bytes(weir_reader *r, weir_bytes *out) {
    uint32_t n = weir__read_u32(r);
    if (n == UINT32_MAX) return false;
    *out = slice(r, n);
    return true;
}

bool weir__read_record(weir_reader *r, weir_record *out) {
    out->timestamp = weir__read_i64(r);
    uint32_t key_len = weir__read_u32(r);
    uint32_t value_len = weir__read_u32(r);
    uint32_t headers_len = weir__read_u32(r);
    out->has_key = key_len != UINT32_MAX;
    out->key = slice(r, out->has_key ? key_len : 0);
    out->value = slice(r, value_len);
    out->raw_headers = slice(r, headers_len);
    return !r->bad;
}

bool weir__reader_done(weir_reader *r, const char *what) {
    if (r->bad || r->pos != r->len) {
        weir_error(WEIR_INVALID_INPUT, "the host sent a malformed %s (%s at byte %zu of %zu)", what,
                   r->bad ? "it ends early" : "bytes left over", r->pos, r->len);
        return false;
    }
    return true;
}

bool weir_header(const weir_record *rec, const char *name, weir_bytes *value) {
    weir_reader r = weir__reader(rec->raw_headers.ptr, rec->raw_headers.len);
    size_t want = strlen(name);
    while (r.pos < r.len && !r.bad) {
        weir_bytes n = weir__read_bytes(&r);
        weir_bytes v = weir__read_bytes(&r);
        if (!r.bad && n.len == want && memcmp(n.ptr, name, want) == 0) {
            *value = v;
            return true;
        }
    }
    return false;
}

/* ---- writing batches and records ----------------------------------------- */

weir_batch weir__batch_new(size_t capacity) {
    weir_batch b = {{NULL, 0, 0}, 0};
    weir__buf_reserve(&b.buf, capacity < 4 ? 4 : capacity);
    weir__buf_u32(&b.buf, 0);
    return b;
}

weir_buf weir__batch_finish(weir_batch *b) {
    weir__buf_put_u32(&b->buf, 0, b->count);
    weir_buf out = b->buf;
    b->buf.ptr = NULL;
    b->buf.len = b->buf.cap = 0;
    return out;
}

weir_defaults weir__defaults_of(const weir_record *r) {
    weir_defaults d = {r->timestamp, r->has_key, r->key, r->raw_headers};
    return d;
}

void weir__out_reset(weir_out *o, weir_defaults d) {
    o->d = d;
    o->value.len = o->key.len = o->headers.len = 0;
    o->key_set = o->has_key = o->ts_set = false;
}

void weir__out_write(weir_out *o, weir_batch *batch) {
    const uint8_t *key = o->key_set ? o->key.ptr : o->d.key.ptr;
    size_t key_len = o->key_set ? o->key.len : o->d.key.len;
    bool has_key = o->key_set ? o->has_key : o->d.has_key;
    size_t headers_len = o->d.headers.len + o->headers.len;
    weir_buf *b = &batch->buf;
    weir__buf_reserve(b, 20 + key_len + o->value.len + headers_len);
    weir__buf_i64(b, o->ts_set ? o->ts : o->d.timestamp);
    weir__buf_u32(b, has_key ? (uint32_t)key_len : UINT32_MAX);
    weir__buf_u32(b, (uint32_t)o->value.len);
    weir__buf_u32(b, (uint32_t)headers_len);
    if (has_key) weir__buf_append(b, key, key_len);
    weir__buf_append(b, o->value.ptr, o->value.len);
    weir__buf_append(b, o->d.headers.ptr, o->d.headers.len);
    weir__buf_append(b, o->headers.ptr, o->headers.len);
    batch->count++;
}

void weir_out_bytes(weir_out *o, const void *data, size_t len) { weir__buf_append(&o->value, data, len); }

void weir_out_str(weir_out *o, const char *s) { weir__buf_append(&o->value, s, strlen(s)); }

void weir_out_printf(weir_out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        weir__buf_reserve(&o->value, (size_t)n + 1);
        vsnprintf((char *)o->value.ptr + o->value.len, (size_t)n + 1, fmt, again);
        o->value.len += (size_t)n;
    }
    va_end(again);
}

void weir_out_u64(weir_out *o, uint64_t v) {
    char digits[20];
    int i = 20;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    weir__buf_append(&o->value, digits + i, (size_t)(20 - i));
}

void weir_out_i64(weir_out *o, int64_t v) {
    if (v < 0) {
        weir__buf_u8(&o->value, '-');
        weir_out_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        weir_out_u64(o, (uint64_t)v);
    }
}

void weir_out_f64(weir_out *o, double v) {
    if (isnan(v)) return weir_out_str(o, "NaN");
    if (isinf(v)) return weir_out_str(o, v > 0 ? "inf" : "-inf");
    char text[40];
    /* The fewest significant digits that read back as v. */
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*e", precision - 1, v);
        if (strtod(text, NULL) == v) {
            /* Written out without an exponent, as Rust's `{}` does. */
            char *e = strchr(text, 'e');
            int exp = atoi(e + 1);
            *e = 0;
            char digits[20];
            size_t n = 0;
            for (char *c = text; *c; c++)
                if (*c >= '0' && *c <= '9') digits[n++] = *c;
            while (n > 1 && digits[n - 1] == '0') n--;
            if (v < 0) weir__buf_u8(&o->value, '-');
            if (exp < 0) {
                weir_out_str(o, "0.");
                for (int z = -1; z > exp; z--) weir__buf_u8(&o->value, '0');
                weir__buf_append(&o->value, digits, n);
            } else if ((size_t)exp + 1 >= n) {
                weir__buf_append(&o->value, digits, n);
                for (size_t z = n; z < (size_t)exp + 1; z++) weir__buf_u8(&o->value, '0');
            } else {
                weir__buf_append(&o->value, digits, (size_t)exp + 1);
                weir__buf_u8(&o->value, '.');
                weir__buf_append(&o->value, digits + exp + 1, n - (size_t)exp - 1);
            }
            return;
        }
    }
}

void weir_out_json_str(weir_out *o, const void *s, size_t len) {
    const uint8_t *p = s;
    weir__buf_u8(&o->value, '"');
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            weir__buf_u8(&o->value, '\\');
            weir__buf_u8(&o->value, c);
        } else if (c < 0x20) {
            char esc[7];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            weir__buf_append(&o->value, esc, 6);
        } else {
            weir__buf_u8(&o->value, c);
        }
    }
    weir__buf_u8(&o->value, '"');
}

void weir_out_set_key(weir_out *o, const void *key, size_t len) {
    o->key.len = 0;
    weir__buf_append(&o->key, key, len);
    o->key_set = o->has_key = true;
}

void weir_out_clear_key(weir_out *o) {
    o->key.len = 0;
    o->key_set = true;
    o->has_key = false;
}

void weir_out_set_timestamp(weir_out *o, int64_t timestamp) {
    o->ts = timestamp;
    o->ts_set = true;
}

void weir_out_add_header(weir_out *o, const char *name, const void *value, size_t len) {
    weir__buf_bytes(&o->headers, name, strlen(name));
    weir__buf_bytes(&o->headers, value, len);
}

void weir__emitter_start(weir_emitter *e, weir_batch *batch, weir_defaults d) {
    e->batch = batch;
    e->d = d;
    e->open = false;
}

void weir__emitter_flush(weir_emitter *e) {
    if (e->open) weir__out_write(&e->out, e->batch);
    e->open = false;
}

weir_out *weir_emit(weir_emitter *e) {
    weir__emitter_flush(e);
    weir__out_reset(&e->out, e->d);
    e->open = true;
    return &e->out;
}

/* ---- errors -------------------------------------------------------------- */

weir_failure weir__failure;

void weir__failure_clear(void) { weir__failure.set = false; }

static int describe(bool reject, weir_error_kind kind, const char *fmt, va_list ap) {
    weir__failure.set = true;
    weir__failure.reject = reject;
    weir__failure.kind = kind;
    vsnprintf(weir__failure.message, sizeof weir__failure.message, fmt, ap);
    return -1;
}

int weir_reject(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    describe(true, WEIR_INVALID_INPUT, fmt, ap);
    va_end(ap);
    return -1;
}

int weir_error(weir_error_kind kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    describe(false, kind, fmt, ap);
    va_end(ap);
    return -1;
}

char *weir__failure_take(size_t *len) {
    const char *m = weir__failure.set ? weir__failure.message : "the function failed without saying why";
    *len = strlen(m);
    char *copy = malloc(*len + 1);
    if (!copy) abort();
    memcpy(copy, m, *len + 1);
    weir__failure.set = false;
    return copy;
}

void weir__reject_record(weir_rejections *rs, uint32_t index) {
    if (rs->len == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 8;
        rs->ptr = realloc(rs->ptr, rs->cap * sizeof *rs->ptr);
        if (!rs->ptr) abort();
    }
    weir_rejection *r = &rs->ptr[rs->len++];
    r->index = index;
    r->reason = weir__failure_take(&r->reason_len);
}

/* ---- parameters ---------------------------------------------------------- */

const char *weir_param(const weir_params *p, const char *name) {
    for (size_t i = 0; i < p->len; i++)
        if (strcmp(p->names[i], name) == 0) return p->values[i];
    return NULL;
}

int weir_params_allow_only(const weir_params *p, const char *const *names) {
    for (size_t i = 0; i < p->len; i++) {
        bool known = false;
        for (const char *const *n = names; *n; n++) known = known || strcmp(*n, p->names[i]) == 0;
        if (!known) {
            char list[512] = "";
            for (const char *const *n = names; *n; n++) {
                if (n != names) strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, *n, sizeof list - strlen(list) - 1);
            }
            return weir_error(WEIR_INVALID_PARAMS, "unknown parameter `%s` (expected %s)", p->names[i],
                              *names ? list : "none");
        }
    }
    return 0;
}

int weir_param_f64(const weir_params *p, const char *name, double fallback, double *out) {
    const char *v = weir_param(p, name);
    if (!v) return *out = fallback, 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno) return weir_error(WEIR_INVALID_PARAMS, "`%s` is `%s`, not a number", name, v);
    *out = d;
    return 0;
}

int weir_param_i64(const weir_params *p, const char *name, int64_t fallback, int64_t *out) {
    const char *v = weir_param(p, name);
    if (!v) return *out = fallback, 0;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end || errno) return weir_error(WEIR_INVALID_PARAMS, "`%s` is `%s`, not an integer", name, v);
    *out = n;
    return 0;
}

int weir_param_u64(const weir_params *p, const char *name, uint64_t fallback, uint64_t *out) {
    const char *v = weir_param(p, name);
    if (!v) return *out = fallback, 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *end || errno || *v == '-')
        return weir_error(WEIR_INVALID_PARAMS, "`%s` is `%s`, not an unsigned integer", name, v);
    *out = n;
    return 0;
}

/* ---- JSON fields ----------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} cursor;

static void ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* Skips a string starting at its opening quote; false when unterminated. */
static bool skip_string(cursor *c) {
    for (c->p++; c->p < c->end; c->p++) {
        if (*c->p == '\\') {
            c->p++;
        } else if (*c->p == '"') {
            c->p++;
            return true;
        }
    }
    return false;
}

/* Skips any value; false on malformed JSON. */
static bool skip_value(cursor *c) {
    ws(c);
    if (c->p >= c->end) return false;
    if (*c->p == '"') return skip_string(c);
    if (*c->p == '{' || *c->p == '[') {
        int depth = 0;
        while (c->p < c->end) {
            uint8_t ch = *c->p;
            if (ch == '"') {
                if (!skip_string(c)) return false;
                continue;
            }
            if (ch == '{' || ch == '[') depth++;
            if (ch == '}' || ch == ']') depth--;
            c->p++;
            if (depth == 0) return true;
        }
        return false;
    }
    const uint8_t *start = c->p;
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ' && *c->p != '\n' &&
           *c->p != '\t' && *c->p != '\r')
        c->p++;
    return c->p > start;
}

static const char *kind_of(uint8_t first) {
    switch (first) {
    case '"': return "a string";
    case '{': return "an object";
    case '[': return "an array";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
    }
}

/* Walks a JSON object: checks its structure (not every literal, so a
 * truncated record is refused even when a field came before the cut),
 * indexes its first WEIR_JSON_INDEXED fields into `obj` (if given) and
 * finds `field` (if given) into `raw`. 0, or -1 with the reason set. */
static int walk_object(weir_bytes json, weir_json_object *obj, const char *field, weir_bytes *raw) {
    cursor c = {json.ptr, json.ptr + json.len};
    size_t want = field ? strlen(field) : 0;
    bool found = false;
    if (obj) {
        obj->json = json;
        obj->len = 0;
        obj->more = false;
    }
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return weir_reject("the value is not a JSON object");
    c.p++;
    ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        goto end;
    }
    while (c.p < c.end) {
        ws(&c);
        if (c.p >= c.end || *c.p != '"') break;
        const uint8_t *name = c.p + 1;
        if (!skip_string(&c)) break;
        size_t name_len = (size_t)(c.p - 1 - name);
        ws(&c);
        if (c.p >= c.end || *c.p != ':') break;
        c.p++;
        ws(&c);
        const uint8_t *value = c.p;
        if (!skip_value(&c)) break;
        weir_bytes n = {name, name_len}, v = {value, (size_t)(c.p - value)};
        if (field && !found && name_len == want && memcmp(name, field, want) == 0) {
            *raw = v;
            found = true;
        }
        if (obj && obj->len < WEIR_JSON_INDEXED) {
            obj->names[obj->len] = n;
            obj->values[obj->len++] = v;
        } else if (obj) {
            obj->more = true;
        }
        ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == '}') {
            c.p++;
            goto end;
        }
        break;
    }
    return weir_reject("the value is not valid JSON");
end:
    ws(&c);
    if (c.p != c.end) return weir_reject("the value is not valid JSON (bytes after the object)");
    return !field || found ? 0 : weir_reject("field `%s` is missing", field);
}

int weir_json_parse(weir_bytes json, weir_json_object *obj) { return walk_object(json, obj, NULL, NULL); }

/* The raw value of `field` of a parsed object: 0, or -1 with the reason set. */
static int lookup(const weir_json_object *obj, const char *field, weir_bytes *raw) {
    size_t want = strlen(field);
    for (size_t i = 0; i < obj->len; i++) {
        if (obj->names[i].len == want && memcmp(obj->names[i].ptr, field, want) == 0) {
            *raw = obj->values[i];
            return 0;
        }
    }
    if (obj->more) return walk_object(obj->json, NULL, field, raw);
    return weir_reject("field `%s` is missing", field);
}

/* Copies a number's text into `buf`; -1 (reason set) when it is not a number. */
static int number_text(weir_bytes raw, const char *field, const char *expected, char *buf, size_t cap) {
    if (raw.len == 0 || raw.len >= cap || !(raw.ptr[0] == '-' || (raw.ptr[0] >= '0' && raw.ptr[0] <= '9')))
        return weir_reject("field `%s` is %s, expected %s", field, raw.len ? kind_of(raw.ptr[0]) : "empty", expected);
    memcpy(buf, raw.ptr, raw.len);
    buf[raw.len] = 0;
    return 0;
}

static int to_u64(weir_bytes raw, const char *field, uint64_t *out) {
    const char *expected = "an unsigned integer";
    /* The common case, digits only, without a copy. */
    if (raw.len > 0 && raw.len < 20) {
        uint64_t n = 0;
        size_t i = 0;
        while (i < raw.len && raw.ptr[i] >= '0' && raw.ptr[i] <= '9') n = n * 10 + (uint64_t)(raw.ptr[i++] - '0');
        if (i == raw.len) return *out = n, 0;
    }
    char buf[32];
    if (number_text(raw, field, expected, buf, sizeof buf)) return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(buf, &end, 10);
    if (*end || errno || buf[0] == '-') return weir_reject("field `%s` is %s, expected %s", field, buf, expected);
    *out = n;
    return 0;
}

static int to_i64(weir_bytes raw, const char *field, int64_t *out) {
    const char *expected = "an integer";
    char buf[32];
    if (number_text(raw, field, expected, buf, sizeof buf)) return -1;
    char *end;
    errno = 0;
    long long n = strtoll(buf, &end, 10);
    if (*end || errno) return weir_reject("field `%s` is %s, expected %s", field, buf, expected);
    *out = n;
    return 0;
}

static int to_f64(weir_bytes raw, const char *field, double *out) {
    const char *expected = "a number";
    char buf[64];
    if (number_text(raw, field, expected, buf, sizeof buf)) return -1;
    char *end;
    double d = strtod(buf, &end);
    if (*end) return weir_reject("field `%s` is %s, expected %s", field, buf, expected);
    *out = d;
    return 0;
}

static int to_str(weir_bytes raw, const char *field, weir_bytes *out) {
    if (raw.len < 2 || raw.ptr[0] != '"')
        return weir_reject("field `%s` is %s, expected a string", field, kind_of(raw.ptr[0]));
    out->ptr = raw.ptr + 1;
    out->len = raw.len - 2;
    return 0;
}

int weir_json_get_u64(const weir_json_object *o, const char *f, uint64_t *out) {
    weir_bytes raw;
    return lookup(o, f, &raw) ? -1 : to_u64(raw, f, out);
}
int weir_json_get_i64(const weir_json_object *o, const char *f, int64_t *out) {
    weir_bytes raw;
    return lookup(o, f, &raw) ? -1 : to_i64(raw, f, out);
}
int weir_json_get_f64(const weir_json_object *o, const char *f, double *out) {
    weir_bytes raw;
    return lookup(o, f, &raw) ? -1 : to_f64(raw, f, out);
}
int weir_json_get_str(const weir_json_object *o, const char *f, weir_bytes *out) {
    weir_bytes raw;
    return lookup(o, f, &raw) ? -1 : to_str(raw, f, out);
}
int weir_json_u64(weir_bytes json, const char *f, uint64_t *out) {
    weir_bytes raw;
    return walk_object(json, NULL, f, &raw) ? -1 : to_u64(raw, f, out);
}
int weir_json_i64(weir_bytes json, const char *f, int64_t *out) {
    weir_bytes raw;
    return walk_object(json, NULL, f, &raw) ? -1 : to_i64(raw, f, out);
}
int weir_json_f64(weir_bytes json, const char *f, double *out) {
    weir_bytes raw;
    return walk_object(json, NULL, f, &raw) ? -1 : to_f64(raw, f, out);
}
int weir_json_str(weir_bytes json, const char *f, weir_bytes *out) {
    weir_bytes raw;
    return walk_object(json, NULL, f, &raw) ? -1 : to_str(raw, f, out);
}

/* ---- host services ---------------------------------------------------------- */

void weir_log(weir_level level, const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    weir__host_log(level, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

int64_t weir_watermark(void) { return weir__host_watermark(); }

/* Without a weir_init of its own, a function takes no parameters. */
__attribute__((weak)) int weir_init(const weir_params *params) {
    static const char *const none[] = {NULL};
    return weir_params_allow_only(params, none);
}
