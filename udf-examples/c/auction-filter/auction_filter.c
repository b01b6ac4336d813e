/* weir-world: filter-function
 *
 * Bench query q2's predicate: keeps the records whose integer JSON field
 * `field` (default `auction`) is a multiple of `modulo` (default 123). */
#include <string.h>
#include <weir.h>

static char field[256];
static uint64_t modulo;

int weir_init(const weir_params *params) {
    static const char *const known[] = {"field", "modulo", NULL};
    if (weir_params_allow_only(params, known) < 0 || weir_param_u64(params, "modulo", 123, &modulo) < 0) return -1;
    if (modulo == 0) return weir_error(WEIR_INVALID_PARAMS, "`modulo` must be at least 1");
    const char *f = weir_param(params, "field");
    if (f && strlen(f) >= sizeof field) return weir_error(WEIR_INVALID_PARAMS, "`field` is too long");
    strcpy(field, f ? f : "auction");
    return 0;
}

int weir_filter(const weir_record *in) {
    uint64_t v;
    if (weir_json_u64(in->value, field, &v) < 0) return -1;
    return v % modulo == 0;
}
