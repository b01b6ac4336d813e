/* The aggregate-function world: aggregator.create/add/merge/finish over the
 * weir_create/add/merge/finish callbacks; accumulators are the bytes of the
 * WEIR_ACCUMULATOR type. */
#define WEIR_WORLD aggregate_function
#include "aggregate_function.h"
#include "glue.h"

typedef aggregate_function_list_u8_t weir__list;

/* An aligned, zeroed accumulator of the declared size. */
static void *weir__acc_new(void) {
    void *acc = calloc(1, weir_accumulator_size ? weir_accumulator_size : 1);
    if (!acc) abort();
    return acc;
}

/* Copies stored accumulator bytes into `acc`; false (error set) when the size is not the declared one. */
static bool weir__acc_load(void *acc, const uint8_t *bytes, size_t len) {
    if (len != weir_accumulator_size) {
        weir_error(WEIR_FAILED,
                   "a stored accumulator has %zu bytes but this function's has %zu (state of another version?)", len,
                   weir_accumulator_size);
        return false;
    }
    memcpy(acc, bytes, len);
    return true;
}

static weir__list weir__acc_bytes(const void *acc) {
    weir__list l = {malloc(weir_accumulator_size ? weir_accumulator_size : 1), weir_accumulator_size};
    if (!l.ptr) abort();
    memcpy(l.ptr, acc, weir_accumulator_size);
    return l;
}

bool exports_weir_udf_aggregator_create(weir__list *ret, weir_udf_types_udf_error_t *err) {
    (void)err;
    void *acc = weir__acc_new();
    weir_create(acc);
    *ret = weir__acc_bytes(acc);
    free(acc);
    return true;
}

bool exports_weir_udf_aggregator_add(weir__list *groups, exports_weir_udf_aggregator_added_t *ret,
                                     weir_udf_types_udf_error_t *err) {
    weir_reader r = weir__reader(groups->ptr, groups->len);
    uint32_t n;
    bool ok = weir__batch_count(&r, &n);
    weir_buf accs = {0};
    weir__buf_u32(&accs, n);
    weir_rejections rejected = {0};
    void *acc = weir__acc_new(), *before = weir__acc_new();
    uint32_t index = 0;
    for (uint32_t g = 0; ok && g < n; g++) {
        weir__read_bytes(&r); /* key */
        weir__read_i64(&r);   /* window start */
        weir__read_i64(&r);   /* window end */
        weir_bytes stored = weir__read_bytes(&r);
        weir_bytes records = weir__read_bytes(&r);
        if (r.bad || !(ok = weir__acc_load(acc, stored.ptr, stored.len))) break;
        weir_reader rr = weir__reader(records.ptr, records.len);
        uint32_t count;
        if (!(ok = weir__batch_count(&rr, &count))) break;
        for (uint32_t i = 0; i < count; i++, index++) {
            weir_record rec;
            if (!weir__read_record(&rr, &rec)) break;
            memcpy(before, acc, weir_accumulator_size);
            weir__failure_clear();
            if (weir_add(acc, &rec) < 0) {
                /* A refused record leaves the accumulator as it was. */
                memcpy(acc, before, weir_accumulator_size);
                weir__reject_record(&rejected, index);
            }
        }
        if (!(ok = weir__reader_done(&rr, "group's records"))) break;
        weir__buf_bytes(&accs, acc, weir_accumulator_size);
    }
    ok = ok && weir__reader_done(&r, "add group list");
    free(acc);
    free(before);
    aggregate_function_list_u8_free(groups);
    if (!ok) {
        free(accs.ptr);
        weir__rejections_drop(&rejected);
        weir__udf_error(err);
        return false;
    }
    ret->accumulators.ptr = accs.ptr;
    ret->accumulators.len = accs.len;
    WEIR__SET_REJECTIONS(ret->rejected, &rejected);
    return true;
}

bool exports_weir_udf_aggregator_merge(weir__list *a, weir__list *b, weir__list *ret,
                                       weir_udf_types_udf_error_t *err) {
    void *x = weir__acc_new(), *y = weir__acc_new();
    weir__failure_clear();
    bool ok = weir__acc_load(x, a->ptr, a->len) && weir__acc_load(y, b->ptr, b->len);
    aggregate_function_list_u8_free(a);
    aggregate_function_list_u8_free(b);
    if (ok) {
        weir_merge(x, y);
        *ret = weir__acc_bytes(x);
    } else {
        weir__udf_error(err);
    }
    free(x);
    free(y);
    return ok;
}

bool exports_weir_udf_aggregator_finish(weir__list *fired, weir_udf_types_batch_t *ret,
                                        weir_udf_types_udf_error_t *err) {
    weir_reader r = weir__reader(fired->ptr, fired->len);
    uint32_t n;
    bool ok = weir__batch_count(&r, &n);
    weir_batch out = weir__batch_new(64 * (size_t)n);
    void *acc = weir__acc_new();
    static weir_out o;
    for (uint32_t g = 0; ok && g < n; g++) {
        weir_bytes key = weir__read_bytes(&r);
        weir_window w;
        w.start = weir__read_i64(&r);
        w.end = weir__read_i64(&r);
        weir_bytes stored = weir__read_bytes(&r);
        if (r.bad || !(ok = weir__acc_load(acc, stored.ptr, stored.len))) break;
        weir_defaults d = {w.end == INT64_MIN ? w.end : w.end - 1, true, key, {NULL, 0}};
        weir__out_reset(&o, d);
        weir__failure_clear();
        if (!(ok = weir_finish(key, w, acc, &o) >= 0)) {
            if (!weir__failure.set) weir_error(WEIR_FAILED, "finish failed without saying why");
            weir__failure.reject = false;
            break;
        }
        weir__out_write(&o, &out);
    }
    ok = ok && weir__reader_done(&r, "finish group list");
    free(acc);
    if (!ok) {
        aggregate_function_list_u8_free(fired);
        free(out.buf.ptr);
        weir__udf_error(err);
        return false;
    }
    weir_buf b = weir__batch_finish(&out);
    aggregate_function_list_u8_free(fired); /* after the last use of the keys it holds */
    ret->ptr = b.ptr;
    ret->len = b.len;
    return true;
}
