/*
 * name.c: DNS names as text and as label lists, and IP socket addresses as
 * text.
 *
 * Names are kept in uncompressed wire form everywhere (irohds_dns_name):
 * comparing, splitting off the first label and prepending one are then
 * byte operations, and text only appears at the edges (configuration,
 * pkarr's textual name rules, logs).
 *
 * Socket addresses use the text iroh writes in its TXT records (Rust's
 * SocketAddr Display): "a.b.c.d:port" and "[v6]:port", the IPv6 part in
 * RFC 5952 form as inet_ntop gives it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dns/dns.h"

/* ------------------------------------------------------------ name text */

/* One label's bytes from text at *p up to an unescaped '.' or the end. */
static int label_from_text(const char **p, uint8_t *out, size_t *len)
{
    const char *s = *p;
    size_t n = 0;
    while (*s && *s != '.') {
        unsigned c = (unsigned char)*s++;
        if (c == '\\') {
            if (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
                s[2] <= '9') {
                c = (unsigned)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
                s += 3;
                if (c > 255)
                    return -EINVAL;
            } else if (*s) {
                c = (unsigned char)*s++;
            } else {
                return -EINVAL;
            }
        }
        if (n == IROHDS_DNS_LABEL_MAX)
            return -EINVAL;
        out[n++] = (uint8_t)c;
    }
    *p = s;
    *len = n;
    return 0;
}

int irohds_dns_name_from_text(irohds_dns_name *n, const char *text)
{
    n->len = 0;
    if (strcmp(text, ".") == 0)
        text = "";
    while (*text) {
        uint8_t label[IROHDS_DNS_LABEL_MAX];
        size_t l;
        if (label_from_text(&text, label, &l) != 0 || l == 0)
            return -EINVAL;
        if ((size_t)n->len + 1 + l + 1 > IROHDS_DNS_NAME_MAX)
            return -EINVAL;
        n->wire[n->len] = (uint8_t)l;
        memcpy(n->wire + n->len + 1, label, l);
        n->len = (uint8_t)(n->len + 1 + l);
        if (*text == '.' && *++text == '\0')
            break; /* one trailing dot */
    }
    n->wire[n->len++] = 0;
    return 0;
}

static size_t label_to_text(const uint8_t *l, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = l[i];
        if (c == '.' || c == '\\')
            out[k++] = '\\', out[k++] = (char)c;
        else if (c > 0x20 && c < 0x7f)
            out[k++] = (char)c;
        else
            k += (size_t)sprintf(out + k, "\\%03u", c);
    }
    return k;
}

int irohds_dns_name_to_text(const irohds_dns_name *n, char *out, size_t cap)
{
    char buf[4 * IROHDS_DNS_NAME_MAX + 2];
    size_t k = 0;
    for (size_t pos = 0; pos < n->len && n->wire[pos]; pos += 1 + (size_t)n->wire[pos]) {
        if (pos + 1 + n->wire[pos] > n->len)
            return -EINVAL;
        if (k)
            buf[k++] = '.';
        k += label_to_text(n->wire + pos + 1, n->wire[pos], buf + k);
    }
    if (k == 0)
        buf[k++] = '.';
    if (k + 1 > cap)
        return -ENOBUFS;
    memcpy(out, buf, k);
    out[k] = '\0';
    return (int)k;
}

int irohds_dns_name_prepend(irohds_dns_name *out, const void *label, size_t len,
                            const irohds_dns_name *suffix)
{
    if (len == 0 || len > IROHDS_DNS_LABEL_MAX || 1 + len + suffix->len > IROHDS_DNS_NAME_MAX)
        return -EINVAL;
    irohds_dns_name n;
    n.wire[0] = (uint8_t)len;
    memcpy(n.wire + 1, label, len);
    memcpy(n.wire + 1 + len, suffix->wire, suffix->len);
    n.len = (uint8_t)(1 + len + suffix->len);
    *out = n;
    return 0;
}

bool irohds_dns_name_first(const irohds_dns_name *n, const uint8_t **label, size_t *len,
                           irohds_dns_name *rest)
{
    if (n->len < 2 || n->wire[0] == 0 || 1 + (size_t)n->wire[0] >= n->len)
        return false;
    *label = n->wire + 1;
    *len = n->wire[0];
    if (rest) {
        size_t skip = 1 + (size_t)n->wire[0];
        rest->len = (uint8_t)(n->len - skip);
        memmove(rest->wire, n->wire + skip, rest->len);
    }
    return true;
}

/* ------------------------------------------------------------ addresses */

int irohds_dns_addr_format(const irohds_dns_addr *a, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (a->family == 4 && inet_ntop(AF_INET, a->ip, ip, sizeof ip))
        n = snprintf(out, cap, "%s:%u", ip, a->port);
    else if (a->family == 6 && inet_ntop(AF_INET6, a->ip, ip, sizeof ip))
        n = snprintf(out, cap, "[%s]:%u", ip, a->port);
    else
        return -EINVAL;
    return n < 0 || (size_t)n >= cap ? -ENOBUFS : n;
}

static int parse_port(const char *s, size_t n, uint16_t *port)
{
    unsigned v = 0;
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int irohds_dns_addr_parse(irohds_dns_addr *a, const char *s, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    const char *colon;
    size_t iplen;
    memset(a, 0, sizeof *a);
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close + 1 >= s + n || close[1] != ':')
            return -EINVAL;
        iplen = (size_t)(close - s - 1);
        colon = close + 1;
        a->family = 6;
        s++;
    } else {
        colon = memchr(s, ':', n);
        if (!colon)
            return -EINVAL;
        iplen = (size_t)(colon - s);
        a->family = 4;
    }
    if (iplen == 0 || iplen >= sizeof ip)
        return -EINVAL;
    memcpy(ip, s, iplen);
    ip[iplen] = '\0';
    if (inet_pton(a->family == 4 ? AF_INET : AF_INET6, ip, a->ip) != 1)
        return -EINVAL;
    const char *end = (a->family == 6 ? s - 1 : s) + n;
    return parse_port(colon + 1, (size_t)(end - colon - 1), &a->port);
}

bool irohds_dns_addr_eq(const irohds_dns_addr *a, const irohds_dns_addr *b)
{
    size_t n = a->family == 4 ? 4 : 16;
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, n) == 0;
}
