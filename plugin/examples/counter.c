/*
 * counter: a Parallax plugin in C with a source and a sink (ABI version 1.1).
 *
 * countsrc writes a counting byte pattern (the byte at stream offset o is o % 251) in buffers
 * of `blocksize` bytes, `num-buffers` of them, into slots Parallax lends. sumsink reads every
 * buffer and, at end of stream, writes "<bytes> <adler-32 in hex>\n" to `location`.
 *
 *   cc -shared -fPIC -O2 -I plugin -o libcounter.so plugin/examples/counter.c
 *   parallax-launch --plugin-path . countsrc num-buffers=4 ! sumsink location=sum.txt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallax_plugin.h"

/* --- countsrc --------------------------------------------------------------------------- */

typedef struct {
    int64_t left;
    size_t blocksize;
    uint64_t offset;
} countsrc;

static void *countsrc_create(const px_prop_value *props, size_t n_props, const char *sink_caps,
                             px_error *error) {
    (void)sink_caps;
    countsrc *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(error->message, PX_ERROR_LEN, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n_props; i++) {
        if (strcmp(props[i].name, "num-buffers") == 0) c->left = props[i].int_value;
        if (strcmp(props[i].name, "blocksize") == 0) c->blocksize = (size_t)props[i].int_value;
    }
    return c;
}

static int32_t countsrc_produce(void *instance, px_output *out, px_error *error) {
    countsrc *c = instance;
    if (c->left <= 0) return PX_EOS;
    size_t capacity = 0;
    uint8_t *slot = out->lend(out, &capacity);
    if (!slot) return PX_EOS; /* the pipeline is stopping */
    if (capacity < c->blocksize) {
        snprintf(error->message, PX_ERROR_LEN, "blocksize %zu in a %zu-byte slot",
                 c->blocksize, capacity);
        return PX_ERROR;
    }
    for (size_t i = 0; i < c->blocksize; i++) slot[i] = (uint8_t)((c->offset + i) % 251);
    c->offset += c->blocksize;
    c->left--;
    if (out->push(out, c->blocksize) != PX_OK) {
        snprintf(error->message, PX_ERROR_LEN, "push refused");
        return PX_ERROR;
    }
    return c->left > 0 ? PX_OK : PX_EOS;
}

static void countsrc_destroy(void *instance) { free(instance); }

static const px_element_vtable countsrc_vtable = {
    .create = countsrc_create,
    .destroy = countsrc_destroy,
    .produce = countsrc_produce,
};

static const px_prop_spec countsrc_props[] = {
    {
        .name = "num-buffers",
        .doc = "buffers to produce",
        .kind = PX_PROP_INT,
        .int_default = 10,
        .int_min = 0,
        .int_max = INT64_MAX,
    },
    {
        .name = "blocksize",
        .doc = "bytes per buffer",
        .kind = PX_PROP_INT,
        .int_default = 4096,
        .int_min = 1,
        .int_max = 65536,
    },
};

/* --- sumsink ---------------------------------------------------------------------------- */

typedef struct {
    FILE *out;
    uint32_t a, b;
    uint64_t bytes;
} sumsink;

static void *sumsink_create(const px_prop_value *props, size_t n_props, const char *sink_caps,
                            px_error *error) {
    (void)sink_caps;
    const char *location = NULL;
    for (size_t i = 0; i < n_props; i++) {
        if (strcmp(props[i].name, "location") == 0) location = props[i].string_value;
    }
    if (!location) {
        snprintf(error->message, PX_ERROR_LEN, "sumsink needs location=FILE");
        return NULL;
    }
    sumsink *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(error->message, PX_ERROR_LEN, "out of memory");
        return NULL;
    }
    /* Opened here: a sandboxed worker opens nothing once the element is built. */
    s->out = fopen(location, "w");
    if (!s->out) {
        snprintf(error->message, PX_ERROR_LEN, "cannot open %s", location);
        free(s);
        return NULL;
    }
    s->a = 1;
    return s;
}

static int32_t sumsink_render(void *instance, const px_buffer *in, px_error *error) {
    (void)error;
    sumsink *s = instance;
    for (size_t i = 0; i < in->len; i++) {
        s->a = (s->a + in->data[i]) % 65521;
        s->b = (s->b + s->a) % 65521;
    }
    s->bytes += in->len;
    return PX_OK;
}

static int32_t sumsink_end_of_stream(void *instance, px_output *out, px_error *error) {
    (void)out; /* NULL: a sink pushes nothing */
    sumsink *s = instance;
    if (fprintf(s->out, "%llu %08x\n", (unsigned long long)s->bytes, (s->b << 16) | s->a) < 0 ||
        fflush(s->out) != 0) {
        snprintf(error->message, PX_ERROR_LEN, "cannot write the sum");
        return PX_ERROR;
    }
    return PX_OK;
}

static void sumsink_destroy(void *instance) {
    sumsink *s = instance;
    fclose(s->out);
    free(s);
}

static const px_element_vtable sumsink_vtable = {
    .create = sumsink_create,
    .end_of_stream = sumsink_end_of_stream,
    .destroy = sumsink_destroy,
    .render = sumsink_render,
};

static const px_prop_spec sumsink_props[] = {{
    .name = "location",
    .doc = "file the byte count and Adler-32 are written to",
    .kind = PX_PROP_STRING,
}};

/* --- the plugin ------------------------------------------------------------------------- */

static const px_element_desc elements[] = {
    {
        .name = "countsrc",
        .klass = "source",
        .summary = "Counts bytes modulo 251 (a plugin source written in C)",
        .doc = "The byte at stream offset o is o % 251.",
        .sink_caps = "ANY",
        .src_caps = "ANY",
        .caps_rule = PX_CAPS_FIXED,
        .hints = PX_HINT_CPU,
        .props = countsrc_props,
        .n_props = 2,
        .vtable = &countsrc_vtable,
    },
    {
        .name = "sumsink",
        .klass = "sink",
        .summary = "Writes the byte count and Adler-32 of its input (a plugin sink written in C)",
        .doc = "At end of stream, `location` gets one line: the bytes read and their Adler-32.",
        .sink_caps = "ANY",
        .src_caps = "ANY",
        .caps_rule = PX_CAPS_FIXED,
        .hints = PX_HINT_CPU,
        .props = sumsink_props,
        .n_props = 1,
        .vtable = &sumsink_vtable,
    },
};

static const px_plugin_desc plugin = {
    .abi_version = PX_ABI_VERSION,
    .abi_minor = PX_ABI_MINOR,
    .name = "counter",
    .version = "1.0.0",
    .description = "A counting source and a checksumming sink",
    .elements = elements,
    .n_elements = 2,
};

const px_plugin_desc *parallax_plugin_v1(void) { return &plugin; }
