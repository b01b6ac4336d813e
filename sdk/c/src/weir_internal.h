/* The SDK's internals shared by weir.c and the per-world glue (world_*.c). Not public API. */
#ifndef WEIR_INTERNAL_H
#define WEIR_INTERNAL_H

#include "weir.h"

/** A growable byte buffer (malloc'ed; ownership moves to the host's bindings on return). */
typedef struct {
    uint8_t *ptr;
    size_t len, cap;
} weir_buf;

void weir__buf_reserve(weir_buf *b, size_t extra);
void weir__buf_append(weir_buf *b, const void *data, size_t len);
void weir__buf_u8(weir_buf *b, uint8_t v);
void weir__buf_u32(weir_buf *b, uint32_t v);
void weir__buf_i64(weir_buf *b, int64_t v);
void weir__buf_bytes(weir_buf *b, const void *data, size_t len); /* u32 length + bytes */
void weir__buf_put_u32(weir_buf *b, size_t at, uint32_t v);

/** Reads the layout of wit/batch.md; every read checks the bounds. */
typedef struct {
    const uint8_t *ptr;
    size_t len, pos;
    bool bad;
} weir_reader;

weir_reader weir__reader(const uint8_t *ptr, size_t len);
uint32_t weir__read_u32(weir_reader *r);
int64_t weir__read_i64(weir_reader *r);
weir_bytes weir__read_bytes(weir_reader *r);
/** opt-bytes: false when absent. */
bool weir__read_opt_bytes(weir_reader *r, weir_bytes *out);
/** The next record of a batch (after its count was read). */
bool weir__read_record(weir_reader *r, weir_record *out);
/** False (and the error set) when the reader went out of bounds or has bytes left. */
bool weir__reader_done(weir_reader *r, const char *what);

/** A batch being written: its count is patched in at the end. */
typedef struct {
    weir_buf buf;
    uint32_t count;
} weir_batch;

weir_batch weir__batch_new(size_t capacity);
/** Patches the count; the buffer is the finished batch. */
weir_buf weir__batch_finish(weir_batch *b);

/** Defaults of an output record. */
typedef struct {
    int64_t timestamp;
    bool has_key;
    weir_bytes key;
    weir_bytes headers;
} weir_defaults;

weir_defaults weir__defaults_of(const weir_record *r);

struct weir_out {
    weir_defaults d;
    weir_buf value, key, headers;
    bool key_set, has_key, ts_set;
    int64_t ts;
};

void weir__out_reset(weir_out *o, weir_defaults d);
void weir__out_write(weir_out *o, weir_batch *batch);

struct weir_emitter {
    weir_batch *batch;
    weir_defaults d;
    weir_out out;
    bool open;
};

void weir__emitter_start(weir_emitter *e, weir_batch *batch, weir_defaults d);
/** Writes the open record, if any. */
void weir__emitter_flush(weir_emitter *e);

/** The failure the last callback described. */
typedef struct {
    bool set;
    bool reject;
    weir_error_kind kind;
    char message[1024];
} weir_failure;

extern weir_failure weir__failure;
void weir__failure_clear(void);
/** The message, malloc'ed (for the bindings to free), with a fallback when none was set. */
char *weir__failure_take(size_t *len);

/** Rejected records, collected during a call. */
typedef struct {
    uint32_t index;
    char *reason;
    size_t reason_len;
} weir_rejection;

typedef struct {
    weir_rejection *ptr;
    size_t len, cap;
} weir_rejections;

void weir__reject_record(weir_rejections *rs, uint32_t index);

struct weir_params {
    size_t len;
    const char **names;
    const char **values;
};

/** Host imports, provided by the world glue (they differ in type names per world). */
void weir__host_log(weir_level level, const char *message, size_t len);
int64_t weir__host_watermark(void);

#endif
