/*
 * weft-cni, native edition: the CNI plugin the chart installs on every host.
 *
 * A container runtime execs the plugin once per pod operation, so its start-up cost is paid on
 * every pod start. Node.js needs tens of milliseconds to start; this static executable needs
 * about one, and nothing on the host (no libc version, no Node.js, no curl).
 *
 * What it does is what the Node.js plugin (cni/plugin.ts, cni/config.ts) does before it calls the
 * agent: answer VERSION, decode the network configuration and validate it and the CNI_*
 * environment, with the same error codes and messages. Then it forwards the whole invocation
 * (CNI_* as percent-encoded headers, stdin as the body) to the agent's POST /v1/cni/exec, which
 * runs the plugin's own TypeScript (parsing, result versions, chaining) and answers with what to
 * print: HTTP 200 means exit status 0, 422 a CNI error JSON and exit status 1. An agent that
 * cannot be reached, closes early or stays silent for timeoutMs is code 11 (try again later), as
 * in cni/client.ts, so that the runtime retries instead of failing the pod for good.
 *
 * Build: cni/native/build.sh OUTPUT (static, stripped).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NEWEST_VERSION "1.1.0"
#define DEFAULT_AGENT_SOCKET "/var/run/weft/agent.sock"
#define DEFAULT_TIMEOUT_MS 120000.0

/* CNI spec error codes (cni/types.ts ErrorCode). */
enum {
  E_INCOMPATIBLE_VERSION = 1,
  E_INVALID_ENVIRONMENT = 4,
  E_DECODING_FAILURE = 6,
  E_INVALID_NETWORK_CONFIG = 7,
  E_TRY_AGAIN_LATER = 11,
  E_INTERNAL = 999,
};

/* cni/types.ts SUPPORTED_VERSIONS, oldest first. */
static const char *const SUPPORTED[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
#define N_SUPPORTED (sizeof SUPPORTED / sizeof SUPPORTED[0])

/* ---------------------------------------------------------------- growable byte buffer */

typedef struct {
  char *p;
  size_t len, cap;
} buf;

static void out_of_memory(void);

static void buf_reserve(buf *b, size_t more) {
  if (b->len + more + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more + 1) {
    if (cap > SIZE_MAX / 2) out_of_memory();
    cap *= 2;
  }
  char *p = realloc(b->p, cap);
  if (!p) out_of_memory();
  b->p = p;
  b->cap = cap;
}

static void buf_add(buf *b, const void *s, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_ch(buf *b, char c) { buf_add(b, &c, 1); }

static void buf_fmt(buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A NUL-terminated view (the terminator is kept past len by buf_add). */
static const char *buf_cstr(buf *b) {
  buf_reserve(b, 0);
  b->p[b->len] = 0;
  return b->p;
}

/* ---------------------------------------------------------------- output */

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Decodes one UTF-8 sequence at s[0..n); returns its length, or 0 if it is not well formed. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  size_t len;
  uint32_t min;
  if ((s[0] & 0xE0) == 0xC0) {
    len = 2, min = 0x80, *cp = s[0] & 0x1F;
  } else if ((s[0] & 0xF0) == 0xE0) {
    len = 3, min = 0x800, *cp = s[0] & 0x0F;
  } else if ((s[0] & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, *cp = s[0] & 0x07;
  } else {
    return 0;
  }
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (s[i] & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return len;
}

static void utf8_encode(buf *b, uint32_t cp) {
  char t[4];
  if (cp < 0x80) {
    buf_ch(b, (char)cp);
  } else if (cp < 0x800) {
    t[0] = (char)(0xC0 | (cp >> 6)), t[1] = (char)(0x80 | (cp & 0x3F));
    buf_add(b, t, 2);
  } else if (cp < 0x10000) {
    t[0] = (char)(0xE0 | (cp >> 12)), t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    t[2] = (char)(0x80 | (cp & 0x3F));
    buf_add(b, t, 3);
  } else {
    t[0] = (char)(0xF0 | (cp >> 18)), t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), t[3] = (char)(0x80 | (cp & 0x3F));
    buf_add(b, t, 4);
  }
}

/*
 * A string as JSON.stringify writes it. Bytes that are not UTF-8 become U+FFFD, as they do when
 * Node.js decodes the environment or stdin; a lone UTF-16 surrogate (kept from a \u escape, as
 * JSON.parse keeps it, in the 3-byte form UTF-8 would give it) is written as its \u escape.
 */
static void json_string(buf *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  buf_ch(b, '"');
  for (size_t i = 0; i < n;) {
    unsigned char c = u[i];
    if (c == '"' || c == '\\') {
      buf_ch(b, '\\'), buf_ch(b, (char)c), i++;
    } else if (c < 0x20) {
      const char *esc = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t" : NULL;
      if (esc) buf_str(b, esc);
      else buf_fmt(b, "\\u%04x", c);
      i++;
    } else if (c < 0x80) {
      buf_ch(b, (char)c), i++;
    } else if (c == 0xED && i + 2 < n && u[i + 1] >= 0xA0 && u[i + 1] <= 0xBF && (u[i + 2] & 0xC0) == 0x80) {
      buf_fmt(b, "\\u%04x", 0xD000 | ((u[i + 1] & 0x3F) << 6) | (u[i + 2] & 0x3F));
      i += 3;
    } else {
      uint32_t cp;
      size_t len = utf8_decode(u + i, n - i, &cp);
      if (len) buf_add(b, s + i, len), i += len;
      else utf8_encode(b, 0xFFFD), i++;
    }
  }
  buf_ch(b, '"');
}

static void json_cstring(buf *b, const char *s) { json_string(b, s, strlen(s)); }

/* The configuration's cniVersion when it is one we speak, else the newest (plugin.ts versionForErrors). */
static const char *error_version = NEWEST_VERSION;

/* Prints CNI error JSON on stdout and exits with status 1; details are left out when empty. */
static _Noreturn void fail(int code, const char *msg, const char *details) {
  buf o = {0};
  buf_str(&o, "{\"cniVersion\":");
  json_cstring(&o, error_version);
  buf_fmt(&o, ",\"code\":%d,\"msg\":", code);
  json_cstring(&o, msg);
  if (details && *details) {
    buf_str(&o, ",\"details\":");
    json_cstring(&o, details);
  }
  buf_str(&o, "}\n");
  write_all(1, o.p, o.len);
  exit(1);
}

static void out_of_memory(void) {
  static const char msg[] =
      "{\"cniVersion\":\"" NEWEST_VERSION "\",\"code\":999,\"msg\":\"weft-cni failed\",\"details\":\"out of memory\"}\n";
  write_all(1, msg, sizeof msg - 1);
  exit(1);
}

/* "fmt" with one JSON-quoted string in it: `CNI_COMMAND "X" is not supported`. */
static _Noreturn void fail_quoted(int code, const char *before, const char *s, size_t n, const char *after) {
  buf m = {0};
  buf_str(&m, before);
  json_string(&m, s, n);
  buf_str(&m, after);
  fail(code, buf_cstr(&m), NULL);
}

/*
 * A number as JavaScript's Number.prototype.toString writes it: the shortest digits that read
 * back as the same double, positional between 1e-7 and 1e21, exponential outside.
 */
static void js_number(buf *b, double x) {
  if (x != x) {
    buf_str(b, "NaN");
    return;
  }
  if (x == 0) {
    buf_ch(b, '0');
    return;
  }
  if (x > 1.7976931348623157e308 || x < -1.7976931348623157e308) {
    buf_str(b, x < 0 ? "-Infinity" : "Infinity");
    return;
  }
  if (x < 0) buf_ch(b, '-'), x = -x;
  char e[40];
  for (int prec = 0; prec < 17; prec++) {
    snprintf(e, sizeof e, "%.*e", prec, x);
    if (strtod(e, NULL) == x) break;
  }
  /* e = "d.ddde[+-]XX": digits and decimal exponent n (value = 0.digits * 10^n) */
  char digits[24];
  int k = 0;
  char *p = e;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9') digits[k++] = *p;
  digits[k] = 0;
  int n = atoi(p + 1) + 1;
  if (k <= n && n <= 21) {
    buf_str(b, digits);
    for (int i = k; i < n; i++) buf_ch(b, '0');
  } else if (0 < n && n <= 21) {
    buf_add(b, digits, (size_t)n);
    buf_ch(b, '.');
    buf_str(b, digits + n);
  } else if (-6 < n && n <= 0) {
    buf_str(b, "0.");
    for (int i = 0; i < -n; i++) buf_ch(b, '0');
    buf_str(b, digits);
  } else {
    buf_ch(b, digits[0]);
    if (k > 1) buf_ch(b, '.'), buf_str(b, digits + 1);
    buf_fmt(b, "e%c%d", n - 1 < 0 ? '-' : '+', n - 1 < 0 ? 1 - n : n - 1);
  }
}

/* ---------------------------------------------------------------- JSON reading */

typedef struct {
  const char *s;
  size_t n, i;
  char why[256];
} parser;

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static void skip_ws(parser *p) {
  while (p->i < p->n && is_ws(p->s[p->i])) p->i++;
}

/* A byte offset as a position in the JavaScript string: UTF-16 code units. */
static size_t js_position(const parser *p, size_t at) {
  size_t pos = 0;
  for (size_t i = 0; i < at && i < p->n;) {
    uint32_t cp;
    size_t len = utf8_decode((const unsigned char *)p->s + i, p->n - i, &cp);
    pos += len && cp >= 0x10000 ? 2 : 1;
    i += len ? len : 1;
  }
  return pos;
}

/* The byte offset of a position in the JavaScript string (at a character boundary). */
static size_t byte_offset(const parser *p, size_t pos) {
  size_t i = 0;
  for (size_t units = 0; i < p->n && units < pos;) {
    uint32_t cp;
    size_t len = utf8_decode((const unsigned char *)p->s + i, p->n - i, &cp);
    units += len && cp >= 0x10000 ? 2 : 1;
    i += len ? len : 1;
  }
  return i;
}

/*
 * Sets the reason for a syntax error at p->i and returns -1. The wording is V8's (JSON.parse in
 * Node.js 20 and 22), so that details read as they do from the Node.js plugin: a message for the
 * place when the grammar names one (expected), else one for the token found there.
 */
static int syntax_error(parser *p, const char *expected) {
  size_t at = p->i, cap = sizeof p->why, pos = js_position(p, at);
  if (expected) {
    snprintf(p->why, cap, "%s in JSON at position %zu", expected, pos);
  } else if (at >= p->n) {
    snprintf(p->why, cap, "Unexpected end of JSON input");
  } else if (p->s[at] == '-' || is_digit(p->s[at])) {
    snprintf(p->why, cap, "Unexpected number in JSON at position %zu", pos);
  } else if (p->s[at] == '"') {
    snprintf(p->why, cap, "Unexpected string in JSON at position %zu", pos);
  } else {
    /* the source from 10 characters before the token to 10 from it (UTF-16 units, as V8 counts) */
    size_t from = 0, to = p->n, length = js_position(p, p->n);
    const char *lead = "", *trail = "";
    if (length > 21) {
      if (pos >= 10) from = byte_offset(p, pos - 10), lead = "...";
      if (pos + 10 < length) to = byte_offset(p, pos + 10), trail = "...";
    }
    /* the token is one UTF-16 unit: of a character past U+FFFF, its high surrogate */
    uint32_t cp;
    size_t len = utf8_decode((const unsigned char *)p->s + at, p->n - at, &cp);
    buf token = {0};
    if (len && cp >= 0x10000) utf8_encode(&token, 0xD800 + ((cp - 0x10000) >> 10));
    else buf_add(&token, p->s + at, len ? len : 1);
    snprintf(p->why, cap, "Unexpected token '%s', %s\"%.*s\"%s is not valid JSON", token.p, lead, (int)(to - from),
             p->s + from, trail);
    free(token.p);
  }
  return -1;
}

static int hex4(const char *s, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    *v = *v * 16 + (uint32_t)d;
  }
  return 0;
}

/* A string token at p->i (the opening quote); its decoded UTF-8 goes to out unless out is NULL. */
static int read_string(parser *p, buf *out) {
  p->i++;
  for (;;) {
    if (p->i >= p->n) return syntax_error(p, "Unterminated string");
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == '"') {
      p->i++;
      return 0;
    }
    if (c < 0x20) return syntax_error(p, "Bad control character in string literal");
    if (c != '\\') {
      if (out) buf_ch(out, (char)c);
      p->i++;
      continue;
    }
    p->i++;
    char e = p->i < p->n ? p->s[p->i] : 0;
    const char *simple = e ? strchr("\"\\/bfnrt", e) : NULL;
    if (simple) {
      static const char to[] = "\"\\/\b\f\n\r\t";
      if (out) buf_ch(out, to[simple - "\"\\/bfnrt"]);
      p->i++;
      continue;
    }
    if (e != 'u') {
      if (p->i >= p->n) return syntax_error(p, "Unterminated string");
      return syntax_error(p, "Bad escaped character");
    }
    uint32_t cp = 0;
    for (int k = 1; k <= 4; k++) {
      p->i++;
      uint32_t d;
      char h[4] = {'0', '0', '0', p->i < p->n ? p->s[p->i] : 'x'};
      if (hex4(h, &d) < 0) return syntax_error(p, "Bad Unicode escape");
      cp = cp * 16 + d;
    }
    p->i++;
    if (cp >= 0xD800 && cp <= 0xDBFF && p->i + 6 <= p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
      uint32_t lo;
      if (hex4(p->s + p->i + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p->i += 6;
      }
    }
    /* a lone surrogate is kept (JSON.parse keeps it too), in the 3-byte form json_string knows */
    if (out) utf8_encode(out, cp);
  }
}

static int read_number(parser *p) {
  if (p->s[p->i] == '-') {
    p->i++;
    if (!(p->i < p->n && is_digit(p->s[p->i]))) return syntax_error(p, "No number after minus sign");
  }
  if (p->s[p->i] == '0') {
    p->i++;
    if (p->i < p->n && is_digit(p->s[p->i])) return syntax_error(p, "Unexpected number");
  } else {
    while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
  }
  if (p->i < p->n && p->s[p->i] == '.') {
    p->i++;
    if (!(p->i < p->n && is_digit(p->s[p->i]))) return syntax_error(p, "Unterminated fractional number");
    while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    p->i++;
    if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
    if (!(p->i < p->n && is_digit(p->s[p->i]))) return syntax_error(p, "Exponent part is missing a number");
    while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
  }
  return 0;
}

static int read_literal(parser *p, const char *word) {
  for (const char *w = word; *w; w++, p->i++)
    if (p->i >= p->n || p->s[p->i] != *w) return syntax_error(p, NULL);
  return 0;
}

/* A scalar value (string, number, true, false, null) at p->i. */
static int read_scalar(parser *p) {
  char c = p->i < p->n ? p->s[p->i] : 0;
  if (c == '"') return read_string(p, NULL);
  if (c == '-' || is_digit(c)) return read_number(p);
  if (c == 't') return read_literal(p, "true");
  if (c == 'f') return read_literal(p, "false");
  if (c == 'n') return read_literal(p, "null");
  return syntax_error(p, NULL);
}

/* ws, a key string, ws, ':' (first: right after '{', where '}' could have come instead) */
static int read_key(parser *p, buf *key, int first) {
  skip_ws(p);
  if (p->i >= p->n || p->s[p->i] != '"')
    return syntax_error(p, first ? "Expected property name or '}'" : "Expected double-quoted property name");
  if (read_string(p, key) < 0) return -1;
  skip_ws(p);
  /* (V8 names the colon only after an object's first key) */
  if (p->i >= p->n || p->s[p->i] != ':') return syntax_error(p, first ? "Expected ':' after property name" : NULL);
  p->i++;
  return 0;
}

/*
 * Moves past one value, checking its syntax. Iterative, with its own stack of open containers,
 * so that no nesting depth can overflow the C stack.
 */
static int skip_value(parser *p) {
  buf open = {0};
  int rc = -1;
  for (;;) {
    skip_ws(p);
    char c = p->i < p->n ? p->s[p->i] : 0;
    if (c == '{' || c == '[') {
      p->i++;
      skip_ws(p);
      char close = c == '{' ? '}' : ']';
      if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
      } else {
        buf_ch(&open, c);
        if (c == '{' && read_key(p, NULL, 1) < 0) goto out;
        continue; /* the first member's value */
      }
    } else if (read_scalar(p) < 0) {
      goto out;
    }
    /* after a value: close containers until one continues with ',' */
    for (;;) {
      if (open.len == 0) {
        rc = 0;
        goto out;
      }
      skip_ws(p);
      char top = open.p[open.len - 1];
      char cur = p->i < p->n ? p->s[p->i] : 0;
      if (cur == ',') {
        p->i++;
        if (top == '{' && read_key(p, NULL, 0) < 0) goto out;
        break;
      }
      if (cur == (top == '{' ? '}' : ']')) {
        p->i++;
        open.len--;
        continue;
      }
      syntax_error(p, top == '{' ? "Expected ',' or '}' after property value" : "Expected ',' or ']' after array element");
      goto out;
    }
  }
out:
  free(open.p);
  return rc;
}

/* One member of an object we look at: where its value is and of which kind. */
typedef struct {
  const char *name;
  char kind; /* 0 absent, 's' string, 'n' number, 'b' boolean, 'z' null, 'a' array, 'o' object */
  size_t at, end;
} field;

static char kind_of(char c) {
  return c == '"' ? 's' : c == '{' ? 'o' : c == '[' ? 'a' : c == 't' || c == 'f' ? 'b' : c == 'n' ? 'z' : 'n';
}

/*
 * Reads the object at p->i, recording the members named in fields (the last of duplicate keys
 * wins, as with JSON.parse). Returns 0, or -1 with p->why set.
 */
static int read_object(parser *p, field *fields, size_t nfields) {
  buf key = {0};
  int rc = -1, first = 1;
  p->i++; /* '{' */
  skip_ws(p);
  if (p->i < p->n && p->s[p->i] == '}') {
    p->i++;
    rc = 0;
    goto out;
  }
  for (;;) {
    key.len = 0;
    if (read_key(p, &key, first) < 0) goto out;
    first = 0;
    skip_ws(p);
    size_t at = p->i;
    if (skip_value(p) < 0) goto out;
    for (size_t f = 0; f < nfields; f++) {
      if (strlen(fields[f].name) == key.len && memcmp(fields[f].name, key.p ? key.p : "", key.len) == 0) {
        fields[f].kind = kind_of(p->s[at]);
        fields[f].at = at;
        fields[f].end = p->i;
      }
    }
    skip_ws(p);
    char c = p->i < p->n ? p->s[p->i] : 0;
    if (c != '}' && c != ',') {
      syntax_error(p, "Expected ',' or '}' after property value");
      goto out;
    }
    p->i++;
    if (c == '}') break;
  }
  rc = 0;
out:
  free(key.p);
  return rc;
}

/* The decoded text of a string field (the document is known to be valid). */
static void field_string(const parser *doc, const field *f, buf *out) {
  parser p = {.s = doc->s, .n = f->end, .i = f->at};
  read_string(&p, out);
  buf_cstr(out);
}

static double field_number(const parser *doc, const field *f) {
  char tmp[400];
  size_t n = f->end - f->at;
  if (n >= sizeof tmp) {
    /* a number this long is all digits; strtod reads it from a copy of any size */
    char *big = malloc(n + 1);
    if (!big) out_of_memory();
    memcpy(big, doc->s + f->at, n);
    big[n] = 0;
    double v = strtod(big, NULL);
    free(big);
    return v;
  }
  memcpy(tmp, doc->s + f->at, n);
  tmp[n] = 0;
  return strtod(tmp, NULL);
}

/* A value written back the way JSON.stringify(JSON.parse(text)) writes it: no spaces, canonical strings and numbers. */
static void field_json(const parser *doc, const field *f, buf *out) {
  parser p = {.s = doc->s, .n = f->end, .i = f->at};
  while (p.i < p.n) {
    char c = p.s[p.i];
    if (is_ws(c)) {
      p.i++;
    } else if (c == '"') {
      buf s = {0};
      read_string(&p, &s);
      json_string(out, s.p ? s.p : "", s.len);
      free(s.p);
    } else if (c == '-' || is_digit(c)) {
      field num = {.at = p.i};
      read_number(&p);
      num.end = p.i;
      double v = field_number(doc, &num);
      if (v > 1.7976931348623157e308 || v < -1.7976931348623157e308) buf_str(out, "null");
      else js_number(out, v);
    } else {
      buf_ch(out, c);
      p.i++;
    }
  }
}

/* ---------------------------------------------------------------- the invocation */

enum { F_CNIVERSION, F_NAME, F_TYPE, F_AGENTSOCKET, F_TIMEOUTMS, F_MTU, F_FAMILIES, F_PREVRESULT, N_FIELDS };

typedef struct {
  parser doc;
  field f[N_FIELDS];
  int decoded;   /* 1 when stdin is a JSON object */
  int not_object; /* valid JSON, but not an object */
} config;

static void decode_config(config *c, const char *s, size_t n) {
  static const char *const names[N_FIELDS] = {"cniVersion", "name",     "type",     "agentSocket",
                                              "timeoutMs",  "mtu",      "families", "prevResult"};
  memset(c, 0, sizeof *c);
  c->doc.s = s;
  c->doc.n = n;
  for (int i = 0; i < N_FIELDS; i++) c->f[i].name = names[i];
  parser *p = &c->doc;
  skip_ws(p);
  char first = p->i < p->n ? p->s[p->i] : 0;
  if (first == '{') {
    if (read_object(p, c->f, N_FIELDS) < 0) return;
  } else {
    if (skip_value(p) < 0) return;
  }
  skip_ws(p);
  if (p->i < p->n) {
    snprintf(p->why, sizeof p->why, "Unexpected non-whitespace character after JSON at position %zu",
             js_position(p, p->i));
    return;
  }
  if (first == '{') c->decoded = 1;
  else c->not_object = 1;
}

static int supported_version(const char *v) {
  for (size_t i = 0; i < N_SUPPORTED; i++)
    if (strcmp(v, SUPPORTED[i]) == 0) return 1;
  return 0;
}

/* config.ts compareVersions: dotted parts compared as numbers (Number("") is 0, junk is NaN). */
static double version_part(const char **s) {
  const char *end = strchr(*s, '.');
  size_t len = end ? (size_t)(end - *s) : strlen(*s);
  double v = 0;
  for (size_t i = 0; i < len; i++) {
    if (!is_digit((*s)[i])) {
      v = 0.0 / 0.0;
      break;
    }
    v = v * 10 + ((*s)[i] - '0');
  }
  *s = end ? end + 1 : *s + len;
  return v;
}

static double compare_versions(const char *a, const char *b) {
  while (*a || *b) {
    double d = version_part(&a) - version_part(&b);
    if (d != 0) return d; /* NaN is "not 0" too, as in the TypeScript */
  }
  return 0;
}

static void require_env(const char *key, const char **out) {
  const char *v = getenv(key);
  if (!v || !*v) {
    buf m = {0};
    buf_fmt(&m, "%s is not set", key);
    fail(E_INVALID_ENVIRONMENT, buf_cstr(&m), NULL);
  }
  *out = v;
}

/* JavaScript's \s: the whitespace and line terminators of ECMAScript. */
static int js_space(uint32_t cp) {
  return cp == 0x09 || cp == 0x0A || cp == 0x0B || cp == 0x0C || cp == 0x0D || cp == 0x20 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

/* config.ts validateIfname: at most 15 UTF-16 code units, not "." or "..", no '/', ':' or space. */
static void validate_ifname(const char *name) {
  size_t n = strlen(name), units = 0;
  int bad = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
  for (size_t i = 0; i < n && !bad;) {
    uint32_t cp;
    size_t len = utf8_decode((const unsigned char *)name + i, n - i, &cp);
    if (!len) cp = 0xFFFD, len = 1;
    units += cp >= 0x10000 ? 2 : 1;
    if (cp == '/' || cp == ':' || js_space(cp)) bad = 1;
    i += len;
  }
  if (bad || units > 15) fail_quoted(E_INVALID_ENVIRONMENT, "CNI_IFNAME ", name, n, " is not a valid interface name");
}

/* config.ts CONTAINER_ID_RE: ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ */
static void validate_container_id(const char *id) {
  int ok = 1;
  for (size_t i = 0; id[i] && ok; i++) {
    char c = id[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c);
    ok = alnum || (i > 0 && (c == '_' || c == '.' || c == '-'));
  }
  if (!ok) fail_quoted(E_INVALID_ENVIRONMENT, "CNI_CONTAINERID ", id, strlen(id), " is not valid");
}

/* config.ts parseCniArgs: "K1=V1;K2=V2", every pair with a non-empty key. */
static void validate_cni_args(const char *raw) {
  if (!raw) return;
  for (const char *pair = raw;;) {
    const char *end = strchr(pair, ';');
    size_t len = end ? (size_t)(end - pair) : strlen(pair);
    const char *eq = memchr(pair, '=', len);
    if (len > 0 && (!eq || eq == pair)) fail_quoted(E_INVALID_ENVIRONMENT, "CNI_ARGS: malformed pair ", pair, len, "");
    if (!end) break;
    pair = end + 1;
  }
}

/* Everything cni/config.ts parseInvocation checks, in its order, for the commands it forwards. */
static void validate(const char *command, config *c) {
  if (!c->decoded && !c->not_object)
    fail(E_DECODING_FAILURE, "cannot decode the network configuration on stdin", c->doc.why);
  if (c->not_object) fail(E_DECODING_FAILURE, "the network configuration on stdin is not a JSON object", NULL);
  field *f = c->f;
  if (!f[F_CNIVERSION].kind) fail(E_INVALID_NETWORK_CONFIG, "cniVersion is missing", NULL);
  buf version = {0};
  if (f[F_CNIVERSION].kind == 's') field_string(&c->doc, &f[F_CNIVERSION], &version);
  if (f[F_CNIVERSION].kind != 's' || !supported_version(buf_cstr(&version)) || strlen(version.p) != version.len) {
    buf m = {0}, d = {0};
    buf_str(&m, "CNI version ");
    field_json(&c->doc, &f[F_CNIVERSION], &m);
    buf_str(&m, " is not supported");
    buf_str(&d, "supported versions: ");
    for (size_t i = 0; i < N_SUPPORTED; i++) buf_str(&d, i ? ", " : ""), buf_str(&d, SUPPORTED[i]);
    fail(E_INCOMPATIBLE_VERSION, buf_cstr(&m), buf_cstr(&d));
  }
  static const struct {
    int field;
    const char *msg;
  } required[] = {{F_NAME, "network configuration field 'name' is missing"},
                  {F_TYPE, "network configuration field 'type' is missing"}};
  for (size_t i = 0; i < 2; i++) {
    field *r = &f[required[i].field];
    /* an empty string is two bytes: the quotes */
    if (r->kind != 's' || r->end - r->at == 2) fail(E_INVALID_NETWORK_CONFIG, required[i].msg, NULL);
  }
  field *sock = &f[F_AGENTSOCKET];
  if (sock->kind && (sock->kind != 's' || sock->end - sock->at == 2))
    fail(E_INVALID_NETWORK_CONFIG, "'agentSocket' must be a non-empty path", NULL);
  field *timeout = &f[F_TIMEOUTMS];
  if (timeout->kind && !(timeout->kind == 'n' && field_number(&c->doc, timeout) > 0))
    fail(E_INVALID_NETWORK_CONFIG, "'timeoutMs' must be a positive number", NULL);
  field *mtu = &f[F_MTU];
  if (mtu->kind) {
    double v = mtu->kind == 'n' ? field_number(&c->doc, mtu) : 0;
    /* Number.isInteger: finite without a fraction (every double at or past 2^53 is whole) */
    int ok = v >= 68 && v <= 1.7976931348623157e308 && (v >= 9007199254740992.0 || v == (double)(long long)v);
    if (!ok) fail(E_INVALID_NETWORK_CONFIG, "'mtu' must be an integer >= 68", NULL);
  }
  field *fam = &f[F_FAMILIES];
  if (fam->kind) {
    int ok = fam->kind == 'a';
    size_t count = 0;
    parser p = {.s = c->doc.s, .n = fam->end, .i = fam->at + 1};
    skip_ws(&p);
    while (ok && p.s[p.i] != ']') {
      buf item = {0};
      if (p.s[p.i] == '"') {
        read_string(&p, &item);
        const char *v = buf_cstr(&item);
        ok = strlen(v) == item.len && (strcmp(v, "ipv4") == 0 || strcmp(v, "ipv6") == 0);
      } else {
        ok = 0;
      }
      free(item.p);
      count++;
      skip_ws(&p);
      if (p.s[p.i] != ',') break;
      p.i++;
      skip_ws(&p);
    }
    if (!ok || count == 0) fail(E_INVALID_NETWORK_CONFIG, "'families' must be a non-empty list of ipv4, ipv6", NULL);
  }
  const char *min = strcmp(command, "CHECK") == 0 ? "0.4.0"
                    : strcmp(command, "STATUS") == 0 || strcmp(command, "GC") == 0 ? "1.1.0"
                                                                                  : NULL;
  if (min && compare_versions(version.p, min) < 0) {
    buf m = {0};
    buf_fmt(&m, "%s needs cniVersion %s or later, the configuration says %s", command, min, version.p);
    fail(E_INCOMPATIBLE_VERSION, buf_cstr(&m), NULL);
  }
  if (strcmp(command, "ADD") == 0 || strcmp(command, "DEL") == 0 || strcmp(command, "CHECK") == 0) {
    const char *id, *ifname, *netns;
    require_env("CNI_CONTAINERID", &id);
    validate_container_id(id);
    require_env("CNI_IFNAME", &ifname);
    validate_ifname(ifname);
    /* DEL must work after the sandbox is gone: the one command without a netns */
    if (strcmp(command, "DEL") != 0) require_env("CNI_NETNS", &netns);
  }
  validate_cni_args(getenv("CNI_ARGS"));
  /* plugin.ts normalizePrevResult, before the call */
  field *prev = &f[F_PREVRESULT];
  if (strcmp(command, "ADD") == 0 && prev->kind && prev->kind != 'z') {
    if (prev->kind != 'o') fail(E_DECODING_FAILURE, "prevResult is not a JSON object", NULL);
    field pf[2] = {{.name = "ips"}, {.name = "interfaces"}};
    parser p = {.s = c->doc.s, .n = prev->end, .i = prev->at};
    read_object(&p, pf, 2);
    if (pf[0].kind && pf[0].kind != 'a') fail(E_DECODING_FAILURE, "prevResult.ips is not a list", NULL);
    if (pf[1].kind && pf[1].kind != 'a') fail(E_DECODING_FAILURE, "prevResult.interfaces is not a list", NULL);
  }
  free(version.p);
}

/* ---------------------------------------------------------------- talking to the agent */

static const char *errno_name(int e) {
  switch (e) {
  case ENOENT: return "ENOENT";
  case ECONNREFUSED: return "ECONNREFUSED";
  case ECONNRESET: return "ECONNRESET";
  case EPIPE: return "EPIPE";
  case ENOTSOCK: return "ENOTSOCK";
  case EAGAIN: return "EAGAIN";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case ENOTDIR: return "ENOTDIR";
  case ELOOP: return "ELOOP";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EINVAL: return "EINVAL";
  case EPROTOTYPE: return "EPROTOTYPE";
  case ETIMEDOUT: return "ETIMEDOUT";
  case EMFILE: return "EMFILE";
  case ENFILE: return "ENFILE";
  case ENOMEM: return "ENOMEM";
  default: return NULL;
  }
}

/*
 * Errors that mean "no agent there (yet)": cni/client.ts UNREACHABLE. And a socket path too long
 * for sockaddr_un: Node.js cuts such a path short, finds no socket there and says ENOENT (11).
 */
static int unreachable(int e) {
  return e == ENOENT || e == ECONNREFUSED || e == ECONNRESET || e == EPIPE || e == ENOTSOCK || e == EAGAIN ||
         e == EACCES || e == ENAMETOOLONG;
}

typedef struct {
  const char *socket;
  double timeout_ms;
  int poll_ms;
} agent;

/* As Node.js reports a socket error: "<code> <syscall> <code> [path]". */
static _Noreturn void socket_failed(const agent *a, const char *syscall, int e, int with_path) {
  buf m = {0}, d = {0};
  buf_fmt(&m, "cannot reach the weft agent at %s", a->socket);
  const char *name = errno_name(e);
  if (name) buf_fmt(&d, "%s %s %s", name, syscall, name);
  else buf_fmt(&d, "E%d %s %s", e, syscall, strerror(e));
  if (with_path) buf_fmt(&d, " %s", a->socket);
  fail(unreachable(e) ? E_TRY_AGAIN_LATER : E_INTERNAL, buf_cstr(&m), buf_cstr(&d));
}

static _Noreturn void timed_out(const agent *a) {
  buf m = {0};
  buf_str(&m, "the weft agent did not answer within ");
  js_number(&m, a->timeout_ms);
  buf_str(&m, " ms");
  fail(E_TRY_AGAIN_LATER, buf_cstr(&m), a->socket);
}

static _Noreturn void closed_early(const char *why) {
  fail(E_TRY_AGAIN_LATER, "the weft agent closed the connection early", why);
}

/* Waits for the socket to become ready; the timeout is idle time, as Node's socket.setTimeout. */
static void wait_ready(const agent *a, int fd, short events) {
  struct pollfd pfd = {.fd = fd, .events = events};
  for (;;) {
    int r = poll(&pfd, 1, a->poll_ms);
    if (r > 0) return;
    if (r == 0) timed_out(a);
    if (errno != EINTR) socket_failed(a, "poll", errno, 0);
  }
}

static int connect_agent(const agent *a) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t len = strlen(a->socket);
  if (len >= sizeof addr.sun_path) socket_failed(a, "connect", ENAMETOOLONG, 1);
  memcpy(addr.sun_path, a->socket, len);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) socket_failed(a, "socket", errno, 0);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) return fd;
  if (errno != EINPROGRESS && errno != EINTR) socket_failed(a, "connect", errno, 1);
  wait_ready(a, fd, POLLOUT);
  int err = 0;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err) socket_failed(a, "connect", err, 1);
  return fd;
}

/* A header value as ASCII without controls, spaces or '%': the agent decodes it (cni-env-encoding). */
static void header(buf *req, const char *name, const char *value) {
  static const char hex[] = "0123456789ABCDEF";
  buf_str(req, name);
  buf_str(req, ": ");
  for (const unsigned char *v = (const unsigned char *)(value ? value : ""); *v; v++) {
    if (*v > 0x20 && *v < 0x7F && *v != '%') {
      buf_ch(req, (char)*v);
    } else {
      char e[3] = {'%', hex[*v >> 4], hex[*v & 15]};
      buf_add(req, e, 3);
    }
  }
  buf_str(req, "\r\n");
}

static size_t find(const char *s, size_t n, const char *what) {
  size_t w = strlen(what);
  for (size_t i = 0; i + w <= n; i++)
    if (memcmp(s + i, what, w) == 0) return i;
  return (size_t)-1;
}

/* Case-insensitive header lookup in the response head; returns the trimmed value or NULL. */
static const char *response_header(char *head, const char *name, char *value, size_t cap) {
  size_t nlen = strlen(name);
  for (char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
    line += 2;
    if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
      const char *v = line + nlen + 1;
      while (*v == ' ' || *v == '\t') v++;
      size_t len = strcspn(v, "\r");
      while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
      if (len >= cap) len = cap - 1;
      memcpy(value, v, len);
      value[len] = 0;
      return value;
    }
  }
  return NULL;
}

/* Decodes a chunked body in place; returns its length. */
static size_t dechunk(char *body, size_t n) {
  size_t in = 0, out = 0;
  for (;;) {
    size_t eol = find(body + in, n - in, "\r\n");
    if (eol == (size_t)-1) closed_early("Error: truncated HTTP response");
    char *end;
    unsigned long size = strtoul(body + in, &end, 16);
    if (end == body + in) closed_early("Error: bad chunk size in HTTP response");
    in += eol + 2;
    if (size == 0) return out;
    if (size > n - in) closed_early("Error: truncated HTTP response");
    memmove(body + out, body + in, size);
    out += size;
    in += size + 2;
    if (in > n) closed_early("Error: truncated HTTP response");
  }
}

/* POST /v1/cni/exec and print what the agent says to print. */
static _Noreturn void forward(const agent *a, const buf *stdin_text) {
  buf req = {0};
  buf_fmt(&req,
          "POST /v1/cni/exec HTTP/1.1\r\nHost: weft-agent\r\nConnection: close\r\n"
          "Content-Type: application/json\r\nContent-Length: %zu\r\nCNI-Env-Encoding: percent\r\n",
          stdin_text->len);
  header(&req, "CNI-Command", getenv("CNI_COMMAND"));
  header(&req, "CNI-ContainerID", getenv("CNI_CONTAINERID"));
  header(&req, "CNI-Netns", getenv("CNI_NETNS"));
  header(&req, "CNI-Ifname", getenv("CNI_IFNAME"));
  header(&req, "CNI-Args", getenv("CNI_ARGS"));
  header(&req, "CNI-Path", getenv("CNI_PATH"));
  buf_str(&req, "\r\n");
  buf_add(&req, stdin_text->p ? stdin_text->p : "", stdin_text->len);

  int fd = connect_agent(a);
  /* no half-close: node's HTTP server drops a client that ends before the answer is ready */
  for (size_t off = 0; off < req.len;) {
    ssize_t w = send(fd, req.p + off, req.len - off, MSG_NOSIGNAL);
    if (w >= 0) {
      off += (size_t)w;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_ready(a, fd, POLLOUT);
    } else if (errno != EINTR) {
      socket_failed(a, "write", errno, 0);
    }
  }

  buf res = {0};
  size_t head_end = (size_t)-1, want = (size_t)-1;
  for (;;) {
    buf_reserve(&res, 65536);
    ssize_t r = recv(fd, res.p + res.len, res.cap - res.len - 1, 0);
    if (r > 0) {
      res.len += (size_t)r;
      if (head_end == (size_t)-1) {
        head_end = find(res.p, res.len, "\r\n\r\n");
        if (head_end != (size_t)-1) {
          res.p[head_end] = 0;
          char v[32];
          int chunked = response_header(res.p, "transfer-encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0;
          if (!chunked && response_header(res.p, "content-length", v, sizeof v)) want = head_end + 4 + strtoull(v, NULL, 10);
          res.p[head_end] = '\r';
        }
      }
      /* the whole body is here: no need to wait for the agent to close */
      if (want != (size_t)-1 && res.len >= want) break;
    } else if (r == 0) {
      break;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_ready(a, fd, POLLIN);
    } else if (errno != EINTR) {
      socket_failed(a, "read", errno, 0);
    }
  }
  close(fd);

  if (head_end == (size_t)-1) closed_early("Error: truncated HTTP response");
  if (want != (size_t)-1 && res.len < want) closed_early("Error: truncated HTTP response");
  res.p[head_end] = 0;
  size_t line_len = strcspn(res.p, "\r");
  int status = 0;
  if (line_len >= 12 && strncmp(res.p, "HTTP/1.", 7) == 0 && (res.p[7] == '0' || res.p[7] == '1') && res.p[8] == ' ' &&
      is_digit(res.p[9]) && is_digit(res.p[10]) && is_digit(res.p[11]))
    status = (res.p[9] - '0') * 100 + (res.p[10] - '0') * 10 + (res.p[11] - '0');
  if (!status) {
    buf d = {0};
    buf_str(&d, "Error: bad HTTP status line ");
    json_string(&d, res.p, line_len);
    closed_early(buf_cstr(&d));
  }
  char v[32];
  char *body = res.p + head_end + 4;
  size_t body_len = res.len - head_end - 4;
  int chunked = response_header(res.p, "transfer-encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0;
  if (chunked) body_len = dechunk(body, body_len);
  else if (want != (size_t)-1) body_len = want - head_end - 4;

  if (status == 200 || status == 422) {
    if (write_all(1, body, body_len) < 0) exit(1);
    exit(status == 200 ? 0 : 1);
  }
  buf m = {0};
  buf_fmt(&m, "the weft agent answered HTTP %d", status);
  fail(E_INTERNAL, buf_cstr(&m), body_len > 200 ? (body[200] = 0, body) : (body[body_len] = 0, body));
}

/* ---------------------------------------------------------------- main */

static buf read_stdin(void) {
  buf in = {0};
  for (;;) {
    buf_reserve(&in, 65536);
    ssize_t r = read(0, in.p + in.len, in.cap - in.len - 1);
    if (r > 0) {
      in.len += (size_t)r;
    } else if (r == 0) {
      break;
    } else if (errno != EINTR) {
      /* no stdin at all (closed, or not readable): an empty configuration, as main.ts */
      in.len = 0;
      break;
    }
  }
  in.p[in.len] = 0;
  return in;
}

static int blank(const buf *b) {
  for (size_t i = 0; i < b->len; i++)
    if (!strchr(" \t\n\v\f\r", b->p[i]) || !b->p[i]) return 0;
  return 1;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  buf in = read_stdin();
  config c;
  decode_config(&c, in.p, in.len);
  buf version = {0};
  field *v = &c.f[F_CNIVERSION];
  if (c.decoded && v->kind == 's') {
    field_string(&c.doc, v, &version);
    if (supported_version(version.p) && strlen(version.p) == version.len) error_version = version.p;
  }

  const char *command = getenv("CNI_COMMAND");
  if (!command || !*command) fail(E_INVALID_ENVIRONMENT, "CNI_COMMAND is not set", NULL);
  static const char *const commands[] = {"ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"};
  int known = 0;
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) known |= strcmp(command, commands[i]) == 0;
  if (!known) fail_quoted(E_INVALID_ENVIRONMENT, "CNI_COMMAND ", command, strlen(command), " is not supported");

  if (strcmp(command, "VERSION") == 0) {
    /* the answer names the version asked for, or the newest when none is */
    const char *asked = NEWEST_VERSION;
    size_t asked_len = strlen(asked);
    if (!blank(&in)) {
      if (!c.decoded && !c.not_object)
        fail(E_DECODING_FAILURE, "cannot decode the network configuration on stdin", c.doc.why);
      if (c.not_object) fail(E_DECODING_FAILURE, "the network configuration on stdin is not a JSON object", NULL);
      if (v->kind == 's' && version.len > 0) asked = version.p, asked_len = version.len;
    }
    buf o = {0};
    buf_str(&o, "{\"cniVersion\":");
    json_string(&o, asked, asked_len);
    buf_str(&o, ",\"supportedVersions\":[");
    for (size_t i = 0; i < N_SUPPORTED; i++) buf_fmt(&o, "%s\"%s\"", i ? "," : "", SUPPORTED[i]);
    buf_str(&o, "]}\n");
    return write_all(1, o.p, o.len) < 0;
  }

  validate(command, &c);
  agent a = {.socket = DEFAULT_AGENT_SOCKET, .timeout_ms = DEFAULT_TIMEOUT_MS};
  buf sock = {0};
  if (c.f[F_AGENTSOCKET].kind == 's') {
    field_string(&c.doc, &c.f[F_AGENTSOCKET], &sock);
    if (strlen(sock.p) != sock.len) fail(E_INTERNAL, "weft-cni failed", "the agent socket path contains a NUL byte");
    a.socket = sock.p;
  }
  if (c.f[F_TIMEOUTMS].kind == 'n') a.timeout_ms = field_number(&c.doc, &c.f[F_TIMEOUTMS]);
  a.poll_ms = a.timeout_ms >= INT_MAX ? INT_MAX : a.timeout_ms < 1 ? 1 : (int)(a.timeout_ms + 0.999);
  forward(&a, &in);
}
