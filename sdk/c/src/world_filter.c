/* The filter-function world: filter.filter over weir_filter (a keep bitmap). */
#define WEIR_WORLD filter_function
#include "filter_function.h"
#include "glue.h"

bool exports_weir_udf_filter_filter(weir_udf_types_batch_t *input, exports_weir_udf_filter_filtered_t *ret,
                                    weir_udf_types_udf_error_t *err) {
    weir_reader r = weir__reader(input->ptr, input->len);
    uint32_t n;
    if (!weir__batch_count(&r, &n)) {
        weir_udf_types_batch_free(input);
        weir__udf_error(err);
        return false;
    }
    uint8_t *keep = calloc(n / 8 + 1, 1);
    if (!keep) abort();
    weir_rejections rejected = {0};
    for (uint32_t i = 0; i < n; i++) {
        weir_record rec;
        if (!weir__read_record(&r, &rec)) break;
        weir__failure_clear();
        int verdict = weir_filter(&rec);
        if (verdict < 0)
            weir__reject_record(&rejected, i);
        else if (verdict > 0)
            keep[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    bool ok = weir__reader_done(&r, "batch");
    weir_udf_types_batch_free(input);
    if (!ok) {
        free(keep);
        weir__rejections_drop(&rejected);
        weir__udf_error(err);
        return false;
    }
    ret->keep.ptr = keep;
    ret->keep.len = (n + 7) / 8;
    WEIR__SET_REJECTIONS(ret->rejected, &rejected);
    return true;
}
