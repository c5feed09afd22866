/*
 * parallax_plugin.h: the C ABI of Parallax plugins, version 1.1.
 *
 * A plugin is a shared library that exports one function,
 *
 *     const px_plugin_desc *parallax_plugin_v1(void);
 *
 * returning a descriptor of the plugin and of its elements. Parallax reads the descriptor in a
 * child process first (a library whose constructor or descriptor crashes costs a warning), then
 * loads the library again where the element runs: in a sandboxed worker process by default, in
 * the pipeline's own process with exec=fused or trust=trusted.
 *
 * Elements are filters (klass "filter": one sink pad, one src pad, the vtable's process()). Minor
 * version 1 adds sources (klass "source": one src pad, produce()) and sinks (klass "sink": one
 * sink pad, render()). A descriptor says which minor version it was written for in
 * abi_minor; 0 (what a plugin built before minor 1 has there) still loads, and Parallax reads
 * only the first four vtable functions of such a plugin. A descriptor with a minor version
 * newer than the header Parallax was built with is refused.
 *
 * Ownership and lifetimes
 * -----------------------
 * - The descriptor and everything it points to (strings, arrays, the vtable) belong to the
 *   plugin and must stay valid and unchanged while the library is loaded; static data is the
 *   usual way. Every string is NUL-terminated UTF-8. Element names are unique in a plugin, are
 *   lowercase ASCII letters, digits and '-', and must not be the name of a built-in element.
 * - create(): the property array, its strings and sink_caps are lent for the call only; copy
 *   what you keep. It returns an instance the plugin owns, or NULL after writing a message into
 *   error->message. Every property of the element's descriptor is passed, in descriptor order,
 *   with its default when the user did not set it.
 * - process(): the input is read-only and lent for the call only: never keep its pointer. To
 *   pass bytes on, call output->lend() for a writable slot of Parallax's memory (a pool slot,
 *   shared with the rest of the pipeline without copying), write at most *capacity bytes into
 *   it and call output->push() with the number written. Any number of lend/push pairs may
 *   happen in one call (zero outputs drops the buffer). A slot lent and not pushed goes back to
 *   the pool when the call returns; after push the plugin must not touch the slot again.
 *   Pushed buffers carry the input's timestamps, offset and flags.
 * - end_of_stream(): called once after the last buffer; it may push what it still holds, the
 *   same way as process() (outputs carry no timestamps). A sink's gets output == NULL (it has
 *   nothing to push; it flushes what it writes). A source's is never called.
 * - produce() (sources, minor 1): called again and again for the next output; pushes zero or
 *   more buffers through output->lend()/push() as process() does, into slots Parallax lends
 *   (its own memory, shared with the rest of the pipeline). Returns PX_OK to be called again,
 *   PX_EOS for end of stream (the buffers it pushed in that call still go out) or PX_ERROR.
 *   Its buffers carry no timestamps; Parallax numbers them and sets their byte offsets.
 * - render() (sinks, minor 1): one buffer, read-only and lent for the call only, as process()
 *   gets it. Returns PX_OK or PX_ERROR.
 * - destroy(): called exactly once per instance that create() returned, last.
 * - Return PX_OK, or PX_ERROR after writing a NUL-terminated message into error->message (at
 *   most PX_ERROR_LEN bytes with the NUL); the pipeline then stops with that message.
 * - Threads: an instance is called from one thread at a time; instances may run concurrently.
 *
 * What the host adds
 * ------------------
 * - Every element gets the property processing-deadline (a time, 5 s by default, 0 = none),
 *   which the plugin never sees and must not declare: in a worker, a process() call that takes
 *   longer gets the worker killed and the run ends with an error naming the buffer. In-process
 *   (exec=fused) nothing can stop a call, so it does not apply there.
 * - Reload: replacing the library file while a pipeline runs (write the new one elsewhere and
 *   rename it over the old: never rewrite a loaded library in place) and sending SIGHUP, or
 *   the control socket's {"cmd": "reload"}, loads the new version in a new worker with the same
 *   properties. The old instance gets end_of_stream() and destroy() after the last buffer it
 *   was given; the new one gets the next. An element running in-process is never reloaded: a
 *   library whose code may still run is never unloaded.
 */
#ifndef PARALLAX_PLUGIN_H
#define PARALLAX_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes: a descriptor's abi_version must equal it. */
#define PX_ABI_VERSION 1u
/* Its minor version: what it adds to version 1 (sources and sinks). A descriptor's abi_minor
   may be any minor version up to this one. */
#define PX_ABI_MINOR 1u
/* The symbol the library exports. */
#define PX_ENTRY_SYMBOL "parallax_plugin_v1"
/* "Unknown" for a buffer's pts, duration and offset. */
#define PX_NONE UINT64_MAX
/* Bytes of error->message, with its terminating NUL. */
#define PX_ERROR_LEN 512

/* Status codes. */
#define PX_OK 0
#define PX_ERROR 1
#define PX_EOS 2 /* produce(): end of stream (minor 1) */

/* Property kinds (px_prop_spec.kind, px_prop_value.kind). */
#define PX_PROP_BOOL 0u   /* int_* fields: 0 or 1 */
#define PX_PROP_INT 1u    /* int_* fields, min <= default <= max */
#define PX_PROP_FLOAT 2u  /* float_* fields, min <= default <= max */
#define PX_PROP_STRING 3u /* string_default, may be NULL */
#define PX_PROP_ENUM 4u   /* enum_values names the nicks; int_default is the default's index */

/* How caps cross an element (px_element_desc.caps_rule). */
#define PX_CAPS_PASSTHROUGH 0u /* what comes out has the caps of what came in */
#define PX_CAPS_FIXED 1u       /* what comes out has the src template's caps */

/* Execution hints (px_element_desc.hints, a bit set). */
#define PX_HINT_CPU 1u     /* computation bound (else memory bound) */
#define PX_HINT_RT_SAFE 2u /* never blocks, allocates or locks per buffer */

typedef struct px_prop_spec {
    const char *name; /* kebab-case */
    const char *doc;  /* one line */
    uint32_t kind;
    uint32_t n_enum_values;
    const char *const *enum_values; /* PX_PROP_ENUM: n_enum_values nicks; else NULL */
    int64_t int_default;
    int64_t int_min;
    int64_t int_max;
    double float_default;
    double float_min;
    double float_max;
    const char *string_default;
} px_prop_spec;

typedef struct px_prop_value {
    const char *name;
    uint32_t kind;
    uint32_t reserved;
    int64_t int_value;        /* BOOL (0/1), INT, ENUM (the index into enum_values) */
    double float_value;       /* FLOAT */
    const char *string_value; /* STRING, may be NULL */
} px_prop_value;

typedef struct px_buffer {
    const uint8_t *data;
    size_t len;
    uint64_t pts;      /* ns, or PX_NONE */
    uint64_t duration; /* ns, or PX_NONE */
    uint64_t offset;   /* bytes, or PX_NONE */
    uint64_t sequence; /* position in the source's output, from 0 */
} px_buffer;

typedef struct px_error {
    char message[PX_ERROR_LEN];
} px_error;

typedef struct px_output px_output;
struct px_output {
    void *host; /* Parallax's; do not touch */
    /* A writable slot of *capacity bytes, or NULL when the pipeline is stopping. */
    uint8_t *(*lend)(px_output *output, size_t *capacity);
    /* Passes on the first len bytes of the slot lent last; PX_ERROR when none is lent or
       len exceeds its capacity. */
    int32_t (*push)(px_output *output, size_t len);
};

typedef struct px_element_vtable {
    void *(*create)(const px_prop_value *props, size_t n_props, const char *sink_caps,
                    px_error *error);
    int32_t (*process)(void *instance, const px_buffer *input, px_output *output,
                       px_error *error);
    int32_t (*end_of_stream)(void *instance, px_output *output, px_error *error);
    void (*destroy)(void *instance);
    /* Minor 1: a source's produce (NULL otherwise). */
    int32_t (*produce)(void *instance, px_output *output, px_error *error);
    /* Minor 1: a sink's render (NULL otherwise). */
    int32_t (*render)(void *instance, const px_buffer *input, px_error *error);
} px_element_vtable;

typedef struct px_element_desc {
    const char *name;
    const char *klass; /* "filter"; minor 1: "source" or "sink" */
    const char *summary;
    const char *doc;
    const char *sink_caps; /* gst caps text: "ANY", "audio/x-raw, format=(string)S16LE"; a
                              source's is ignored */
    const char *src_caps;  /* a sink's is ignored */
    uint32_t caps_rule;
    uint32_t hints;
    const px_prop_spec *props;
    size_t n_props;
    const px_element_vtable *vtable;
} px_element_desc;

typedef struct px_plugin_desc {
    uint32_t abi_version; /* PX_ABI_VERSION */
    union {
        uint32_t abi_minor; /* PX_ABI_MINOR, or an older minor version (0: filters only) */
        uint32_t reserved;  /* its name before minor 1 */
    };
    const char *name;
    const char *version;
    const char *description;
    const px_element_desc *elements;
    size_t n_elements;
} px_plugin_desc;

typedef const px_plugin_desc *(*px_plugin_entry)(void);

#ifdef __cplusplus
}
#endif

#endif /* PARALLAX_PLUGIN_H */
