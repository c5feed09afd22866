/*
 * Plugins that misbehave, one per build: the tests compile this file with one of
 *   -DPROCESS_SEGV      process() dereferences NULL
 *   -DPROCESS_HANG      process() never returns
 *   -DPROCESS_OVERCLAIM process() pushes more bytes than its slot holds
 *   -DPROCESS_SCRIBBLE  process() writes 64 MiB past the end of its slot
 *   -DABI_VERSION=N     a descriptor of another ABI version
 *   -DCTOR_SEGV         the library's constructor crashes when it is loaded
 *   -DCTOR_HANG         the library's constructor never returns
 *   -DCTOR_TRACE        the library's constructor appends a line to the file named by
 *                       $PX_TEST_TRACE (how a test sees that the library was loaded)
 *   -DBAD_POINTER       an element name that points nowhere
 *   -DBAD_UTF8          an element name that is not UTF-8
 *   -DDUPLICATE         two elements with one name
 *   -DABI_MINOR=N       a descriptor of ABI minor version N (default 0: as built before 1.1)
 *   -DKLASS=\"source\"    the element's class (default "filter")
 *   -DNAME=x            the element's name (default faulty)
 * Otherwise the element copies its input: a well-behaved plugin.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parallax_plugin.h"

#ifndef NAME
#define NAME faulty
#endif
#define STR2(x) #x
#define STR(x) STR2(x)
#ifndef ABI_VERSION
#define ABI_VERSION PX_ABI_VERSION
#endif
#ifndef ABI_MINOR
#define ABI_MINOR 0
#endif
#ifndef KLASS
#define KLASS "filter"
#endif

static int instance;

static void *create(const px_prop_value *props, size_t n, const char *caps, px_error *error) {
    (void)props, (void)n, (void)caps, (void)error;
    return &instance;
}

static int32_t process(void *self, const px_buffer *in, px_output *out, px_error *error) {
    (void)self, (void)error;
    size_t capacity = 0;
    uint8_t *slot = out->lend(out, &capacity);
    if (!slot) return PX_OK;
#if defined(PROCESS_SEGV)
    int *volatile nowhere = (int *)64;
    *nowhere = 1;
#elif defined(PROCESS_HANG)
    for (;;) pause();
#elif defined(PROCESS_OVERCLAIM)
    return out->push(out, capacity + 1);
#elif defined(PROCESS_SCRIBBLE)
    memset(slot, 0x5a, capacity + ((size_t)64 << 20));
#endif
    size_t n = in->len < capacity ? in->len : capacity;
    memcpy(slot, in->data, n);
    return out->push(out, n);
}

static void destroy(void *self) { (void)self; }

#ifdef CTOR_SEGV
__attribute__((constructor, used)) static void crash(void) {
    int *volatile nowhere = (int *)64;
    *nowhere = 1;
}
#endif

#ifdef CTOR_HANG
__attribute__((constructor, used)) static void hang(void) {
    for (;;) pause();
}
#endif

#ifdef CTOR_TRACE
__attribute__((constructor, used)) static void trace(void) {
    const char *path = getenv("PX_TEST_TRACE");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "loaded by %d\n", (int)getpid());
        fclose(f);
    }
}
#endif

static const px_element_vtable vtable = {create, process, NULL, destroy};

#if defined(BAD_POINTER)
#define ELEMENT_NAME ((const char *)16)
#elif defined(BAD_UTF8)
#define ELEMENT_NAME "bad\xff\xfe"
#else
#define ELEMENT_NAME STR(NAME)
#endif

#define ELEMENT(n)                                                                             \
    {                                                                                          \
        .name = n, .klass = KLASS, .summary = "misbehaves", .doc = "", .sink_caps = "ANY",    \
        .src_caps = "ANY", .caps_rule = PX_CAPS_FIXED, .hints = 0, .props = NULL,            \
        .n_props = 0, .vtable = &vtable,                                                      \
    }

static const px_element_desc elements[] = {
    ELEMENT(ELEMENT_NAME),
#ifdef DUPLICATE
    ELEMENT(ELEMENT_NAME),
#endif
};

static const px_plugin_desc plugin = {
    .abi_version = ABI_VERSION,
    .abi_minor = ABI_MINOR,
    .name = "faulty",
    .version = "0.0.1",
    .description = "misbehaves on purpose",
    .elements = elements,
    .n_elements = sizeof elements / sizeof elements[0],
};

const px_plugin_desc *parallax_plugin_v1(void) { return &plugin; }
