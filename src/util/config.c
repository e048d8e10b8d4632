/*
 * util/config: a reader for the subset of TOML that config.toml needs.
 *
 * Why not a TOML library: Debian 12 ships none for C that we want to depend
 * on for ten keys, and the subset is small.  What is understood:
 *
 *   [table] and [table.sub] headers ([[array tables]] are parsed and ignored),
 *   bare, quoted and dotted keys, basic strings with escapes (\b \t \n \f \r
 *   \" \\ \uXXXX \UXXXXXXXX), literal strings, both multi-line string forms,
 *   integers (decimal with _, 0x, 0o, 0b), floats (incl. inf/nan), booleans,
 *   arrays (nested, multi-line, trailing comma, comments inside), inline
 *   tables, comments.  Dates are refused with a clear message.
 *
 * The parser walks the text once with a cursor and a line counter, and
 * applies each key as soon as its value is parsed, by its full dotted path
 * ("network.listen").  The network keys are also accepted at top level.
 * "namespace.<ns>.trusted" (a [namespace.<ns>] table) lists producers
 * trusted for that namespace only; <ns> is everything between the fixed
 * prefix and suffix, so a quoted name may hold dots.
 * Unknown keys are parsed (so their syntax is still checked) and ignored.
 * Every error is "line N: why".
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

#define KEY_MAX 512
#define DEPTH_MAX 32 /* nesting of arrays / inline tables: bounds the recursion */

enum vtype { V_STR, V_INT, V_FLOAT, V_BOOL, V_ARRAY, V_TABLE };

typedef struct value {
    enum vtype type;
    char *str; /* V_STR: malloc'd, NUL-terminated (may hold no NULs) */
    int64_t i;
    double f;
    bool b;
    /* V_ARRAY: strings of the elements that are strings, and whether all are */
    char **items;
    unsigned n;
    bool all_strings;
} value;

typedef struct parser {
    const char *p, *end;
    int line;
    char *err;
    size_t errlen;
    irohds_config *c;
    unsigned seen; /* bit per known key, to refuse duplicates */
    int depth;
} parser;

static int fail(parser *ps, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(parser *ps, int line, const char *fmt, ...)
{
    if (ps->err && ps->errlen) {
        int n = snprintf(ps->err, ps->errlen, "line %d: ", line);
        if (n >= 0 && (size_t)n < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

static void value_free(value *v)
{
    free(v->str);
    for (unsigned i = 0; i < v->n; i++)
        free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

/* ---------------------------------------------------------------- lexing */

static bool at_end(const parser *ps) { return ps->p >= ps->end; }
static char peek(const parser *ps) { return at_end(ps) ? '\0' : *ps->p; }
static bool starts(const parser *ps, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, s, n) == 0;
}

static void skip_ws(parser *ps)
{
    while (!at_end(ps) && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

static void skip_comment(parser *ps)
{
    if (peek(ps) == '#')
        while (!at_end(ps) && *ps->p != '\n')
            ps->p++;
}

/* Consume one newline (\n or \r\n); false if not at one. */
static bool eat_newline(parser *ps)
{
    if (starts(ps, "\r\n"))
        ps->p += 2;
    else if (peek(ps) == '\n')
        ps->p++;
    else
        return false;
    ps->line++;
    return true;
}

/* Whitespace, comments and newlines (inside arrays). */
static void skip_blank(parser *ps)
{
    for (;;) {
        skip_ws(ps);
        skip_comment(ps);
        if (!eat_newline(ps))
            return;
    }
}

/* After a key/value or a header only a comment may follow on the line. */
static int expect_eol(parser *ps)
{
    skip_ws(ps);
    skip_comment(ps);
    if (at_end(ps) || eat_newline(ps))
        return 0;
    return fail(ps, ps->line, "unexpected '%c' after value", peek(ps));
}

/* --------------------------------------------------------------- strings */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int sb_utf8(sbuf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return sb_put(b, u, n);
}

static int parse_escape(parser *ps, sbuf *b)
{
    char c = peek(ps);
    ps->p++;
    const char *simple = "b\bt\tn\nf\fr\r\"\"\\\\";
    for (const char *s = simple; *s; s += 2)
        if (c == s[0])
            return sb_put(b, &s[1], 1);
    if (c != 'u' && c != 'U')
        return fail(ps, ps->line, "invalid escape '\\%c' in string", c ? c : '0');
    int digits = c == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (int i = 0; i < digits; i++) {
        char h = peek(ps);
        if (!isxdigit((unsigned char)h))
            return fail(ps, ps->line, "\\%c needs %d hex digits", c, digits);
        cp = cp << 4 | (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
        ps->p++;
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return fail(ps, ps->line, "\\%c escape is not a Unicode scalar value", c);
    return sb_utf8(b, cp);
}

/* Control characters other than tab are not allowed raw in TOML strings. */
static bool bad_char(char c)
{
    unsigned char u = (unsigned char)c;
    return (u < 0x20 && u != '\t') || u == 0x7f;
}

/* ps->p is just after the opening quote(s). */
static int parse_string_body(parser *ps, char quote, bool multi, char **out)
{
    sbuf b = {0};
    int rc = sb_put(&b, "", 0);
    int start = ps->line;
    if (multi)
        eat_newline(ps); /* a newline right after the opening quotes is trimmed */
    while (rc == 0) {
        if (at_end(ps)) {
            rc = fail(ps, start, "unterminated string");
            break;
        }
        char c = *ps->p;
        if (c == quote) {
            if (!multi) {
                ps->p++;
                break;
            }
            size_t run = 0;
            while (ps->p + run < ps->end && ps->p[run] == quote)
                run++;
            if (run >= 3) {
                if (run > 5) {
                    rc = fail(ps, ps->line, "too many quotes closing a multi-line string");
                    break;
                }
                rc = sb_put(&b, ps->p, run - 3); /* up to two quotes belong to the string */
                ps->p += run;
                break;
            }
            rc = sb_put(&b, ps->p, run);
            ps->p += run;
            continue;
        }
        if (multi && (c == '\n' || (c == '\r' && starts(ps, "\r\n")))) {
            rc = sb_put(&b, "\n", 1);
            eat_newline(ps);
            continue;
        }
        if (c == '\\' && quote == '"') {
            ps->p++;
            const char *save = ps->p;
            skip_ws(ps);
            if (multi && (peek(ps) == '\n' || starts(ps, "\r\n"))) {
                /* line-ending backslash: drop it and all blank space after */
                for (;;) {
                    skip_ws(ps);
                    if (!eat_newline(ps))
                        break;
                }
                continue;
            }
            ps->p = save;
            rc = parse_escape(ps, &b);
            continue;
        }
        if (bad_char(c)) {
            rc = fail(ps, ps->line, c == '\n' ? "newline in a single-line string"
                                              : "control character in a string");
            break;
        }
        rc = sb_put(&b, ps->p, 1);
        ps->p++;
    }
    if (rc) {
        free(b.p);
        return rc;
    }
    if (strlen(b.p) != b.n) {
        free(b.p);
        return fail(ps, start, "NUL character in a string");
    }
    *out = b.p;
    return 0;
}

static int parse_string(parser *ps, char **out)
{
    char q = peek(ps);
    bool multi = (q == '"' && starts(ps, "\"\"\"")) || (q == '\'' && starts(ps, "'''"));
    ps->p += multi ? 3 : 1;
    return parse_string_body(ps, q, multi, out);
}

/* --------------------------------------------------------------- numbers */

/* Digits with single underscores between them, in the given base. */
static bool clean_digits(const char *s, size_t n, int base, char *out)
{
    size_t o = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '_') {
            if (i == 0 || i + 1 == n || s[i + 1] == '_')
                return false;
            continue;
        }
        int d = isdigit((unsigned char)c) ? c - '0'
                : isxdigit((unsigned char)c) ? tolower(c) - 'a' + 10 : 99;
        if (d >= base)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

static int parse_number(parser *ps, value *v)
{
    const char *s = ps->p;
    while (!at_end(ps) && (isalnum((unsigned char)*ps->p) || strchr("_+-.:", *ps->p)))
        ps->p++;
    size_t n = (size_t)(ps->p - s);
    char tok[128], clean[128];
    if (n == 0 || n >= sizeof tok)
        return fail(ps, ps->line, n ? "number too long" : "expected a value");
    memcpy(tok, s, n);
    tok[n] = '\0';
    if (strchr(tok, ':') || (n >= 10 && tok[4] == '-' && isdigit((unsigned char)tok[0])))
        return fail(ps, ps->line, "dates and times are not supported ('%s')", tok);
    const char *t = tok;
    bool neg = false;
    if (*t == '+' || *t == '-') {
        neg = *t == '-';
        t++;
    }
    if (!strcmp(t, "inf") || !strcmp(t, "nan")) {
        v->type = V_FLOAT;
        v->f = t[0] == 'i' ? (neg ? -INFINITY : INFINITY) : NAN;
        return 0;
    }
    int base = 10;
    if (t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
        if (t != tok)
            return fail(ps, ps->line, "a sign is not allowed on '%s'", tok);
        base = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
        t += 2;
    }
    if (base == 10 && strpbrk(t, ".eE")) {
        /* float: check the shape, then let strtod do the arithmetic */
        size_t o = 0;
        for (size_t i = 0; t[i]; i++) {
            if (t[i] == '_') {
                if (i == 0 || !isdigit((unsigned char)t[i - 1]) || !isdigit((unsigned char)t[i + 1]))
                    return fail(ps, ps->line, "invalid number '%s'", tok);
                continue;
            }
            if (t[i] == '.' && (i == 0 || !isdigit((unsigned char)t[i - 1]) ||
                                !isdigit((unsigned char)t[i + 1])))
                return fail(ps, ps->line, "invalid number '%s'", tok);
            clean[o++] = t[i];
        }
        clean[o] = '\0';
        if (clean[0] == '0' && isdigit((unsigned char)clean[1]))
            return fail(ps, ps->line, "leading zero in '%s'", tok);
        char *endp;
        errno = 0;
        double f = strtod(clean, &endp);
        if (*endp || !isdigit((unsigned char)clean[0]))
            return fail(ps, ps->line, "invalid number '%s'", tok);
        v->type = V_FLOAT;
        v->f = neg ? -f : f;
        return 0;
    }
    if (!clean_digits(t, strlen(t), base, clean))
        return fail(ps, ps->line, "invalid number '%s'", tok);
    if (base == 10 && clean[0] == '0' && clean[1])
        return fail(ps, ps->line, "leading zero in '%s'", tok);
    char *endp;
    errno = 0;
    unsigned long long u = strtoull(clean, &endp, base);
    if (errno == ERANGE || u > (unsigned long long)INT64_MAX + (neg ? 1u : 0u))
        return fail(ps, ps->line, "integer out of range '%s'", tok);
    v->type = V_INT;
    v->i = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

/* ---------------------------------------------------------------- values */

static int parse_value(parser *ps, value *v, const char *path);
static int parse_keyval(parser *ps, const char *prefix);

static int parse_array(parser *ps, value *v)
{
    int start = ps->line;
    ps->p++; /* '[' */
    v->type = V_ARRAY;
    v->all_strings = true;
    for (;;) {
        skip_blank(ps);
        if (at_end(ps))
            return fail(ps, start, "unterminated array");
        if (peek(ps) == ']') {
            ps->p++;
            return 0;
        }
        value e = {0};
        int rc = parse_value(ps, &e, NULL);
        if (rc) {
            value_free(&e);
            return rc;
        }
        if (e.type == V_STR) {
            char **items = realloc(v->items, (v->n + 1) * sizeof *items);
            if (!items) {
                value_free(&e);
                return -ENOMEM;
            }
            v->items = items;
            v->items[v->n++] = e.str;
            e.str = NULL;
        } else {
            v->all_strings = false;
        }
        value_free(&e);
        skip_blank(ps);
        if (peek(ps) == ',') {
            ps->p++;
            continue;
        }
        if (peek(ps) != ']')
            return fail(ps, ps->line, at_end(ps) ? "unterminated array"
                                                 : "expected ',' or ']' in array");
    }
}

/* { k = v, ... }: applied under path when it names a place, else discarded. */
static int parse_inline_table(parser *ps, value *v, const char *path)
{
    ps->p++; /* '{' */
    v->type = V_TABLE;
    skip_ws(ps);
    if (peek(ps) == '}') {
        ps->p++;
        return 0;
    }
    for (;;) {
        int rc = parse_keyval(ps, path ? path : "\x01");
        if (rc)
            return rc;
        skip_ws(ps);
        char c = peek(ps);
        ps->p++;
        if (c == '}')
            return 0;
        if (c != ',')
            return fail(ps, ps->line, "expected ',' or '}' in inline table");
        skip_ws(ps);
    }
}

static int parse_value(parser *ps, value *v, const char *path)
{
    if (++ps->depth > DEPTH_MAX)
        return fail(ps, ps->line, "values nested too deeply");
    int rc;
    char c = peek(ps);
    if (c == '"' || c == '\'') {
        v->type = V_STR;
        rc = parse_string(ps, &v->str);
    } else if (c == '[') {
        rc = parse_array(ps, v);
    } else if (c == '{') {
        rc = parse_inline_table(ps, v, path);
    } else if (starts(ps, "true") || starts(ps, "false")) {
        v->type = V_BOOL;
        v->b = c == 't';
        ps->p += v->b ? 4 : 5;
        rc = isalnum((unsigned char)peek(ps)) || peek(ps) == '_'
                 ? fail(ps, ps->line, "invalid value")
                 : 0;
    } else if (c == '+' || c == '-' || isdigit((unsigned char)c) || c == 'i' || c == 'n') {
        rc = parse_number(ps, v);
    } else {
        rc = fail(ps, ps->line, at_end(ps) || c == '\n' || c == '\r' || c == '#'
                                    ? "missing value"
                                    : "invalid value starting with '%c'",
                  c);
    }
    ps->depth--;
    return rc;
}

/* ------------------------------------------------------------------ keys */

/* Parse a (possibly dotted, possibly quoted) key and append it to path. */
static int parse_key(parser *ps, char *path, size_t cap, char terminator)
{
    for (;;) {
        skip_ws(ps);
        char seg[KEY_MAX];
        size_t n = 0;
        char c = peek(ps);
        if (c == '"' || c == '\'') {
            if (starts(ps, "\"\"\"") || starts(ps, "'''"))
                return fail(ps, ps->line, "multi-line strings cannot be keys");
            char *s;
            int rc = parse_string(ps, &s);
            if (rc)
                return rc;
            n = strlen(s);
            if (n >= sizeof seg) {
                free(s);
                return fail(ps, ps->line, "key too long");
            }
            memcpy(seg, s, n + 1);
            free(s);
        } else {
            while (!at_end(ps) && (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '-')) {
                if (n + 1 >= sizeof seg)
                    return fail(ps, ps->line, "key too long");
                seg[n++] = *ps->p++;
            }
            seg[n] = '\0';
            if (n == 0)
                return fail(ps, ps->line, at_end(ps) || peek(ps) == '\n' ? "expected a key"
                                                                        : "invalid key character '%c'",
                            peek(ps));
        }
        size_t used = strlen(path);
        if (used + n + 2 > cap)
            return fail(ps, ps->line, "key too long");
        if (used)
            path[used++] = '.';
        memcpy(path + used, seg, n + 1);
        skip_ws(ps);
        if (peek(ps) == '.') {
            ps->p++;
            continue;
        }
        if (peek(ps) != terminator)
            return fail(ps, ps->line, terminator == '=' ? "expected '=' after key"
                                                        : "expected ']' after table name");
        return 0;
    }
}

/* ------------------------------------------------------------- applying */

enum { K_SIZE, K_CHEAP, K_SYNC, K_LEVEL, K_LISTEN, K_BOOT, K_TRUST, K_MDNS, K_DHT,
       K_DHT_LISTEN, K_DHT_BOOT, K_COUNT };

static int key_id(const char *path)
{
    static const char *names[K_COUNT] = {"size_limit", "cheap_warning_seconds", "sync",
                                         "log_level",  "listen", "bootstrap_peers", "trusted",
                                         "mdns", "dht", "dht_listen", "dht_bootstrap"};
    if (!strncmp(path, "network.", 8) && strchr(path + 8, '.') == NULL) {
        for (int k = K_LISTEN; k < K_COUNT; k++)
            if (!strcmp(path + 8, names[k]))
                return k;
        return -1;
    }
    for (int k = 0; k < K_COUNT; k++)
        if (!strcmp(path, names[k]))
            return k;
    return -1;
}

/*
 * "10GiB", "500MB", "1.5 G", "4096".  KB/MB/GB/TB are powers of 1000;
 * KiB/MiB/GiB/TiB and the bare letters K/M/G/T are powers of 1024 (as du and
 * sort -S read them).  Case does not matter.
 */
static int parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},           {"b", 1},
        {"k", 1ull << 10}, {"kib", 1ull << 10}, {"kb", 1000ull},
        {"m", 1ull << 20}, {"mib", 1ull << 20}, {"mb", 1000000ull},
        {"g", 1ull << 30}, {"gib", 1ull << 30}, {"gb", 1000000000ull},
        {"t", 1ull << 40}, {"tib", 1ull << 40}, {"tb", 1000000000000ull},
    };
    while (*s == ' ')
        s++;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    uint64_t ip = 0, frac = 0, scale = 1;
    for (; isdigit((unsigned char)*s); s++)
        if (__builtin_mul_overflow(ip, 10, &ip) || __builtin_add_overflow(ip, (uint64_t)(*s - '0'), &ip))
            return -ERANGE;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return -EINVAL;
        for (; isdigit((unsigned char)*s); s++)
            if (scale < 1000000000ull) { /* digits past the 9th cannot matter */
                frac = frac * 10 + (uint64_t)(*s - '0');
                scale *= 10;
            }
    }
    while (*s == ' ')
        s++;
    size_t ulen = strlen(s);
    while (ulen && s[ulen - 1] == ' ')
        ulen--;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].unit) != ulen || strncasecmp(s, units[i].unit, ulen))
            continue;
        uint64_t m = units[i].mult, whole, part;
        if (__builtin_mul_overflow(ip, m, &whole))
            return -ERANGE;
        /* frac/scale of m, without floating point: m < 2^41, frac < 10^9 */
        unsigned __int128 p = (unsigned __int128)frac * m / scale;
        part = (uint64_t)p;
        if (__builtin_add_overflow(whole, part, out))
            return -ERANGE;
        return 0;
    }
    return -EINVAL;
}

static int set_str(parser *ps, int line, const char *key, const value *v, char *dst, size_t cap)
{
    if (v->type != V_STR)
        return fail(ps, line, "%s must be a string", key);
    if (strlen(v->str) >= cap)
        return fail(ps, line, "%s is too long (at most %zu bytes)", key, cap - 1);
    memcpy(dst, v->str, strlen(v->str) + 1);
    return 0;
}

static int set_list(parser *ps, int line, const char *key, const value *v, size_t max,
                    size_t width, char *dst, unsigned *count, bool node_ids)
{
    if (v->type != V_ARRAY || !v->all_strings)
        return fail(ps, line, "%s must be an array of strings", key);
    if (v->n > max)
        return fail(ps, line, "%s has %u entries, at most %zu allowed", key, v->n, max);
    for (unsigned i = 0; i < v->n; i++) {
        const char *s = v->items[i];
        if (strlen(s) >= width)
            return fail(ps, line, "%s entry %u is too long", key, i + 1);
        if (node_ids) {
            uint8_t id[32];
            if (irohds_hex_decode(s, id, sizeof id))
                return fail(ps, line, "%s entry %u is not a 64-hex-digit node id", key, i + 1);
            irohds_hex_encode(id, sizeof id, dst + i * width); /* canonical lower case */
        } else {
            memcpy(dst + i * width, s, strlen(s) + 1);
        }
    }
    *count = v->n;
    return 0;
}

/* "namespace.<ns>.trusted" -> <ns> copied into out (cut to fit; *len is its
 * full length, which the caller checks); false for any other path. */
static bool ns_trust_path(const char *path, char *out, size_t cap, size_t *len)
{
    static const char prefix[] = "namespace.", suffix[] = ".trusted";
    size_t n = strlen(path), p = sizeof prefix - 1, q = sizeof suffix - 1;
    if (n < p + q || strncmp(path, prefix, p) || strcmp(path + n - q, suffix))
        return false;
    *len = n - p - q;
    size_t k = *len < cap ? *len : cap - 1;
    memcpy(out, path + p, k);
    out[k] = '\0';
    return true;
}

static int apply_ns_trust(parser *ps, int line, const char *ns, size_t full_len, const value *v)
{
    irohds_config *c = ps->c;
    if (full_len == 0 || full_len >= sizeof c->ns_trusted[0].ns)
        return fail(ps, line, "namespace name must be 1 to %zu bytes",
                    sizeof c->ns_trusted[0].ns - 1);
    for (unsigned i = 0; i < c->n_ns_trusted; i++)
        if (!strcmp(c->ns_trusted[i].ns, ns))
            return fail(ps, line, "namespace.%s.trusted is set twice", ns);
    if (v->type != V_ARRAY || !v->all_strings)
        return fail(ps, line, "namespace.%s.trusted must be an array of strings", ns);
    if (v->n > IROHDS_MAX_NS_TRUSTED - c->n_ns_trusted)
        return fail(ps, line, "more than %d namespace trusted entries in all", IROHDS_MAX_NS_TRUSTED);
    for (unsigned i = 0; i < v->n; i++) {
        uint8_t id[32];
        if (strlen(v->items[i]) != 64 || irohds_hex_decode(v->items[i], id, sizeof id))
            return fail(ps, line, "namespace.%s.trusted entry %u is not a 64-hex-digit node id", ns,
                        i + 1);
        irohds_ns_trust *t = &c->ns_trusted[c->n_ns_trusted + i];
        snprintf(t->ns, sizeof t->ns, "%s", ns);
        irohds_hex_encode(id, sizeof id, t->id); /* canonical lower case */
    }
    c->n_ns_trusted += v->n;
    return 0;
}

static int apply(parser *ps, int line, const char *path, const value *v)
{
    char ns[IROHDS_CONFIG_NS_MAX];
    size_t ns_len;
    if (ns_trust_path(path, ns, sizeof ns, &ns_len))
        return apply_ns_trust(ps, line, ns, ns_len, v);
    int k = key_id(path);
    if (k < 0)
        return 0; /* unknown: forward compatible */
    const char *name = path;
    if (ps->seen & (1u << k))
        return fail(ps, line, "%s is set twice", name);
    ps->seen |= 1u << k;
    irohds_config *c = ps->c;
    switch (k) {
    case K_SIZE:
        if (v->type == V_INT) {
            if (v->i < 0)
                return fail(ps, line, "size_limit cannot be negative");
            c->size_limit = (uint64_t)v->i;
            return 0;
        }
        if (v->type == V_STR) {
            int rc = parse_size(v->str, &c->size_limit);
            if (rc == -ERANGE)
                return fail(ps, line, "size_limit \"%s\" is too large", v->str);
            if (rc)
                return fail(ps, line, "size_limit \"%s\" is not a size like \"10GiB\" or \"500MB\"",
                            v->str);
            return 0;
        }
        return fail(ps, line, "size_limit must be a size string like \"10GiB\" or an integer");
    case K_CHEAP: {
        double d = v->type == V_INT ? (double)v->i : v->f;
        if ((v->type != V_INT && v->type != V_FLOAT) || !isfinite(d) || d < 0)
            return fail(ps, line, "cheap_warning_seconds must be a number >= 0");
        c->cheap_warning_seconds = d;
        return 0;
    }
    case K_SYNC:
        if (v->type != V_BOOL)
            return fail(ps, line, "sync must be true or false");
        c->sync = v->b;
        return 0;
    case K_LEVEL: {
        static const char *levels[] = {"error", "warn", "info", "debug"};
        if (v->type == V_STR)
            for (int i = 0; i < 4; i++)
                if (!strcasecmp(v->str, levels[i])) {
                    c->log_level = i;
                    return 0;
                }
        return fail(ps, line, "log_level must be \"error\", \"warn\", \"info\" or \"debug\"");
    }
    case K_LISTEN:
        return set_str(ps, line, "listen", v, c->listen, sizeof c->listen);
    case K_BOOT:
        return set_list(ps, line, "bootstrap_peers", v, IROHDS_MAX_BOOTSTRAP,
                        sizeof c->bootstrap_peers[0], &c->bootstrap_peers[0][0], &c->n_bootstrap,
                        false);
    case K_MDNS:
    case K_DHT:
        if (v->type != V_BOOL)
            return fail(ps, line, "%s must be true or false", k == K_MDNS ? "mdns" : "dht");
        *(k == K_MDNS ? &c->mdns : &c->dht) = v->b;
        return 0;
    case K_DHT_LISTEN:
        return set_str(ps, line, "dht_listen", v, c->dht_listen, sizeof c->dht_listen);
    case K_DHT_BOOT:
        c->dht_bootstrap_set = true;
        return set_list(ps, line, "dht_bootstrap", v, IROHDS_MAX_BOOTSTRAP,
                        sizeof c->dht_bootstrap[0], &c->dht_bootstrap[0][0], &c->n_dht_bootstrap,
                        false);
    case K_TRUST:
        return set_list(ps, line, "trusted", v, IROHDS_MAX_TRUSTED, sizeof c->trusted[0],
                        &c->trusted[0][0], &c->n_trusted, true);
    }
    return 0;
}

/*
 * key = value, with the key joined under prefix.  A prefix of "\x01" marks a
 * discarded context (inline tables inside arrays): keys there name nothing.
 */
static int parse_keyval(parser *ps, const char *prefix)
{
    char path[KEY_MAX * 2] = "";
    int line = ps->line;
    bool discard = prefix[0] == '\x01';
    if (!discard && prefix[0])
        snprintf(path, sizeof path, "%s", prefix);
    int rc = parse_key(ps, path, sizeof path, '=');
    if (rc)
        return rc;
    ps->p++; /* '=' */
    skip_ws(ps);
    value v = {0};
    rc = parse_value(ps, &v, discard ? NULL : path);
    if (rc == 0 && !discard)
        rc = apply(ps, line, path, &v);
    value_free(&v);
    return rc;
}

static int parse_header(parser *ps, char *table, size_t cap)
{
    bool array = starts(ps, "[[");
    ps->p += array ? 2 : 1;
    table[0] = '\0';
    int rc = parse_key(ps, table, cap, ']');
    if (rc)
        return rc;
    ps->p++;
    if (array) {
        if (peek(ps) != ']')
            return fail(ps, ps->line, "expected ']]' after array table name");
        ps->p++;
        /* Arrays of tables hold nothing we read; their keys go nowhere. */
        table[0] = '\x01';
        table[1] = '\0';
    }
    return expect_eol(ps);
}

int irohds_config_parse(irohds_config *c, const char *text, size_t len, char *err, size_t errlen)
{
    parser ps = {.p = text, .end = text + len, .line = 1, .err = err, .errlen = errlen, .c = c};
    if (err && errlen)
        err[0] = '\0';
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *q = text; q < nul; q++)
            line += *q == '\n';
        return fail(&ps, line, "NUL byte in file");
    }
    char table[KEY_MAX * 2] = "";
    for (;;) {
        skip_ws(&ps);
        skip_comment(&ps);
        if (at_end(&ps))
            return 0;
        if (eat_newline(&ps))
            continue;
        int rc;
        if (peek(&ps) == '[')
            rc = parse_header(&ps, table, sizeof table);
        else if ((rc = parse_keyval(&ps, table)) == 0)
            rc = expect_eol(&ps);
        if (rc)
            return rc;
    }
}

void irohds_config_defaults(irohds_config *c)
{
    memset(c, 0, sizeof *c);
    c->size_limit = 10ull << 30;
    c->cheap_warning_seconds = 15.0;
    c->sync = true;
    c->log_level = IROHDS_LOG_INFO;
    snprintf(c->listen, sizeof c->listen, "0.0.0.0:4433");
    c->mdns = true;
    c->dht = true;
    snprintf(c->dht_listen, sizeof c->dht_listen, "0.0.0.0:0");
}

int irohds_config_load(irohds_config *c, const char *path, char *err, size_t errlen)
{
    char *text;
    size_t len;
    int rc = irohds_read_file(path, 1 << 20, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    char why[256];
    rc = irohds_config_parse(c, text, len, why, sizeof why);
    free(text);
    if (rc && err && errlen)
        snprintf(err, errlen, "%s: %s", path, why);
    return rc;
}
