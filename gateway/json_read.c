/*
 * json_read.c - the gateway's strict JSON reader; see json_read.h.
 *
 * A recursive descent parser (depth capped, so the C stack is bounded)
 * writing into one arena per document: values, strings and packed number
 * buffers are carved from a few large blocks, freed together.  Containers
 * collect their children on a growable stack and copy them into the arena
 * when they close, so an array or object is one contiguous run of values
 * (O(1) indexing).  An array is first read as packed numbers; at its first
 * element that is not a number (or an integer a double cannot hold
 * exactly) it is read again from its '[' as values, so each byte is read
 * at most twice.
 *
 * Numbers: the digits give a 64-bit mantissa m (19 significant digits at
 * most) and a power of ten e.  When m <= 2^53 and |e| <= 22, m and 10^|e|
 * are exact doubles and one multiplication or division rounds correctly
 * (Clinger's fast path).  Otherwise, when long double has a 64-bit (or
 * wider) mantissa, m and 10^|e| (|e| <= 27) are exact long doubles and the
 * one rounded operation leaves an error of half a long double ulp; the
 * second rounding to double is then correct unless the result lies within
 * a few such ulps of a midpoint between two doubles, which is checked.
 * Anything else goes to strtod, under a C locale set for the call only
 * (uselocale), so the decimal point is '.' whatever the process's locale.
 */
#include "json_read.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JR_BLOCK_FIRST ((size_t)16 << 10) /* arena block sizes double */
#define JR_BLOCK_MAX ((size_t)1 << 20)    /* ... up to this */
#define JR_TWO53 ((int64_t)1 << 53)        /* doubles hold every integer to here */
#define JR_NUM_BUF 64                     /* a number this long is copied on the stack */

/* ----------------------------------------------------------------- arena */

typedef struct jr_block {
    struct jr_block *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
} jr_block_t;

struct aas_gw_jr_doc {
    jr_block_t *blocks; /* newest first */
    size_t next_cap;
    aas_gw_jr_value_t root;
};

/* size bytes, 16-aligned, owned by the document; NULL on NOMEM. */
static void *jr_alloc(aas_gw_jr_doc_t *d, size_t size) {
    if (size > SIZE_MAX / 2) return NULL;
    size = (size + 15) & ~(size_t)15;
    jr_block_t *b = d->blocks;
    if (!b || b->cap - b->used < size) {
        size_t cap = d->next_cap > size ? d->next_cap : size;
        if (!(b = malloc(sizeof(*b) + cap))) return NULL;
        b->next = d->blocks;
        b->used = 0;
        b->cap = cap;
        d->blocks = b;
        if (d->next_cap < JR_BLOCK_MAX) d->next_cap *= 2;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

void aas_gw_jr_doc_destroy(aas_gw_jr_doc_t *doc) {
    if (!doc) return;
    for (jr_block_t *b = doc->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(doc);
}

const aas_gw_jr_value_t *aas_gw_jr_root(const aas_gw_jr_doc_t *doc) { return &doc->root; }

/* ---------------------------------------------------------------- parser */

/* A child waiting for its container to close; a member's key position is
 * kept for the error about a duplicate. */
typedef struct {
    aas_gw_jr_value_t v;
    size_t key_pos;
} jr_slot_t;

/* The parser's functions return 0 or -1; the first error (code, byte
 * offset, text) stays here, and only aas_gw_jr_parse turns it into an
 * aas_err_t and a message with line and column. */
typedef struct {
    const unsigned char *s;
    size_t len, pos;
    aas_gw_jr_doc_t *doc; /* NULL: aas_gw_jr_number, no arena */
    jr_slot_t *stack;
    size_t sp, scap;
    double *nums; /* the packed array being read */
    size_t nn, ncap;
    locale_t c_locale; /* (locale_t)0 until strtod is first needed */
    aas_err_t err;
    size_t err_pos;
    char what[96];
} jr_parser_t;

/* A lexed number, before conversion. */
typedef struct {
    size_t start, end; /* the token */
    uint64_t m;        /* the first 19 significant digits */
    int exp10;         /* value = m * 10^exp10, unless truncated */
    int neg, is_int;
    int truncated; /* a non-zero digit after the 19th */
    int int_big;   /* an integer token of more than 19 digits */
} jr_num_t;

static int jr_fail(jr_parser_t *p, size_t pos, const char *fmt, ...) {
    if (p->err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->what, sizeof(p->what), fmt, ap);
    va_end(ap);
    p->err = AAS_ERR_INVAL;
    p->err_pos = pos;
    return -1;
}

static int jr_nomem(jr_parser_t *p) {
    if (!p->err) p->err = AAS_ERR_NOMEM;
    return -1;
}

/* "<wanted> expected near <the byte at pos, or the end>". */
static int jr_unexpected(jr_parser_t *p, size_t pos, const char *wanted) {
    if (pos >= p->len) return jr_fail(p, pos, "%s expected near end of input", wanted);
    unsigned char c = p->s[pos];
    if (c > ' ' && c < 0x7f) return jr_fail(p, pos, "%s expected near '%c'", wanted, c);
    return jr_fail(p, pos, "%s expected near byte 0x%02x", wanted, c);
}

static inline void jr_ws(jr_parser_t *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
        p->pos++;
    }
}

static int jr_push(jr_parser_t *p, const aas_gw_jr_value_t *v, size_t key_pos) {
    if (p->sp == p->scap) {
        size_t cap = p->scap ? p->scap * 2 : 64;
        jr_slot_t *s = realloc(p->stack, cap * sizeof(*s)); /* cap <= 2 x values read */
        if (!s) return jr_nomem(p);
        p->stack = s;
        p->scap = cap;
    }
    p->stack[p->sp].v = *v;
    p->stack[p->sp++].key_pos = key_pos;
    return 0;
}

/* The children stack[base..sp) become out's items, in the arena. */
static int jr_close(jr_parser_t *p, size_t base, aas_gw_jr_value_t *out) {
    size_t n = p->sp - base;
    aas_gw_jr_value_t *items = NULL;
    if (n) {
        if (!(items = jr_alloc(p->doc, n * sizeof(*items)))) return jr_nomem(p);
        for (size_t k = 0; k < n; k++) items[k] = p->stack[base + k].v;
    }
    p->sp = base;
    out->n = n;
    out->u.items = items;
    return 0;
}

/* ---------------------------------------------------------------- numbers */

/* Far past any double (10^-343 .. 10^309): strtod decides those. */
#define JR_EXP_CLAMP 1000000000

#define JR_IS_DIGIT(c) ((unsigned)((c) - '0') <= 9)

/* Lex the number at p->pos: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * Pointer loops: this is where a request body's time goes. */
static inline int jr_lex_number(jr_parser_t *p, jr_num_t *n) {
    const unsigned char *c = p->s + p->pos, *end = p->s + p->len, *d0;
    uint64_t m = 0;
    int64_t exp10 = 0; /* counts of digits cannot overflow an int64 */
    int64_t nd = 0;    /* digits in m, 19 at most */
    int neg = 0, truncated = 0, int_big = 0, is_int = 1;
    if (*c == '-') {
        neg = 1;
        c++;
    }
    if (c == end || !JR_IS_DIGIT(*c)) return jr_fail(p, p->pos, "invalid number");
    if (*c == '0') {
        c++;
        if (c < end && JR_IS_DIGIT(*c)) return jr_fail(p, p->pos, "invalid number (leading zero)");
    } else {
        for (d0 = c; c < end && JR_IS_DIGIT(*c) && c - d0 < 19; c++) m = m * 10 + (*c - '0');
        nd = c - d0;
        for (d0 = c; c < end && JR_IS_DIGIT(*c); c++) truncated |= *c != '0';
        exp10 = c - d0; /* digits past the 19th */
        int_big = exp10 > 0;
    }
    if (c < end && *c == '.') {
        is_int = 0;
        c++;
        if (c == end || !JR_IS_DIGIT(*c))
            return jr_fail(p, p->pos, "invalid number (no digit after '.')");
        if (!m) /* leading zeros: not significant */
            for (; c < end && *c == '0'; c++) exp10--;
        for (d0 = c; c < end && JR_IS_DIGIT(*c) && nd < 19; c++, nd++)
            m = m * 10 + (*c - '0');
        exp10 -= c - d0;
        for (; c < end && JR_IS_DIGIT(*c); c++) truncated |= *c != '0';
    }
    if (c < end && (*c == 'e' || *c == 'E')) {
        int eneg = 0;
        int64_t e = 0;
        is_int = 0;
        c++;
        if (c < end && (*c == '+' || *c == '-')) eneg = *c++ == '-';
        if (c == end || !JR_IS_DIGIT(*c))
            return jr_fail(p, p->pos, "invalid number (no digit in exponent)");
        for (; c < end && JR_IS_DIGIT(*c); c++)
            if (e < JR_EXP_CLAMP) e = e * 10 + (*c - '0');
        exp10 += eneg ? -e : e;
    }
    n->start = p->pos;
    n->end = (size_t)(c - p->s);
    n->m = m;
    n->exp10 = (int)(exp10 < -JR_EXP_CLAMP  ? -JR_EXP_CLAMP
                     : exp10 > JR_EXP_CLAMP ? JR_EXP_CLAMP
                                            : exp10);
    n->neg = neg;
    n->is_int = is_int;
    n->truncated = truncated;
    n->int_big = int_big;
    p->pos = n->end;
    return 0;
}

static const double jr_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* 10^k for k <= 27 is exact in a 64-bit mantissa (5^27 < 2^63). */
static const long double jr_pow10l[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};

/* m x 10^e through long double; 0 when the double it rounds to is certain
 * to be the correctly rounded one (see the top of the file), else -1. */
static int jr_via_long_double(uint64_t m, int e, double *out) {
    /* The type says 64 bits, but an emulator (valgrind) may compute in
     * double: then 1 + 2^-60 is 1, and this path must not be taken. */
    volatile long double one = 1.0L, tiny = 0x1p-60L;
    if (LDBL_MANT_DIG < 64 || one + tiny == one || e < -27 || e > 27) return -1;
    long double r = e < 0 ? (long double)m / jr_pow10l[-e] : (long double)m * jr_pow10l[e];
    double d = (double)r;
    if ((long double)d != r) {
        /* The midpoint between d and its neighbour towards r (d is a
         * positive normal double here: the bits' successor is the next). */
        uint64_t bits;
        double nb;
        memcpy(&bits, &d, sizeof(bits));
        bits = r > d ? bits + 1 : bits - 1;
        memcpy(&nb, &bits, sizeof(nb));
        long double half = fabsl((long double)nb - (long double)d) / 2;
        long double off = fabsl(r - (long double)d);
        long double tol = fabsl(r) * 0x1p-61L; /* 4 ulp of r, half/128 at most */
        if (fabsl(off - half) <= tol) return -1;
    }
    *out = d;
    return 0;
}

/* The token's value by strtod in the C locale; -1 on NOMEM. */
static int jr_strtod(jr_parser_t *p, const jr_num_t *n, double *out) {
    char local[JR_NUM_BUF];
    size_t len = n->end - n->start;
    char *buf = len < sizeof(local) ? local : malloc(len + 1);
    if (!buf) return jr_nomem(p);
    memcpy(buf, p->s + n->start, len); /* the body is not NUL-terminated */
    buf[len] = '\0';
    if (!p->c_locale && !(p->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0))) {
        if (buf != local) free(buf);
        return jr_nomem(p);
    }
    locale_t old = uselocale(p->c_locale);
    *out = strtod(buf, NULL);
    uselocale(old);
    if (buf != local) free(buf);
    return 0;
}

/* The lexed number as a double, exactly as strtod would give it. */
static inline int jr_number_value(jr_parser_t *p, const jr_num_t *n, double *out) {
    double d;
    if (n->m == 0) { /* every digit zero (truncated needs a non-zero one) */
        *out = n->neg ? -0.0 : 0.0;
        return 0;
    }
    if (!n->truncated && n->m <= (uint64_t)1 << 53 && n->exp10 >= -22 && n->exp10 <= 22) {
        d = (double)n->m;
        d = n->exp10 < 0 ? d / jr_pow10[-n->exp10] : d * jr_pow10[n->exp10];
    } else if (n->truncated || jr_via_long_double(n->m, n->exp10, &d)) {
        if (jr_strtod(p, n, &d)) return -1;
        if (isinf(d)) return jr_fail(p, n->start, "real number overflow");
        *out = d; /* strtod's sign, including on an underflow to zero */
        return 0;
    }
    *out = n->neg ? -d : d;
    return 0;
}

/* The number at p->pos as a value; integers must fit int64, as jansson's. */
static inline int jr_number(jr_parser_t *p, aas_gw_jr_value_t *out) {
    jr_num_t n = {0};
    if (jr_lex_number(p, &n)) return -1;
    out->type = AAS_GW_JR_NUMBER;
    if (!n.is_int) {
        out->is_int = 0;
        return jr_number_value(p, &n, &out->u.num);
    }
    if (n.int_big || n.m > (uint64_t)INT64_MAX + n.neg)
        return jr_fail(p, n.start, n.neg ? "too big negative integer" : "too big integer");
    out->is_int = 1;
    /* -(m - 1) - 1: INT64_MIN without overflowing on the way. */
    out->i = n.neg ? (n.m ? -(int64_t)(n.m - 1) - 1 : 0) : (int64_t)n.m;
    out->u.num = n.neg && n.m == 0 ? -0.0 : (double)out->i; /* rounds as strtod */
    return 0;
}

aas_err_t aas_gw_jr_number(const char *s, size_t len, double *out) {
    jr_parser_t p = {.s = (const unsigned char *)s, .len = len};
    jr_num_t n = {0};
    double d = 0;
    int rc = len && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) ? jr_lex_number(&p, &n) : -1;
    if (!rc && p.pos != len) rc = -1;
    if (!rc) rc = jr_number_value(&p, &n, &d);
    if (p.c_locale) freelocale(p.c_locale);
    if (rc) return p.err == AAS_ERR_NOMEM ? AAS_ERR_NOMEM : AAS_ERR_INVAL;
    *out = d;
    return AAS_ERR_OK;
}

/* ---------------------------------------------------------------- strings */

/* Bytes of the valid UTF-8 sequence at s (n bytes left), else 0: no
 * overlong forms, surrogates or code points past U+10FFFF. */
static size_t jr_utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2 || c > 0xF4) return 0;
    size_t k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n < k) return 0;
    for (size_t j = 1; j < k; j++)
        if ((s[j] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) ||
        (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
        return 0;
    return k;
}

static int jr_hex4(const unsigned char *s, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = s[k], h;
        if (c >= '0' && c <= '9') h = c - '0';
        else if (c >= 'a' && c <= 'f') h = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') h = c - 'A' + 10;
        else return -1;
        v = v << 4 | h;
    }
    *out = v;
    return 0;
}

/* The \u escape(s) at s[j] (a backslash) up to end, as UTF-8 into dst. */
static int jr_unicode(jr_parser_t *p, size_t *j, size_t end, char *dst, size_t *o) {
    const unsigned char *s = p->s;
    size_t at = *j;
    unsigned cp, lo;
    if (end - at < 6 || jr_hex4(s + at + 2, &cp)) return jr_fail(p, at, "invalid \\u escape");
    at += 6;
    if (cp == 0) return jr_fail(p, *j, "\\u0000 is not allowed");
    if (cp >= 0xDC00 && cp <= 0xDFFF) return jr_fail(p, *j, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - at < 6 || s[at] != '\\' || s[at + 1] != 'u' || jr_hex4(s + at + 2, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
            return jr_fail(p, *j, "high surrogate in \\u escape without a low one");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        at += 6;
    }
    unsigned char *u = (unsigned char *)dst + *o;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        *o += 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        *o += 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        *o += 3;
    } else {
        u[0] = (unsigned char)(0xF0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        *o += 4;
    }
    *j = at;
    return 0;
}

/* The string at p->pos (its '"'), decoded into the arena.  The decoded
 * form is never longer than the escaped one (\uXXXX: 6 bytes for at most
 * 3, a pair 12 for 4), so the raw length bounds the allocation. */
static int jr_string(jr_parser_t *p, const char **out, size_t *out_n) {
    const unsigned char *s = p->s;
    size_t start = p->pos + 1, end = start;
    while (end < p->len && s[end] != '"') end += s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return jr_fail(p, p->pos, "unterminated string");
    char *dst = jr_alloc(p->doc, end - start + 1);
    if (!dst) return jr_nomem(p);
    size_t j = start, o = 0;
    while (j < end) {
        unsigned char c = s[j];
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            dst[o++] = (char)c;
            j++;
        } else if (c < 0x20) {
            return jr_fail(p, j, "control character 0x%02x in string", c);
        } else if (c >= 0x80) {
            size_t k = jr_utf8_seq(s + j, end - j);
            if (!k) return jr_fail(p, j, "invalid UTF-8 in string");
            memcpy(dst + o, s + j, k);
            o += k;
            j += k;
        } else { /* a backslash; the scan above saw the byte after it */
            char e;
            switch (s[j + 1]) {
            case '"': e = '"'; break;
            case '\\': e = '\\'; break;
            case '/': e = '/'; break;
            case 'b': e = '\b'; break;
            case 'f': e = '\f'; break;
            case 'n': e = '\n'; break;
            case 'r': e = '\r'; break;
            case 't': e = '\t'; break;
            case 'u':
                if (jr_unicode(p, &j, end, dst, &o)) return -1;
                continue;
            default: return jr_fail(p, j, "invalid escape in string");
            }
            dst[o++] = e;
            j += 2;
        }
    }
    dst[o] = '\0';
    *out = dst;
    *out_n = o;
    p->pos = end + 1;
    return 0;
}

/* ------------------------------------------------------------- containers */

static int jr_value(jr_parser_t *p, int depth, aas_gw_jr_value_t *out);

/* Read the array after '[' as packed numbers: 0 done, 1 not all numbers
 * (nothing kept: read it again as values), -1 error. */
static int jr_array_packed(jr_parser_t *p, aas_gw_jr_value_t *out) {
    size_t base = p->nn;
    int all_int = 1;
    for (;;) {
        jr_ws(p);
        if (p->pos < p->len && p->s[p->pos] != '-' && (p->s[p->pos] < '0' || p->s[p->pos] > '9')) {
            p->nn = base;
            return 1;
        }
        if (p->pos >= p->len) return jr_unexpected(p, p->pos, "a value");
        jr_num_t num = {0};
        double d = 0;
        if (jr_lex_number(p, &num)) return -1;
        if (!num.is_int) {
            all_int = 0;
            if (jr_number_value(p, &num, &d)) return -1;
        } else if (num.int_big || num.m > (uint64_t)JR_TWO53) {
            p->nn = base; /* as values: i exact, or "too big integer" */
            return 1;
        } else {
            d = num.neg ? -(double)num.m : (double)num.m; /* exact; "-0" is -0.0 */
        }
        if (p->nn == p->ncap) {
            size_t cap = p->ncap ? p->ncap * 2 : 256;
            double *nums = realloc(p->nums, cap * sizeof(*nums)); /* cap <= len + 256 */
            if (!nums) return jr_nomem(p);
            p->nums = nums;
            p->ncap = cap;
        }
        p->nums[p->nn++] = d;
        jr_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ']') break;
        if (p->pos >= p->len || p->s[p->pos] != ',') return jr_unexpected(p, p->pos, "',' or ']'");
        p->pos++;
    }
    p->pos++;
    size_t n = p->nn - base;
    double *dst = jr_alloc(p->doc, n * sizeof(*dst));
    if (!dst) return jr_nomem(p);
    memcpy(dst, p->nums + base, n * sizeof(*dst));
    p->nn = base;
    out->packed = 1;
    out->is_int = (uint8_t)all_int;
    out->n = n;
    out->u.nums = dst;
    return 0;
}

static int jr_array(jr_parser_t *p, int depth, aas_gw_jr_value_t *out) {
    size_t open = p->pos;
    if (depth > AAS_GW_JR_MAX_DEPTH)
        return jr_fail(p, open, "nested deeper than %d", AAS_GW_JR_MAX_DEPTH);
    out->type = AAS_GW_JR_ARRAY;
    p->pos++;
    jr_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') { /* empty: n 0, no items */
        p->pos++;
        return 0;
    }
    int rc = jr_array_packed(p, out);
    if (rc <= 0) return rc;
    p->pos = open + 1;
    size_t base = p->sp;
    for (;;) {
        aas_gw_jr_value_t v;
        if (jr_value(p, depth, &v) || jr_push(p, &v, 0)) return -1;
        jr_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ']') break;
        if (p->pos >= p->len || p->s[p->pos] != ',') return jr_unexpected(p, p->pos, "',' or ']'");
        p->pos++;
    }
    p->pos++;
    return jr_close(p, base, out);
}

static int jr_key_cmp(const void *a, const void *b) {
    const jr_slot_t *x = *(const jr_slot_t *const *)a, *y = *(const jr_slot_t *const *)b;
    int c = strcmp(x->v.key, y->v.key);
    return c ? c : (x->key_pos > y->key_pos) - (x->key_pos < y->key_pos);
}

/* Refuse a key seen twice among stack[base..sp): the error points at the
 * first second occurrence.  Pairwise for small objects, sorted otherwise,
 * so a body of many keys cannot make this quadratic. */
static int jr_check_dups(jr_parser_t *p, size_t base) {
    size_t n = p->sp - base, dup = SIZE_MAX;
    const jr_slot_t *m = p->stack + base;
    if (n <= 16) {
        for (size_t j = 1; j < n && dup == SIZE_MAX; j++)
            for (size_t i = 0; i < j; i++)
                if (!strcmp(m[i].v.key, m[j].v.key)) {
                    dup = m[j].key_pos;
                    break;
                }
    } else {
        const jr_slot_t **sorted = malloc(n * sizeof(*sorted));
        if (!sorted) return jr_nomem(p);
        for (size_t i = 0; i < n; i++) sorted[i] = m + i;
        qsort(sorted, n, sizeof(*sorted), jr_key_cmp);
        for (size_t i = 1; i < n; i++)
            if (!strcmp(sorted[i - 1]->v.key, sorted[i]->v.key) && sorted[i]->key_pos < dup)
                dup = sorted[i]->key_pos;
        free(sorted);
    }
    if (dup != SIZE_MAX) return jr_fail(p, dup, "duplicate object key");
    return 0;
}

static int jr_object(jr_parser_t *p, int depth, aas_gw_jr_value_t *out) {
    if (depth > AAS_GW_JR_MAX_DEPTH)
        return jr_fail(p, p->pos, "nested deeper than %d", AAS_GW_JR_MAX_DEPTH);
    out->type = AAS_GW_JR_OBJECT;
    p->pos++;
    jr_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return 0;
    }
    size_t base = p->sp;
    for (;;) {
        jr_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"')
            return jr_unexpected(p, p->pos, "a string (an object key)");
        size_t key_pos = p->pos, key_n;
        const char *key;
        if (jr_string(p, &key, &key_n)) return -1;
        jr_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') return jr_unexpected(p, p->pos, "':'");
        p->pos++;
        aas_gw_jr_value_t v;
        if (jr_value(p, depth, &v)) return -1;
        v.key = key;
        if (jr_push(p, &v, key_pos)) return -1;
        jr_ws(p);
        if (p->pos < p->len && p->s[p->pos] == '}') break;
        if (p->pos >= p->len || p->s[p->pos] != ',') return jr_unexpected(p, p->pos, "',' or '}'");
        p->pos++;
    }
    p->pos++;
    if (jr_check_dups(p, base)) return -1;
    return jr_close(p, base, out);
}

static int jr_literal(jr_parser_t *p, const char *word, aas_gw_jr_type_t type,
                      aas_gw_jr_value_t *out) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n))
        return jr_unexpected(p, p->pos, "a value");
    p->pos += n;
    out->type = type;
    return 0;
}

/* The value at p->pos (after white space); depth: of its container. */
static int jr_value(jr_parser_t *p, int depth, aas_gw_jr_value_t *out) {
    memset(out, 0, sizeof(*out));
    jr_ws(p);
    if (p->pos >= p->len) return jr_unexpected(p, p->pos, "a value");
    switch (p->s[p->pos]) {
    case '{': return jr_object(p, depth + 1, out);
    case '[': return jr_array(p, depth + 1, out);
    case '"':
        out->type = AAS_GW_JR_STRING;
        return jr_string(p, &out->u.str, &out->n);
    case 't': return jr_literal(p, "true", AAS_GW_JR_TRUE, out);
    case 'f': return jr_literal(p, "false", AAS_GW_JR_FALSE, out);
    case 'n': return jr_literal(p, "null", AAS_GW_JR_NULL, out);
    default:
        if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
            return jr_number(p, out);
        return jr_unexpected(p, p->pos, "a value");
    }
}

aas_err_t aas_gw_jr_parse(const char *text, size_t len, aas_gw_jr_doc_t **out, char *errstr,
                          size_t errstr_size) {
    aas_gw_jr_doc_t *doc = calloc(1, sizeof(*doc));
    if (!doc) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    /* The first block fits a typical body's values; later ones double. */
    doc->next_cap = JR_BLOCK_FIRST;
    jr_parser_t p = {.s = (const unsigned char *)text, .len = len, .doc = doc};
    int rc = jr_value(&p, 0, &doc->root);
    if (!rc) {
        jr_ws(&p);
        if (p.pos < len) rc = jr_unexpected(&p, p.pos, "end of input");
    }
    free(p.stack);
    free(p.nums);
    if (p.c_locale) freelocale(p.c_locale);
    if (!rc) {
        *out = doc;
        return AAS_ERR_OK;
    }
    aas_gw_jr_doc_destroy(doc);
    if (p.err == AAS_ERR_NOMEM)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    /* Line and column (in characters, from 1) of the error, counted only
     * now that there is one. */
    size_t line = 1, col = 1;
    for (size_t k = 0; k < p.err_pos && k < len; k++) {
        if (p.s[k] == '\n') {
            line++;
            col = 1;
        } else if ((p.s[k] & 0xC0) != 0x80) {
            col++;
        }
    }
    return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                       "malformed JSON at line %zu column %zu: %s", line, col, p.what);
}

/* --------------------------------------------------------------- access */

const aas_gw_jr_value_t *aas_gw_jr_get(const aas_gw_jr_value_t *obj, const char *key) {
    if (!obj || obj->type != AAS_GW_JR_OBJECT) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->u.items[i].key, key)) return &obj->u.items[i];
    return NULL;
}

const aas_gw_jr_value_t *aas_gw_jr_at(const aas_gw_jr_value_t *arr, size_t i,
                                      aas_gw_jr_value_t *tmp) {
    if (!arr || arr->type != AAS_GW_JR_ARRAY || i >= arr->n) return NULL;
    if (!arr->packed) return &arr->u.items[i];
    memset(tmp, 0, sizeof(*tmp));
    tmp->type = AAS_GW_JR_NUMBER;
    tmp->u.num = arr->u.nums[i];
    tmp->is_int = arr->is_int;
    if (tmp->is_int) tmp->i = (int64_t)tmp->u.num; /* exact: |i| <= 2^53 */
    return tmp;
}
