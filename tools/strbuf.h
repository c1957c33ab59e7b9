/*
 * strbuf.h - a growing, always NUL-terminated text buffer for the CLI's
 * generated files (SVG plots, CSV tables, Markdown reports).  A failed
 * allocation sets `oom` and every later append is dropped, so callers check
 * once at the end.
 */
#ifndef SCALAR_TOOLS_STRBUF_H
#define SCALAR_TOOLS_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *p;    /* NULL until the first append */
    size_t len, cap;
    int oom;    /* an allocation or format failed: the content is incomplete */
} strbuf;

/* Room for `add` more bytes and the NUL; -1 (oom set) if there is none. */
int sb_reserve(strbuf *b, size_t add);
void sb_put(strbuf *b, const char *s, size_t n);
void sb_puts(strbuf *b, const char *s);
/* printf-style append (the C locale's number formats: the CLI never calls
 * setlocale). */
void sb_printf(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Free the text; the buffer is empty again. */
void sb_free(strbuf *b);

#endif
