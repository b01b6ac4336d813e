/* The flat-map-function world: flat-mapper.flat-map over weir_flat_map. */
#define WEIR_WORLD flat_map_function
#include "flat_map_function.h"
#include "glue.h"

bool exports_weir_udf_flat_mapper_flat_map(weir_udf_types_batch_t *input, weir_udf_types_mapped_t *ret,
                                           weir_udf_types_udf_error_t *err) {
    weir_reader r = weir__reader(input->ptr, input->len);
    uint32_t n;
    if (!weir__batch_count(&r, &n)) {
        weir_udf_types_batch_free(input);
        weir__udf_error(err);
        return false;
    }
    weir_batch out = weir__batch_new(input->len * 2);
    weir_rejections rejected = {0};
    static weir_emitter e;
    for (uint32_t i = 0; i < n; i++) {
        weir_record rec;
        if (!weir__read_record(&r, &rec)) break;
        size_t mark = out.buf.len;
        uint32_t count = out.count;
        weir__emitter_start(&e, &out, weir__defaults_of(&rec));
        weir__failure_clear();
        if (weir_flat_map(&rec, &e) < 0) {
            /* A refused record emits nothing. */
            out.buf.len = mark;
            out.count = count;
            weir__reject_record(&rejected, i);
        } else {
            weir__emitter_flush(&e);
        }
    }
    bool ok = weir__reader_done(&r, "batch");
    weir_udf_types_batch_free(input);
    if (!ok) {
        free(out.buf.ptr);
        weir__rejections_drop(&rejected);
        weir__udf_error(err);
        return false;
    }
    weir_buf b = weir__batch_finish(&out);
    ret->output.ptr = b.ptr;
    ret->output.len = b.len;
    WEIR__SET_REJECTIONS(ret->rejected, &rejected);
    return true;
}
