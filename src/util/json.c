/*
 * util/json.c: a growing buffer for writing JSON text (INFO, EXPLAIN,
 * PEERS replies).  Out of memory is sticky: the buffer is dropped and
 * every later append is ignored, so a caller checks b->p once at the end.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void irohds_jbuf_put(irohds_jbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            free(b->p);
            b->p = NULL;
            b->len = b->cap = 0;
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void irohds_jbuf_puts(irohds_jbuf *b, const char *s)
{
    irohds_jbuf_put(b, s, strlen(s));
}

void irohds_jbuf_printf(irohds_jbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        irohds_jbuf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void irohds_jbuf_str(irohds_jbuf *b, const char *s)
{
    irohds_jbuf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            irohds_jbuf_put(b, esc, 2);
        } else if (ch < 0x20) {
            irohds_jbuf_printf(b, "\\u%04x", ch);
        } else {
            irohds_jbuf_put(b, s, 1);
        }
    }
    irohds_jbuf_put(b, "\"", 1);
}

void irohds_jbuf_hex(irohds_jbuf *b, const uint8_t *bytes, size_t n)
{
    irohds_jbuf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        char h[3];
        irohds_hex_encode(bytes + i, 1, h);
        irohds_jbuf_put(b, h, 2);
    }
    irohds_jbuf_put(b, "\"", 1);
}

void irohds_jbuf_num(irohds_jbuf *b, double v)
{
    if (v != v || v > 1e300 || v < -1e300)
        irohds_jbuf_put(b, "null", 4);
    else
        irohds_jbuf_printf(b, "%.6g", v);
}
