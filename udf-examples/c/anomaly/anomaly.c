/* weir-world: process-function
 *
 * A keyed anomaly detector. Per key (a sensor), it keeps the running mean
 * and variance of a numeric field (Welford's method) as the key's state,
 * and reports a reading that deviates from the mean by more than `threshold`
 * standard deviations once at least `warmup` readings were seen. Each
 * reading also (re)arms a timer `silence_ms` after it: if the sensor sends
 * nothing before the watermark passes it, the timer reports it as silent.
 *
 * Parameters: `field` (default `value`), `threshold` (default 3), `warmup`
 * (default 5), `silence_ms` (default 60000). Outputs are JSON:
 * {"sensor":..,"alert":"anomaly","value":..,"mean":..,"stddev":..,"ts":..}
 * or {"sensor":..,"alert":"silent","since":..}. */
#include <math.h>
#include <string.h>
#include <weir.h>

struct stats {
    uint64_t n;
    double mean, m2;
    int64_t last; /* timestamp of the last reading */
};
WEIR_STATE(struct stats);

static char field[256];
static double threshold;
static uint64_t warmup;
static int64_t silence_ms;

int weir_init(const weir_params *params) {
    static const char *const known[] = {"field", "threshold", "warmup", "silence_ms", NULL};
    if (weir_params_allow_only(params, known) < 0 || weir_param_f64(params, "threshold", 3.0, &threshold) < 0 ||
        weir_param_u64(params, "warmup", 5, &warmup) < 0 || weir_param_i64(params, "silence_ms", 60000, &silence_ms) < 0)
        return -1;
    const char *f = weir_param(params, "field");
    if (f && strlen(f) >= sizeof field) return weir_error(WEIR_INVALID_PARAMS, "`field` is too long");
    strcpy(field, f ? f : "value");
    weir_log(WEIR_INFO, "watching `%s`: anomalies after %llu readings, silence after %lld ms", field,
             (unsigned long long)warmup, (long long)silence_ms);
    return 0;
}

int weir_process(weir_ctx *ctx, const weir_record *in) {
    double value;
    if (weir_json_f64(in->value, field, &value) < 0) return -1;
    weir_bytes sensor = weir_ctx_key(ctx);
    const struct stats *old = weir_ctx_state(ctx);
    struct stats s = old ? *old : (struct stats){0, 0.0, 0.0, INT64_MIN};
    if (s.n >= warmup) {
        double stddev = sqrt(s.m2 / (double)(s.n - 1));
        if (fabs(value - s.mean) > threshold * stddev) {
            weir_out *o = weir_ctx_emit(ctx);
            weir_out_str(o, "{\"sensor\":");
            weir_out_json_str(o, sensor.ptr, sensor.len);
            weir_out_str(o, ",\"alert\":\"anomaly\",\"value\":");
            weir_out_f64(o, value);
            weir_out_str(o, ",\"mean\":");
            weir_out_f64(o, s.mean);
            weir_out_str(o, ",\"stddev\":");
            weir_out_f64(o, stddev);
            weir_out_str(o, ",\"ts\":");
            weir_out_i64(o, in->timestamp);
            weir_out_str(o, "}");
        }
    }
    /* Welford's update. */
    uint64_t n1 = s.n + 1;
    double delta = value - s.mean;
    double mean1 = s.mean + delta / (double)n1;
    double m2_1 = s.m2 + delta * (value - mean1);
    int64_t last = s.last > in->timestamp ? s.last : in->timestamp;
    struct stats *next = weir_ctx_state_mut(ctx);
    *next = (struct stats){n1, mean1, m2_1, last};
    /* Re-arm the silence timer. */
    if (s.last != INT64_MIN && weir_ctx_delete_timer(ctx, s.last + silence_ms) < 0) return -1;
    return weir_ctx_register_timer(ctx, last + silence_ms);
}

int weir_on_timer(weir_ctx *ctx, int64_t at) {
    (void)at;
    weir_bytes sensor = weir_ctx_key(ctx);
    const struct stats *s = weir_ctx_state(ctx);
    weir_out *o = weir_ctx_emit(ctx);
    weir_out_str(o, "{\"sensor\":");
    weir_out_json_str(o, sensor.ptr, sensor.len);
    weir_out_str(o, ",\"alert\":\"silent\",\"since\":");
    weir_out_i64(o, s ? s->last : 0);
    weir_out_str(o, "}");
    return 0;
}
