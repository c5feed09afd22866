/*
 * gain: a Parallax plugin in C. Multiplies S16LE samples by `volume`, rounding to the nearest
 * integer and clipping, exactly as the built-in `volume` element does for S16LE.
 *
 *   cc -shared -fPIC -O2 -I plugin -o libgain.so plugin/examples/gain.c -lm
 *   parallax-launch --plugin-path . audiotestsrc ! gain volume=0.5 ! fakesink
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallax_plugin.h"

#define S16_CAPS                                                                               \
    "audio/x-raw, format=(string)S16LE, layout=(string)interleaved, "                         \
    "rate=(int)[ 1, 2147483647 ], channels=(int)[ 1, 2147483647 ]"

typedef struct {
    double volume;
} gain;

static void *gain_create(const px_prop_value *props, size_t n_props, const char *sink_caps,
                         px_error *error) {
    (void)sink_caps;
    gain *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(error->message, PX_ERROR_LEN, "out of memory");
        return NULL;
    }
    g->volume = 1.0;
    for (size_t i = 0; i < n_props; i++) {
        if (strcmp(props[i].name, "volume") == 0) g->volume = props[i].float_value;
    }
    return g;
}

static int32_t gain_process(void *instance, const px_buffer *in, px_output *out,
                            px_error *error) {
    gain *g = instance;
    size_t capacity = 0;
    uint8_t *slot = out->lend(out, &capacity);
    if (!slot) return PX_OK; /* stopping */
    if (capacity < in->len) {
        snprintf(error->message, PX_ERROR_LEN, "a %zu-byte buffer in a %zu-byte slot", in->len,
                 capacity);
        return PX_ERROR;
    }
    size_t n = in->len / 2;
    for (size_t i = 0; i < n; i++) {
        int16_t s = (int16_t)(in->data[2 * i] | (in->data[2 * i + 1] << 8));
        double v = (double)s / 32768.0 * g->volume;
        if (v > 1.0) v = 1.0;
        if (v < -1.0) v = -1.0;
        double r = round(v * 32768.0);
        if (r > 32767.0) r = 32767.0;
        if (r < -32768.0) r = -32768.0;
        int16_t o = (int16_t)r;
        slot[2 * i] = (uint8_t)(o & 0xff);
        slot[2 * i + 1] = (uint8_t)((o >> 8) & 0xff);
    }
    /* A trailing odd byte is no sample: zero, as volume leaves it. */
    if (in->len % 2) slot[in->len - 1] = 0;
    return out->push(out, in->len);
}

static void gain_destroy(void *instance) { free(instance); }

static const px_element_vtable gain_vtable = {
    .create = gain_create,
    .process = gain_process,
    .end_of_stream = NULL,
    .destroy = gain_destroy,
};

static const px_prop_spec gain_props[] = {{
    .name = "volume",
    .doc = "volume factor, 1.0=100%",
    .kind = PX_PROP_FLOAT,
    .float_default = 1.0,
    .float_min = 0.0,
    .float_max = 10.0,
}};

static const px_element_desc elements[] = {{
    .name = "gain",
    .klass = "filter",
    .summary = "Multiplies S16LE audio by a factor (a plugin written in C)",
    .doc = "Each sample times `volume`, rounded and clipped at the S16 range.",
    .sink_caps = S16_CAPS,
    .src_caps = S16_CAPS,
    .caps_rule = PX_CAPS_PASSTHROUGH,
    .hints = PX_HINT_CPU | PX_HINT_RT_SAFE,
    .props = gain_props,
    .n_props = 1,
    .vtable = &gain_vtable,
}};

static const px_plugin_desc plugin = {
    .abi_version = PX_ABI_VERSION,
    .name = "gain",
    .version = "1.0.0",
    .description = "A gain on S16LE audio",
    .elements = elements,
    .n_elements = 1,
};

const px_plugin_desc *parallax_plugin_v1(void) { return &plugin; }
