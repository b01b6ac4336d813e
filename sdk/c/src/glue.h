/* Glue shared by the world_*.c files: each defines WEIR_WORLD (the world's
 * prefix in the generated names, e.g. map_function), includes its world's
 * generated header and then this file. Not public API. */
#include <stdlib.h>
#include <string.h>

#include "weir_internal.h"

#define WEIR__CAT_(a, b) a##b
#define WEIR__CAT(a, b) WEIR__CAT_(a, b)
/* A world-prefixed generated name: WT(_string_t) is map_function_string_t in map-function. */
#define WT(suffix) WEIR__CAT(WEIR_WORLD, suffix)

typedef WT(_string_t) weir__string;

/* The failure described by the last callback, as a WIT error. */
static void weir__udf_error(weir_udf_types_udf_error_t *err) {
    weir_error_kind kind = weir__failure.set && !weir__failure.reject ? weir__failure.kind : WEIR_FAILED;
    size_t len;
    char *message = weir__failure_take(&len);
    weir__string s = {(uint8_t *)message, len};
    err->tag = kind == WEIR_INVALID_PARAMS  ? WEIR_UDF_TYPES_UDF_ERROR_INVALID_PARAMS
               : kind == WEIR_INVALID_INPUT ? WEIR_UDF_TYPES_UDF_ERROR_INVALID_INPUT
                                            : WEIR_UDF_TYPES_UDF_ERROR_FAILED;
    err->val.failed = s;
}

/* The collected rejections, moved into the WIT list (the bindings free it). */
static weir_udf_types_list_rejection_t weir__rejections(weir_rejections *rs) {
    weir_udf_types_list_rejection_t list = {NULL, rs->len};
    if (rs->len) {
        list.ptr = malloc(rs->len * sizeof *list.ptr);
        if (!list.ptr) abort();
        for (size_t i = 0; i < rs->len; i++) {
            list.ptr[i].index = rs->ptr[i].index;
            list.ptr[i].reason.ptr = (uint8_t *)rs->ptr[i].reason;
            list.ptr[i].reason.len = rs->ptr[i].reason_len;
        }
    }
    free(rs->ptr);
    rs->ptr = NULL;
    rs->len = rs->cap = 0;
    return list;
}

static void weir__rejections_drop(weir_rejections *rs) {
    for (size_t i = 0; i < rs->len; i++) free(rs->ptr[i].reason);
    free(rs->ptr);
    rs->ptr = NULL;
    rs->len = rs->cap = 0;
}

/* Moves the rejections into `dst`, a world's own (identically laid out) list-of-rejection type. */
#define WEIR__SET_REJECTIONS(dst, rs)                                                   \
    do {                                                                                \
        weir_udf_types_list_rejection_t weir__list_ = weir__rejections(rs);             \
        _Static_assert(sizeof(dst) == sizeof weir__list_, "list<rejection> layouts"); \
        memcpy(&(dst), &weir__list_, sizeof weir__list_);                               \
    } while (0)

bool exports_weir_udf_lifecycle_init(WT(_list_tuple2_string_string_t) * params,
                                     exports_weir_udf_lifecycle_udf_error_t *err) {
    /* NUL-terminated copies of the names and values. */
    size_t n = params->len;
    const char **names = calloc(n + 1, sizeof *names), **values = calloc(n + 1, sizeof *values);
    if (!names || !values) abort();
    for (size_t i = 0; i < n; i++) {
        char *name = malloc(params->ptr[i].f0.len + 1), *value = malloc(params->ptr[i].f1.len + 1);
        if (!name || !value) abort();
        memcpy(name, params->ptr[i].f0.ptr, params->ptr[i].f0.len);
        name[params->ptr[i].f0.len] = 0;
        memcpy(value, params->ptr[i].f1.ptr, params->ptr[i].f1.len);
        value[params->ptr[i].f1.len] = 0;
        names[i] = name;
        values[i] = value;
    }
    WT(_list_tuple2_string_string_free)(params);
    weir_params p = {n, names, values};
    weir__failure_clear();
    int rc = weir_init(&p);
    /* Parameters are read in init only; functions keep what they parsed. */
    for (size_t i = 0; i < n; i++) {
        free((void *)names[i]);
        free((void *)values[i]);
    }
    free(names);
    free(values);
    if (rc < 0) {
        if (!weir__failure.set) weir_error(WEIR_INVALID_PARAMS, "init failed without saying why");
        weir__udf_error(err);
        return false;
    }
    return true;
}

void weir__host_log(weir_level level, const char *message, size_t len) {
    weir__string s = {(uint8_t *)message, len};
    weir_udf_host_log((weir_udf_host_level_t)level, &s);
}

int64_t weir__host_watermark(void) { return weir_udf_host_current_watermark(); }

/* Reads a batch's count; false (error set) when it is short. */
static bool weir__batch_count(weir_reader *r, uint32_t *count) {
    *count = weir__read_u32(r);
    return !r->bad || (weir_error(WEIR_INVALID_INPUT, "the host sent an empty buffer as a batch"), false);
}
