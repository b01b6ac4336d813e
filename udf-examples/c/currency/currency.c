/* weir-world: map-function
 *
 * Bench query q1: every bid with its price converted to euros.
 * In: a bid as JSON ({"auction":..,"bidder":..,"price":..,"ts":..}, price in
 * cents). Out: `auction,bidder,price_eur,ts` where price_eur is price * rate
 * printed with exactly three decimals, rounding half away from zero.
 * Parameter `rate` (default 0.908). */
#include <math.h>
#include <weir.h>

static double rate;

int weir_init(const weir_params *params) {
    static const char *const known[] = {"rate", NULL};
    if (weir_params_allow_only(params, known) < 0) return -1;
    return weir_param_f64(params, "rate", 0.908, &rate);
}

int weir_map(const weir_record *in, weir_out *out) {
    weir_json_object bid;
    uint64_t auction, bidder, price, ts;
    if (weir_json_parse(in->value, &bid) < 0 || weir_json_get_u64(&bid, "auction", &auction) < 0 ||
        weir_json_get_u64(&bid, "bidder", &bidder) < 0 || weir_json_get_u64(&bid, "price", &price) < 0 ||
        weir_json_get_u64(&bid, "ts", &ts) < 0)
        return -1;
    uint64_t millis = (uint64_t)round((double)price * rate * 1000.0);
    char frac[5] = {'.', (char)('0' + millis % 1000 / 100), (char)('0' + millis % 100 / 10),
                    (char)('0' + millis % 10), ','};
    weir_out_u64(out, auction);
    weir_out_bytes(out, ",", 1);
    weir_out_u64(out, bidder);
    weir_out_bytes(out, ",", 1);
    weir_out_u64(out, millis / 1000);
    weir_out_bytes(out, frac, sizeof frac);
    weir_out_u64(out, ts);
    return 0;
}
