/* The map-function world: mapper.map over weir_map. */
#define WEIR_WORLD map_function
#include "map_function.h"
#include "glue.h"

bool exports_weir_udf_mapper_map(weir_udf_types_batch_t *input, weir_udf_types_mapped_t *ret,
                                 weir_udf_types_udf_error_t *err) {
    weir_reader r = weir__reader(input->ptr, input->len);
    uint32_t n;
    if (!weir__batch_count(&r, &n)) {
        weir_udf_types_batch_free(input);
        weir__udf_error(err);
        return false;
    }
    weir_batch out = weir__batch_new(input->len + input->len / 4);
    weir_rejections rejected = {0};
    static weir_out o;
    for (uint32_t i = 0; i < n; i++) {
        weir_record rec;
        if (!weir__read_record(&r, &rec)) break;
        weir__out_reset(&o, weir__defaults_of(&rec));
        weir__failure_clear();
        if (weir_map(&rec, &o) < 0)
            weir__reject_record(&rejected, i);
        else
            weir__out_write(&o, &out);
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
