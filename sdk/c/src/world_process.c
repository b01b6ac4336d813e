/* The process-function world: processor.process/on-timer over weir_process
 * and weir_on_timer, with the key's state (the bytes of the WEIR_STATE type)
 * passed in and out once per key per call, and timers through the import. */
#define WEIR_WORLD process_function
#include "process_function.h"
#include "glue.h"

typedef process_function_list_u8_t weir__list;

enum { KEEP = 0, SET = 1, CLEAR = 2 };

struct weir_ctx {
    weir_bytes key;
    void *state;      /* weir_state_size bytes, aligned */
    bool has_state;
    uint8_t change;   /* KEEP, SET or CLEAR */
    weir_emitter emitter;
};

weir_bytes weir_ctx_key(const weir_ctx *c) { return c->key; }

void *weir_ctx_state(weir_ctx *c) { return c->has_state ? c->state : NULL; }

void *weir_ctx_state_mut(weir_ctx *c) {
    if (!c->has_state) memset(c->state, 0, weir_state_size);
    c->has_state = true;
    c->change = SET;
    return c->state;
}

void weir_ctx_clear_state(weir_ctx *c) {
    c->has_state = false;
    c->change = CLEAR;
}

weir_out *weir_ctx_emit(weir_ctx *c) { return weir_emit(&c->emitter); }

static int weir__timer_error(weir_udf_types_udf_error_t *e, const char *what) {
    int rc = weir_reject("cannot %s a timer: %.*s", what, (int)e->val.failed.len, (const char *)e->val.failed.ptr);
    weir_udf_types_udf_error_free(e);
    return rc;
}

int weir_ctx_register_timer(weir_ctx *c, int64_t at) {
    weir__list key = {(uint8_t *)c->key.ptr, c->key.len};
    weir_udf_types_udf_error_t e;
    return weir_udf_timers_register(&key, at, &e) ? 0 : weir__timer_error(&e, "register");
}

int weir_ctx_delete_timer(weir_ctx *c, int64_t at) {
    weir__list key = {(uint8_t *)c->key.ptr, c->key.len};
    weir_udf_types_udf_error_t e;
    return weir_udf_timers_delete(&key, at, &e) ? 0 : weir__timer_error(&e, "delete");
}

/* Starts a group: the key and its stored value; false (error set) when the value has the wrong size. */
static bool weir__ctx_start(weir_ctx *c, weir_bytes key, bool has_value, weir_bytes value) {
    c->key = key;
    c->change = KEEP;
    c->has_state = has_value;
    if (has_value) {
        if (value.len != weir_state_size) {
            weir_error(WEIR_FAILED, "a stored state has %zu bytes but this function's has %zu (state of another version?)",
                       value.len, weir_state_size);
            return false;
        }
        memcpy(c->state, value.ptr, value.len);
    }
    return true;
}

/* Appends the group's result entry: the state change and the output batch. */
static void weir__ctx_result(weir_ctx *c, weir_buf *results, weir_batch *out) {
    uint8_t op = c->change == SET && c->has_state ? SET : c->change == KEEP ? KEEP : CLEAR;
    weir__buf_u8(results, op);
    if (op == SET) weir__buf_bytes(results, c->state, weir_state_size);
    weir_buf b = weir__batch_finish(out);
    weir__buf_bytes(results, b.ptr, b.len);
    free(b.ptr);
}

static weir_ctx *weir__ctx(void) {
    static weir_ctx ctx;
    if (!ctx.state) {
        ctx.state = calloc(1, weir_state_size ? weir_state_size : 1);
        if (!ctx.state) abort();
    }
    return &ctx;
}

bool exports_weir_udf_processor_process(weir__list *groups, exports_weir_udf_processor_processed_t *ret,
                                        weir_udf_types_udf_error_t *err) {
    weir_reader r = weir__reader(groups->ptr, groups->len);
    uint32_t n;
    bool ok = weir__batch_count(&r, &n);
    weir_buf results = {0};
    weir__buf_u32(&results, n);
    weir_rejections rejected = {0};
    weir_ctx *ctx = weir__ctx();
    uint32_t index = 0;
    for (uint32_t g = 0; ok && g < n; g++) {
        weir_bytes key = weir__read_bytes(&r), value = {NULL, 0};
        bool has_value = weir__read_opt_bytes(&r, &value);
        weir_bytes records = weir__read_bytes(&r);
        if (r.bad || !(ok = weir__ctx_start(ctx, key, has_value, value))) break;
        weir_reader rr = weir__reader(records.ptr, records.len);
        uint32_t count;
        if (!(ok = weir__batch_count(&rr, &count))) break;
        weir_batch out = weir__batch_new(64);
        for (uint32_t i = 0; i < count; i++, index++) {
            weir_record rec;
            if (!weir__read_record(&rr, &rec)) break;
            size_t mark = out.buf.len;
            uint32_t emitted = out.count;
            weir__emitter_start(&ctx->emitter, &out, weir__defaults_of(&rec));
            weir__failure_clear();
            if (weir_process(ctx, &rec) < 0) {
                out.buf.len = mark;
                out.count = emitted;
                weir__reject_record(&rejected, index);
            } else {
                weir__emitter_flush(&ctx->emitter);
            }
        }
        if (!(ok = weir__reader_done(&rr, "group's records"))) {
            free(out.buf.ptr);
            break;
        }
        weir__ctx_result(ctx, &results, &out);
    }
    ok = ok && weir__reader_done(&r, "process group list");
    process_function_list_u8_free(groups);
    if (!ok) {
        free(results.ptr);
        weir__rejections_drop(&rejected);
        weir__udf_error(err);
        return false;
    }
    ret->results.ptr = results.ptr;
    ret->results.len = results.len;
    WEIR__SET_REJECTIONS(ret->rejected, &rejected);
    return true;
}

bool exports_weir_udf_processor_on_timer(weir__list *fired, weir__list *ret, weir_udf_types_udf_error_t *err) {
    weir_reader r = weir__reader(fired->ptr, fired->len);
    uint32_t n;
    bool ok = weir__batch_count(&r, &n);
    weir_buf results = {0};
    weir__buf_u32(&results, n);
    weir_ctx *ctx = weir__ctx();
    for (uint32_t g = 0; ok && g < n; g++) {
        weir_bytes key = weir__read_bytes(&r), value = {NULL, 0};
        bool has_value = weir__read_opt_bytes(&r, &value);
        uint32_t timers = weir__read_u32(&r);
        if (r.bad || !(ok = weir__ctx_start(ctx, key, has_value, value))) break;
        weir_batch out = weir__batch_new(64);
        for (uint32_t t = 0; ok && t < timers; t++) {
            int64_t at = weir__read_i64(&r);
            if (r.bad) break;
            weir_defaults d = {at, true, key, {NULL, 0}};
            weir__emitter_start(&ctx->emitter, &out, d);
            weir__failure_clear();
            if (weir_on_timer(ctx, at) < 0) {
                if (!weir__failure.set) weir_error(WEIR_FAILED, "on_timer failed without saying why");
                weir__failure.reject = false;
                ok = false;
            } else {
                weir__emitter_flush(&ctx->emitter);
            }
        }
        if (!ok || r.bad) {
            free(out.buf.ptr);
            break;
        }
        weir__ctx_result(ctx, &results, &out);
    }
    ok = ok && weir__reader_done(&r, "timer group list");
    process_function_list_u8_free(fired);
    if (!ok) {
        free(results.ptr);
        weir__udf_error(err);
        return false;
    }
    ret->ptr = results.ptr;
    ret->len = results.len;
    return true;
}
