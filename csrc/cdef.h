/* What Python sees of the C core, in cffi's cdef dialect: what the
 * product uses and no more.  Kept apart from the build script
 * (csrc/build_ffi.py) so both read plainly; the compiler checks every name
 * here against the header that declares it (fj_error.h, fj_limits.h,
 * fj_payload.h, fj_record.h, fj_stream.h, fj_flux.h).  The payload index is opaque:
 * core.validate() only needs to know whether a payload parses; tests that
 * look inside it build their own module (tests/payload_index.py). */

#define FJ_OK ...
#define FJ_ENOMEM ...
#define FJ_EUNBOUND ...
#define FJ_ELIBFLUX ...
#define FJ_FIRST_SHAPE_ERROR ...
#define FJ_MAX_NAMES ...
#define FJ_WIDE_INT_DIGITS ...

#define FJ_STREAM_HISTORY ...
#define FJ_STREAM_ORDERED ...
#define FJ_STREAM_JOB ...
#define FJ_STREAM_RESOURCE ...
#define FJ_MARK_SENTINEL ...
#define FJ_MARK_END ...
#define FJ_MARK_USER ...
#define FJ_FED_SENTINEL ...
#define FJ_EV_IRREGULAR ...
#define FJ_EV_JOBSPEC ...
#define FJ_EV_R ...
#define FJ_EV_TIE ...
#define FJ_EV_FINAL ...

typedef struct { int code; size_t offset; } fj_error_t;
typedef struct { ...; } fj_payload_t;

void fj_payload_init (fj_payload_t *p);
void fj_payload_release (fj_payload_t *p);
int fj_payload_parse (fj_payload_t *p, const char *buf, size_t len,
                      fj_error_t *err);
const char *fj_strerror (int code);

typedef struct {
    uint64_t responses;
    uint64_t bytes;
    uint64_t events;
    uint64_t filtered_since;
    uint64_t filtered_name;
    uint64_t delivered;
    uint64_t backlog;
    uint64_t peak_backlog;
    uint64_t history;
} fj_stats_t;

typedef struct {
    size_t count;
    int32_t marker;
    int32_t names;
    int more;
    int one;
    double *timestamp;
    int64_t *id;
    int32_t *name;
    uint32_t *flags;
    char *text;
    size_t text_len;
    int text_wide_int;
    size_t nattach;
    uint32_t *attach_off;
    uint32_t *attach_size;
    char *attach;
    size_t attach_len;
    ...;
} fj_batch_t;

typedef struct fj_stream fj_stream_t;

fj_stream_t *fj_stream_create (unsigned flags, double since);
void fj_stream_destroy (fj_stream_t *s);
int fj_stream_feed (fj_stream_t *s, const char *buf, size_t len,
                    fj_error_t *err);
int fj_stream_feed_many (fj_stream_t *s, const char *buf, const size_t *lens,
                         size_t n, fj_error_t *err, size_t *fed);
int fj_stream_feed_cstr (fj_stream_t *s, const char *str, fj_error_t *err);
int fj_stream_filter (fj_stream_t *s, const char *name, size_t len, int deny);
void fj_stream_check_range (fj_stream_t *s, double lo, double hi);
int fj_stream_mark (fj_stream_t *s, int32_t tag);
int fj_stream_end (fj_stream_t *s);
int fj_stream_pop (fj_stream_t *s, fj_batch_t *b, size_t max);
const fj_stats_t *fj_stream_stats (const fj_stream_t *s);
const char *fj_stream_name (const fj_stream_t *s, int32_t i, size_t *len);
fj_batch_t *fj_batch_create (size_t cap);
void fj_batch_destroy (fj_batch_t *b);

/* fj_flux.h: responses straight from libflux, looked up at run time */
#define FJ_DRAIN_IDLE ...
#define FJ_DRAIN_LIMIT ...
#define FJ_DRAIN_SENTINEL ...
#define FJ_DRAIN_REFUSED ...
#define FJ_DRAIN_NO_PAYLOAD ...
#define FJ_DRAIN_ERROR ...
#define FJ_NEXT_POPPED ...

typedef struct {
    size_t taken;
    int errnum;
    const char *errstr;
    fj_error_t err;
} fj_drain_t;

int fj_flux_bind (const char *path, char *errbuf, size_t errlen);
int fj_flux_bound (void);
int fj_flux_drain (fj_stream_t *s, void *future, size_t limit, fj_drain_t *d);
int fj_flux_wait (void *future, double timeout, int sigint_default, int *errnum);
int fj_flux_next (fj_stream_t *s, void *future, double timeout, int sigint_default,
                  fj_batch_t *b, size_t max, size_t limit, fj_drain_t *d, int *errnum);
void fj_flux_reset (void *future);

typedef void (*fj_flux_deliver_f) (void *arg, int rc);
typedef struct {
    fj_stream_t *s;
    fj_flux_deliver_f deliver;
    void *arg;
    fj_drain_t d;
} fj_flux_then_t;
int fj_flux_then (void *future, fj_flux_then_t *t, int *errnum);
extern "Python" void fj_py_deliver (void *arg, int rc);
