/* weir-world: aggregate-function
 *
 * The average of a numeric JSON field per key and window. Parameters:
 * `field` (a top-level field name, required); `output`: `json` (default,
 * {"key":..,"window_start":..,"window_end":..,"avg":..,"count":..}) or `csv`
 * (`key,window_end,avg`). Records without the field are refused. */
#include <string.h>
#include <weir.h>

struct average {
    double sum;
    uint64_t count;
};
WEIR_ACCUMULATOR(struct average);

static char field[256];
static int csv;

int weir_init(const weir_params *params) {
    static const char *const known[] = {"field", "output", NULL};
    if (weir_params_allow_only(params, known) < 0) return -1;
    const char *f = weir_param(params, "field"), *output = weir_param(params, "output");
    if (!f) return weir_error(WEIR_INVALID_PARAMS, "parameter `field` is required");
    if (strlen(f) >= sizeof field) return weir_error(WEIR_INVALID_PARAMS, "`field` is too long");
    strcpy(field, f);
    if (output && strcmp(output, "csv") && strcmp(output, "json"))
        return weir_error(WEIR_INVALID_PARAMS, "`output` is \"%s\"; expected csv or json", output);
    csv = output && !strcmp(output, "csv");
    return 0;
}

void weir_create(void *acc) { (void)acc; /* zeroed: sum 0, count 0 */ }

int weir_add(void *acc, const weir_record *in) {
    struct average *a = acc;
    double v;
    if (weir_json_f64(in->value, field, &v) < 0) return -1;
    a->sum += v;
    a->count += 1;
    return 0;
}

void weir_merge(void *acc, const void *other) {
    struct average *a = acc;
    const struct average *b = other;
    a->sum += b->sum;
    a->count += b->count;
}

int weir_finish(weir_bytes key, weir_window w, const void *acc, weir_out *out) {
    const struct average *a = acc;
    double avg = a->sum / (double)a->count;
    if (csv) {
        weir_out_bytes(out, key.ptr, key.len);
        weir_out_printf(out, ",%lld,", (long long)w.end);
        weir_out_f64(out, avg);
    } else {
        weir_out_str(out, "{\"key\":");
        weir_out_json_str(out, key.ptr, key.len);
        weir_out_printf(out, ",\"window_start\":%lld,\"window_end\":%lld,\"avg\":", (long long)w.start, (long long)w.end);
        weir_out_f64(out, avg);
        weir_out_printf(out, ",\"count\":%llu}", (unsigned long long)a->count);
    }
    return 0;
}
