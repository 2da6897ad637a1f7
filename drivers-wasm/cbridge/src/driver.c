/* wasmnet-cbridge: a minimal bridge driver in C, built into a component with
   wit-bindgen's C bindings. A Linux bridge per network, a veth pair per joined
   endpoint; like drivers-wasm/bridge (TypeScript), but with no options beyond
   com.docker.network.bridge.name, no MTU and no IPv6 gateway.

   All state is in the host store, as flat `k=v;k=v` records:
     network/<nid>          bridge=<name>;gw=<cidr or empty>
     endpoint/<nid>/<eid>   mac=<mac>;addr=<cidr or empty>
     join/<nid>/<eid>       host=<veth>;ctr=<veth>

   Every export owns its arguments and frees them before it returns (rt.c's
   arena resets when nothing is live), and drops the borrowed handles it was
   given: the canonical ABI requires it, and wasmtime traps when one is left. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cbridge_driver.h"

#define DRIVER_NAME "wasmnet-cbridge"
#define OPT_GENERIC "com.docker.network.generic"
#define OPT_BRIDGE_NAME "com.docker.network.bridge.name"
#define OPT_ENDPOINT_MAC "com.docker.network.endpoint.macaddress"

typedef cbridge_driver_string_t str_t;
typedef exports_wasmnet_driver_driver_driver_error_t derr_t;
typedef wasmnet_host_netlink_netlink_error_t nlerr_t;

enum {
  K_INVALID = WASMNET_DRIVER_TYPES_ERROR_KIND_INVALID_PARAMETER,
  K_NOT_FOUND = WASMNET_DRIVER_TYPES_ERROR_KIND_NOT_FOUND,
  K_FORBIDDEN = WASMNET_DRIVER_TYPES_ERROR_KIND_FORBIDDEN,
  K_NO_SERVICE = WASMNET_DRIVER_TYPES_ERROR_KIND_NO_SERVICE,
  K_NOT_IMPLEMENTED = WASMNET_DRIVER_TYPES_ERROR_KIND_NOT_IMPLEMENTED,
  K_INTERNAL = WASMNET_DRIVER_TYPES_ERROR_KIND_INTERNAL,
};

/* --- text ------------------------------------------------------------------ */

/* A bounded, always NUL-terminated text buffer; what does not fit is cut. */
typedef struct {
  char s[768];
  size_t n;
} buf_t;

static void bclear(buf_t *b) { b->n = 0; b->s[0] = 0; }
static void bputn(buf_t *b, const char *p, size_t len) {
  for (size_t i = 0; i < len && b->n + 1 < sizeof b->s; i++) b->s[b->n++] = p[i];
  b->s[b->n] = 0;
}
static void bput(buf_t *b, const char *p) { bputn(b, p, strlen(p)); }
static void bputs(buf_t *b, const str_t *s) { bputn(b, (const char *)s->ptr, s->len); }
static void bputu(buf_t *b, uint32_t v) {
  char t[11];
  int i = 10;
  t[i] = 0;
  do { t[--i] = (char)('0' + v % 10); v /= 10; } while (v);
  bput(b, t + i);
}

/* A borrowed view of a C string, for import arguments (imports never take ownership). */
static str_t S(const char *s) { return (str_t){(uint8_t *)s, strlen(s)}; }

/* Copies a WIT string into a C string; false if it does not fit or holds NUL. */
static bool cstr(char *out, size_t cap, const str_t *s) {
  if (s->len >= cap) return false;
  for (size_t i = 0; i < s->len; i++) {
    if (s->ptr[i] == 0) return false;
    out[i] = (char)s->ptr[i];
  }
  out[s->len] = 0;
  return true;
}

static bool str_eq(const str_t *s, const char *c) {
  size_t n = strlen(c);
  return s->len == n && memcmp(s->ptr, c, n) == 0;
}

/* Linux interface names: 1 to 15 characters of A-Z a-z 0-9 _ . - */
static bool valid_link_name(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 15) return false;
  for (size_t i = 0; i < len; i++) {
    char c = n[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

/* A field of a `k=v;k=v` record into out (empty if absent). */
static void field(const char *rec, const char *key, char *out, size_t cap) {
  size_t kl = strlen(key);
  out[0] = 0;
  const char *p = rec;
  while (*p) {
    if (memcmp(p, key, kl) == 0 && p[kl] == '=') {
      p += kl + 1;
      size_t i = 0;
      while (p[i] && p[i] != ';' && i + 1 < cap) { out[i] = p[i]; i++; }
      out[i] = 0;
      return;
    }
    while (*p && *p != ';') p++;
    if (*p == ';') p++;
  }
}

/* --- errors and log ---------------------------------------------------------- */

static bool fail(derr_t *err, uint8_t kind, const char *msg) {
  err->kind = kind;
  cbridge_driver_string_dup(&err->message, msg[0] ? msg : "error");
  return false;
}

static void logmsg(wasmnet_host_log_level_t level, const char *msg) {
  str_t m = S(msg);
  wasmnet_host_log_log(level, &m);
}

/* Appends a description of a netlink error to b, frees it, and returns the driver error kind. */
static uint8_t nl_describe(buf_t *b, nlerr_t *e, bool *eexist, bool *enodev) {
  uint8_t kind = K_INTERNAL;
  if (eexist) *eexist = false;
  if (enodev) *enodev = false;
  switch (e->tag) {
    case WASMNET_HOST_NETLINK_NETLINK_ERROR_DENIED:
      bput(b, "denied: "); bputs(b, &e->val.denied); kind = K_FORBIDDEN; break;
    case WASMNET_HOST_NETLINK_NETLINK_ERROR_RATE_LIMITED:
      bput(b, "rate-limited: "); bputs(b, &e->val.rate_limited); kind = K_NO_SERVICE; break;
    case WASMNET_HOST_NETLINK_NETLINK_ERROR_INVALID:
      bput(b, "invalid: "); bputs(b, &e->val.invalid); kind = K_INVALID; break;
    default:
      bputs(b, &e->val.kernel.name); bput(b, ": "); bputs(b, &e->val.kernel.message);
      if (eexist && str_eq(&e->val.kernel.name, "EEXIST")) *eexist = true;
      if (enodev && str_eq(&e->val.kernel.name, "ENODEV")) *enodev = true;
      break;
  }
  wasmnet_host_netlink_netlink_error_free(e);
  return kind;
}

/* Fails with "<what>: <netlink error>". */
static bool nl_fail(derr_t *err, const char *what, nlerr_t *e) {
  buf_t b;
  bclear(&b);
  bput(&b, what);
  bput(&b, ": ");
  uint8_t kind = nl_describe(&b, e, NULL, NULL);
  return fail(err, kind, b.s);
}

/* --- store ------------------------------------------------------------------- */

static bool store_get(const char *key, char *out, size_t cap) {
  str_t k = S(key), v;
  if (!wasmnet_host_store_get(&k, &v)) return false;
  bool ok = cstr(out, cap, &v);
  cbridge_driver_string_free(&v);
  if (!ok) out[0] = 0;
  return true;
}

static bool store_err(derr_t *err, const char *what, const char *key, wasmnet_host_store_store_error_t *e) {
  buf_t b;
  bclear(&b);
  bput(&b, what); bput(&b, " "); bput(&b, key); bput(&b, ": ");
  uint8_t kind = K_INTERNAL;
  if (e->tag == WASMNET_HOST_STORE_STORE_ERROR_UNAVAILABLE) { kind = K_NO_SERVICE; bputs(&b, &e->val.unavailable); }
  else bputs(&b, &e->val.invalid);
  wasmnet_host_store_store_error_free(e);
  return fail(err, kind, b.s);
}

static bool store_set(const char *key, const char *value, derr_t *err) {
  str_t k = S(key), v = S(value);
  wasmnet_host_store_store_error_t e;
  if (wasmnet_host_store_set(&k, &v, &e)) return true;
  return store_err(err, "cannot save", key, &e);
}

static bool store_del(const char *key, derr_t *err) {
  str_t k = S(key);
  bool existed;
  wasmnet_host_store_store_error_t e;
  if (wasmnet_host_store_delete(&k, &existed, &e)) return true;
  return store_err(err, "cannot delete", key, &e);
}

/* --- links ------------------------------------------------------------------- */

/* Deletes a link; one that is already gone is fine. */
static bool delete_link_if_present(const char *name, derr_t *err) {
  str_t n = S(name);
  wasmnet_host_netlink_option_link_t l;
  nlerr_t e;
  if (!wasmnet_host_netlink_get_link(&n, &l, &e)) return nl_fail(err, "cannot look up link", &e);
  bool present = l.is_some;
  wasmnet_host_netlink_option_link_free(&l);
  if (!present) return true;
  if (wasmnet_host_netlink_delete_link(&n, &e)) return true;
  buf_t b;
  bclear(&b);
  bput(&b, "cannot delete link "); bput(&b, name); bput(&b, ": ");
  bool enodev;
  uint8_t kind = nl_describe(&b, &e, NULL, &enodev);
  return enodev ? true : fail(err, kind, b.s);
}

/* Undoes a link made earlier in a failed call; logs, never fails. */
static void rollback_link(const char *name) {
  str_t n = S(name);
  nlerr_t e;
  buf_t b;
  bclear(&b);
  bput(&b, "rolled back: deleting link "); bput(&b, name);
  if (!wasmnet_host_netlink_delete_link(&n, &e)) { bput(&b, " failed: "); nl_describe(&b, &e, NULL, NULL); }
  logmsg(WASMNET_HOST_LOG_LEVEL_WARN, b.s);
}

/* --- names ------------------------------------------------------------------- */

static bool id_prefix_name(char *out, const char *prefix, const char *id, size_t n) {
  size_t pl = strlen(prefix), il = strlen(id);
  if (il > n) il = n;
  memcpy(out, prefix, pl);
  memcpy(out + pl, id, il);
  out[pl + il] = 0;
  return il > 0 && valid_link_name(out);
}

static void key2(char *out, size_t cap, const char *kind, const char *a, const char *b) {
  buf_t t;
  bclear(&t);
  bput(&t, kind); bput(&t, "/"); bput(&t, a);
  if (b) { bput(&t, "/"); bput(&t, b); }
  size_t n = t.n < cap - 1 ? t.n : cap - 1;
  memcpy(out, t.s, n);
  out[n] = 0;
}

/* The bridge name from -o com.docker.network.bridge.name, found in the JSON of
   com.docker.network.generic: {"com.docker.network.bridge.name":"br0",...}.
   Returns 0 if absent, 1 if found, -1 if malformed. */
static int bridge_name_option(const exports_wasmnet_driver_driver_options_t *opts, char *out, size_t cap) {
  const char *needle = "\"" OPT_BRIDGE_NAME "\"";
  size_t nl = strlen(needle);
  for (size_t i = 0; i < opts->len; i++) {
    const wasmnet_driver_types_option_entry_t *o = &opts->ptr[i];
    if (!str_eq(&o->key, OPT_GENERIC)) continue;
    const char *v = (const char *)o->value.ptr;
    size_t len = o->value.len;
    for (size_t j = 0; j + nl <= len; j++) {
      if (memcmp(v + j, needle, nl) != 0) continue;
      size_t k = j + nl;
      while (k < len && (v[k] == ' ' || v[k] == '\t' || v[k] == '\n' || v[k] == '\r')) k++;
      if (k >= len || v[k] != ':') return -1;
      k++;
      while (k < len && (v[k] == ' ' || v[k] == '\t' || v[k] == '\n' || v[k] == '\r')) k++;
      if (k >= len || v[k] != '"') return -1;
      k++;
      size_t n = 0;
      while (k < len && v[k] != '"') {
        if (v[k] == '\\' || n + 1 >= cap) return -1;
        out[n++] = v[k++];
      }
      if (k >= len) return -1;
      out[n] = 0;
      return 1;
    }
  }
  return 0;
}

/* --- driver ------------------------------------------------------------------ */

static bool create_network(const str_t *nid_s, const exports_wasmnet_driver_driver_options_t *options,
                           const exports_wasmnet_driver_driver_list_ipam_data_t *v4, derr_t *err) {
  char nid[160], bridge[64], gw[64] = "", key[200], rec[256];
  buf_t b;
  if (nid_s->len == 0 || !cstr(nid, sizeof nid, nid_s)) return fail(err, K_INVALID, "empty or malformed network ID");
  int opt = bridge_name_option(options, bridge, sizeof bridge);
  if (opt < 0) return fail(err, K_INVALID, "option " OPT_BRIDGE_NAME " must be a plain string");
  if (opt == 0 && !id_prefix_name(bridge, "wc", nid, 12)) return fail(err, K_INVALID, "cannot derive a bridge name from the network ID");
  if (!valid_link_name(bridge)) {
    bclear(&b); bput(&b, OPT_BRIDGE_NAME " \""); bput(&b, bridge); bput(&b, "\" is not a valid interface name");
    return fail(err, K_INVALID, b.s);
  }
  for (size_t i = 0; i < v4->len; i++) {
    if (v4->ptr[i].gateway.is_some && v4->ptr[i].gateway.val.len > 0) {
      if (!cstr(gw, sizeof gw, &v4->ptr[i].gateway.val)) return fail(err, K_INVALID, "malformed IPv4 gateway");
      break;
    }
  }
  key2(key, sizeof key, "network", nid, NULL);
  if (store_get(key, rec, sizeof rec)) return fail(err, K_FORBIDDEN, "network already exists");

  wasmnet_host_netlink_bridge_spec_t spec = {0};
  spec.name = S(bridge);
  wasmnet_host_netlink_link_t link;
  nlerr_t e;
  if (!wasmnet_host_netlink_create_bridge(&spec, &link, &e)) {
    bclear(&b); bput(&b, "cannot create bridge \""); bput(&b, bridge); bput(&b, "\": ");
    bool eexist;
    uint8_t kind = nl_describe(&b, &e, &eexist, NULL);
    return fail(err, eexist ? K_FORBIDDEN : kind, b.s);
  }
  wasmnet_host_netlink_link_free(&link);
  str_t bn = S(bridge);
  if (gw[0]) {
    str_t g = S(gw);
    if (!wasmnet_host_netlink_add_address(&bn, &g, &e)) { rollback_link(bridge); return nl_fail(err, "cannot add the gateway to the bridge", &e); }
  }
  if (!wasmnet_host_netlink_set_link_up(&bn, true, &e)) { rollback_link(bridge); return nl_fail(err, "cannot bring the bridge up", &e); }
  bclear(&b); bput(&b, "bridge="); bput(&b, bridge); bput(&b, ";gw="); bput(&b, gw);
  if (!store_set(key, b.s, err)) { rollback_link(bridge); return false; }
  bclear(&b); bput(&b, "network "); bput(&b, nid); bput(&b, ": bridge "); bput(&b, bridge); bput(&b, " created, gateway "); bput(&b, gw[0] ? gw : "none");
  logmsg(WASMNET_HOST_LOG_LEVEL_INFO, b.s);
  return true;
}

bool exports_wasmnet_driver_driver_create_network(exports_wasmnet_driver_driver_call_context_t *ctx, str_t *nid,
    exports_wasmnet_driver_driver_options_t *options, exports_wasmnet_driver_driver_borrow_network_info_t network_info,
    exports_wasmnet_driver_driver_list_ipam_data_t *ipv4_data, exports_wasmnet_driver_driver_list_ipam_data_t *ipv6_data, derr_t *err) {
  (void)ctx;
  bool ok = create_network(nid, options, ipv4_data, err);
  wasmnet_driver_callbacks_network_info_drop_borrow(network_info);
  cbridge_driver_string_free(nid);
  exports_wasmnet_driver_driver_options_free(options);
  exports_wasmnet_driver_driver_list_ipam_data_free(ipv4_data);
  exports_wasmnet_driver_driver_list_ipam_data_free(ipv6_data);
  return ok;
}

/* Deletes every join/endpoint record under prefix (the host end of a join's veth too). */
static bool delete_records(const char *prefix, bool joins, derr_t *err) {
  str_t p = S(prefix);
  cbridge_driver_list_tuple2_string_string_t list;
  wasmnet_host_store_entries(&p, &list);
  bool ok = true;
  for (size_t i = 0; ok && i < list.len; i++) {
    char key[200], rec[256], hostif[32];
    if (!cstr(key, sizeof key, &list.ptr[i].f0)) continue;
    if (joins) {
      if (!cstr(rec, sizeof rec, &list.ptr[i].f1)) rec[0] = 0;
      field(rec, "host", hostif, sizeof hostif);
      if (valid_link_name(hostif)) ok = delete_link_if_present(hostif, err);
    }
    if (ok) ok = store_del(key, err);
  }
  cbridge_driver_list_tuple2_string_string_free(&list);
  return ok;
}

static bool delete_network(const str_t *nid_s, derr_t *err) {
  char nid[160], key[200], rec[256], bridge[64], prefix[200];
  if (!cstr(nid, sizeof nid, nid_s)) return true;
  key2(key, sizeof key, "network", nid, NULL);
  bool known = store_get(key, rec, sizeof rec);
  if (known) field(rec, "bridge", bridge, sizeof bridge);
  if (!known || !valid_link_name(bridge)) id_prefix_name(bridge, "wc", nid, 12);
  key2(prefix, sizeof prefix, "join", nid, ""); /* join/<nid>/ */
  if (!delete_records(prefix, true, err)) return false;
  if (known && valid_link_name(bridge) && !delete_link_if_present(bridge, err)) return false;
  key2(prefix, sizeof prefix, "endpoint", nid, "");
  if (!delete_records(prefix, false, err)) return false;
  if (!known) {
    logmsg(WASMNET_HOST_LOG_LEVEL_DEBUG, "delete-network: unknown network, nothing to do");
    return true;
  }
  if (!store_del(key, err)) return false;
  buf_t b;
  bclear(&b); bput(&b, "network "); bput(&b, nid); bput(&b, ": bridge "); bput(&b, bridge); bput(&b, " deleted");
  logmsg(WASMNET_HOST_LOG_LEVEL_INFO, b.s);
  return true;
}

bool exports_wasmnet_driver_driver_delete_network(str_t *nid, derr_t *err) {
  bool ok = delete_network(nid, err);
  cbridge_driver_string_free(nid);
  return ok;
}

/* 02:42 and the four bytes of an IPv4 address (`a.b.c.d/len`); false if it is not one. */
static bool mac_from_ipv4(const char *cidr, char *out) {
  static const char hex[] = "0123456789abcdef";
  unsigned bytes[4];
  const char *p = cidr;
  for (int i = 0; i < 4; i++) {
    unsigned v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4) { v = v * 10 + (unsigned)(*p - '0'); p++; digits++; }
    if (digits == 0 || v > 255) return false;
    bytes[i] = v;
    if (i < 3) { if (*p != '.') return false; p++; }
  }
  if (*p != '/' && *p != 0) return false;
  memcpy(out, "02:42", 5);
  for (int i = 0; i < 4; i++) {
    out[5 + i * 3] = ':';
    out[6 + i * 3] = hex[bytes[i] >> 4];
    out[7 + i * 3] = hex[bytes[i] & 15];
  }
  out[17] = 0;
  return true;
}

static bool create_endpoint(const str_t *nid_s, const str_t *eid_s, exports_wasmnet_driver_driver_borrow_interface_info_t info, derr_t *err) {
  char nid[160], eid[160], key[200], rec[256], mac[32] = "", addr[64] = "";
  buf_t b;
  if (eid_s->len == 0 || !cstr(eid, sizeof eid, eid_s)) return fail(err, K_INVALID, "empty or malformed endpoint ID");
  if (!cstr(nid, sizeof nid, nid_s)) return fail(err, K_INVALID, "malformed network ID");
  key2(key, sizeof key, "network", nid, NULL);
  if (!store_get(key, rec, sizeof rec)) return fail(err, K_NOT_FOUND, "network not found");
  key2(key, sizeof key, "endpoint", nid, eid);
  if (store_get(key, rec, sizeof rec)) return fail(err, K_FORBIDDEN, "endpoint already exists");

  str_t s;
  if (wasmnet_driver_callbacks_method_interface_info_address(info, &s)) {
    bool ok = cstr(addr, sizeof addr, &s);
    cbridge_driver_string_free(&s);
    if (!ok) return fail(err, K_INVALID, "malformed IPv4 address");
  }
  if (wasmnet_driver_callbacks_method_interface_info_mac_address(info, &s)) {
    bool ok = cstr(mac, sizeof mac, &s);
    cbridge_driver_string_free(&s);
    if (!ok) return fail(err, K_INVALID, "malformed MAC address");
  }
  bool set_by_driver = false;
  if (!mac[0]) {
    if (addr[0]) {
      if (!mac_from_ipv4(addr, mac)) {
        bclear(&b); bput(&b, "IPv4 address \""); bput(&b, addr); bput(&b, "\" is not an IPv4 CIDR");
        return fail(err, K_INVALID, b.s);
      }
    } else {
      /* no IPv4 address: 02:42 and the first four bytes of the endpoint ID (hex) */
      static const char hexd[] = "0123456789abcdef";
      memcpy(mac, "02:42", 5);
      for (int i = 0; i < 4; i++) {
        unsigned char c0 = (unsigned char)(eid[(2 * i) % strlen(eid)]), c1 = (unsigned char)(eid[(2 * i + 1) % strlen(eid)]);
        unsigned v = ((unsigned)c0 * 31u + c1) & 0xff;
        mac[5 + i * 3] = ':';
        mac[6 + i * 3] = hexd[v >> 4];
        mac[7 + i * 3] = hexd[v & 15];
      }
      mac[17] = 0;
    }
    str_t m = S(mac);
    derr_t e;
    if (!wasmnet_driver_callbacks_method_interface_info_set_mac_address(info, &m, &e)) {
      bclear(&b); bput(&b, "cannot set MAC address "); bput(&b, mac); bput(&b, ": "); bputs(&b, &e.message);
      uint8_t kind = e.kind;
      wasmnet_driver_callbacks_driver_error_free(&e);
      return fail(err, kind, b.s);
    }
    set_by_driver = true;
  }
  bclear(&b); bput(&b, "mac="); bput(&b, mac); bput(&b, ";addr="); bput(&b, addr);
  if (!store_set(key, b.s, err)) return false;
  bclear(&b); bput(&b, "endpoint "); bput(&b, eid); bput(&b, ": mac "); bput(&b, mac);
  if (!set_by_driver) bput(&b, " (from dockerd)");
  if (addr[0]) { bput(&b, ", "); bput(&b, addr); }
  logmsg(WASMNET_HOST_LOG_LEVEL_INFO, b.s);
  return true;
}

bool exports_wasmnet_driver_driver_create_endpoint(exports_wasmnet_driver_driver_call_context_t *ctx, str_t *nid, str_t *eid,
    exports_wasmnet_driver_driver_borrow_interface_info_t interface_info, exports_wasmnet_driver_driver_options_t *options, derr_t *err) {
  (void)ctx;
  bool ok = create_endpoint(nid, eid, interface_info, err);
  wasmnet_driver_callbacks_interface_info_drop_borrow(interface_info);
  cbridge_driver_string_free(nid);
  cbridge_driver_string_free(eid);
  exports_wasmnet_driver_driver_options_free(options);
  return ok;
}

/* Leaves a join if there is one: deletes the host end of its veth and its record. */
static bool leave(const char *nid, const char *eid, derr_t *err) {
  char key[200], rec[256], hostif[32];
  key2(key, sizeof key, "join", nid, eid);
  if (!store_get(key, rec, sizeof rec)) return true;
  field(rec, "host", hostif, sizeof hostif);
  if (!valid_link_name(hostif)) id_prefix_name(hostif, "wch", eid, 9);
  if (valid_link_name(hostif) && !delete_link_if_present(hostif, err)) return false;
  if (!store_del(key, err)) return false;
  buf_t b;
  bclear(&b); bput(&b, "endpoint "); bput(&b, eid); bput(&b, " left: "); bput(&b, hostif); bput(&b, " deleted");
  logmsg(WASMNET_HOST_LOG_LEVEL_INFO, b.s);
  return true;
}

bool exports_wasmnet_driver_driver_delete_endpoint(str_t *nid_s, str_t *eid_s, derr_t *err) {
  char nid[160], eid[160], key[200];
  bool ok = true;
  if (cstr(nid, sizeof nid, nid_s) && cstr(eid, sizeof eid, eid_s)) {
    ok = leave(nid, eid, err);
    if (ok) {
      key2(key, sizeof key, "endpoint", nid, eid);
      ok = store_del(key, err);
    }
  }
  cbridge_driver_string_free(nid_s);
  cbridge_driver_string_free(eid_s);
  return ok;
}

bool exports_wasmnet_driver_driver_endpoint_oper_info(str_t *nid_s, str_t *eid_s, exports_wasmnet_driver_driver_options_t *ret, derr_t *err) {
  char nid[160], eid[160], key[200], rec[256], mac[32];
  bool ok = false;
  if (!cstr(nid, sizeof nid, nid_s) || !cstr(eid, sizeof eid, eid_s)) {
    fail(err, K_INVALID, "malformed ID");
  } else {
    key2(key, sizeof key, "endpoint", nid, eid);
    if (!store_get(key, rec, sizeof rec)) {
      fail(err, K_NOT_FOUND, "endpoint not found");
    } else {
      field(rec, "mac", mac, sizeof mac);
      buf_t b;
      bclear(&b); bput(&b, "\""); bput(&b, mac); bput(&b, "\"");
      ret->len = 1;
      ret->ptr = malloc(sizeof *ret->ptr);
      cbridge_driver_string_dup(&ret->ptr[0].key, OPT_ENDPOINT_MAC);
      cbridge_driver_string_dup(&ret->ptr[0].value, b.s);
      ok = true;
    }
  }
  cbridge_driver_string_free(nid_s);
  cbridge_driver_string_free(eid_s);
  return ok;
}

static bool join(const str_t *nid_s, const str_t *eid_s, exports_wasmnet_driver_driver_borrow_join_info_t info, derr_t *err) {
  char nid[160], eid[160], key[200], nrec[256], erec[256], bridge[64], gw[64], mac[32], addr[64], hostif[32], ctrif[32];
  buf_t b;
  if (!cstr(nid, sizeof nid, nid_s) || !cstr(eid, sizeof eid, eid_s)) return fail(err, K_INVALID, "malformed ID");
  key2(key, sizeof key, "network", nid, NULL);
  if (!store_get(key, nrec, sizeof nrec)) return fail(err, K_NOT_FOUND, "network not found");
  key2(key, sizeof key, "endpoint", nid, eid);
  if (!store_get(key, erec, sizeof erec)) return fail(err, K_NOT_FOUND, "endpoint not found");
  field(nrec, "bridge", bridge, sizeof bridge);
  field(nrec, "gw", gw, sizeof gw);
  field(erec, "mac", mac, sizeof mac);
  field(erec, "addr", addr, sizeof addr);
  if (!valid_link_name(bridge)) return fail(err, K_INTERNAL, "corrupt network record");
  if (!id_prefix_name(hostif, "wch", eid, 9) || !id_prefix_name(ctrif, "wcc", eid, 9)) return fail(err, K_INVALID, "cannot derive interface names from the endpoint ID");

  wasmnet_host_netlink_veth_spec_t spec = {0};
  spec.name = S(hostif);
  spec.peer_name = S(ctrif);
  if (mac[0]) { spec.peer_mac.is_some = true; spec.peer_mac.val = S(mac); }
  wasmnet_host_netlink_link_t link;
  nlerr_t e;
  if (!wasmnet_host_netlink_create_veth(&spec, &link, &e)) {
    bclear(&b); bput(&b, "cannot create veth "); bput(&b, hostif); bput(&b, "/"); bput(&b, ctrif); bput(&b, ": ");
    bool eexist;
    uint8_t kind = nl_describe(&b, &e, &eexist, NULL);
    return fail(err, eexist ? K_FORBIDDEN : kind, b.s);
  }
  wasmnet_host_netlink_link_free(&link);
  str_t h = S(hostif), br = S(bridge);
  if (!wasmnet_host_netlink_set_link_master(&h, &br, &e)) { rollback_link(hostif); return nl_fail(err, "cannot attach the veth to the bridge", &e); }
  if (!wasmnet_host_netlink_set_link_up(&h, true, &e)) { rollback_link(hostif); return nl_fail(err, "cannot bring the veth up", &e); }

  wasmnet_driver_callbacks_own_interface_name_info_t names = wasmnet_driver_callbacks_method_join_info_interface_name(info);
  str_t src = S(ctrif), pfx = S("eth"), dst = S("");
  derr_t ce;
  bool named = wasmnet_driver_callbacks_method_interface_name_info_set_names(wasmnet_driver_callbacks_borrow_interface_name_info(names), &src, &pfx, &dst, &ce);
  wasmnet_driver_callbacks_interface_name_info_drop_own(names);
  if (!named) {
    bclear(&b); bput(&b, "cannot set the interface names: "); bputs(&b, &ce.message);
    uint8_t kind = ce.kind;
    wasmnet_driver_callbacks_driver_error_free(&ce);
    rollback_link(hostif);
    return fail(err, kind, b.s);
  }
  /* a default route only for an endpoint with an IPv4 address */
  if (gw[0] && addr[0]) {
    char ip[64];
    size_t i = 0;
    while (gw[i] && gw[i] != '/' && i + 1 < sizeof ip) { ip[i] = gw[i]; i++; }
    ip[i] = 0;
    str_t g = S(ip);
    if (!wasmnet_driver_callbacks_method_join_info_set_gateway(info, &g, &ce)) {
      bclear(&b); bput(&b, "cannot set gateway "); bput(&b, ip); bput(&b, ": "); bputs(&b, &ce.message);
      uint8_t kind = ce.kind;
      wasmnet_driver_callbacks_driver_error_free(&ce);
      rollback_link(hostif);
      return fail(err, kind, b.s);
    }
  }
  key2(key, sizeof key, "join", nid, eid);
  bclear(&b); bput(&b, "host="); bput(&b, hostif); bput(&b, ";ctr="); bput(&b, ctrif);
  if (!store_set(key, b.s, err)) { rollback_link(hostif); return false; }
  bclear(&b); bput(&b, "endpoint "); bput(&b, eid); bput(&b, " joined: "); bput(&b, hostif); bput(&b, " on "); bput(&b, bridge);
  bput(&b, ", "); bput(&b, ctrif); bput(&b, " goes in as eth*");
  logmsg(WASMNET_HOST_LOG_LEVEL_INFO, b.s);
  return true;
}

bool exports_wasmnet_driver_driver_join(exports_wasmnet_driver_driver_call_context_t *ctx, str_t *nid, str_t *eid, str_t *sandbox_key,
    exports_wasmnet_driver_driver_borrow_join_info_t join_info, exports_wasmnet_driver_driver_options_t *endpoint_options,
    exports_wasmnet_driver_driver_options_t *sandbox_options, derr_t *err) {
  (void)ctx;
  bool ok = join(nid, eid, join_info, err);
  wasmnet_driver_callbacks_join_info_drop_borrow(join_info);
  cbridge_driver_string_free(nid);
  cbridge_driver_string_free(eid);
  cbridge_driver_string_free(sandbox_key);
  exports_wasmnet_driver_driver_options_free(endpoint_options);
  exports_wasmnet_driver_driver_options_free(sandbox_options);
  return ok;
}

bool exports_wasmnet_driver_driver_leave(str_t *nid_s, str_t *eid_s, derr_t *err) {
  char nid[160], eid[160];
  bool ok = true;
  if (cstr(nid, sizeof nid, nid_s) && cstr(eid, sizeof eid, eid_s)) ok = leave(nid, eid, err);
  cbridge_driver_string_free(nid_s);
  cbridge_driver_string_free(eid_s);
  return ok;
}

bool exports_wasmnet_driver_driver_network_allocate(str_t *nid, exports_wasmnet_driver_driver_string_map_t *options,
    exports_wasmnet_driver_driver_list_ipam_data_t *ipv4_data, exports_wasmnet_driver_driver_list_ipam_data_t *ipv6_data,
    exports_wasmnet_driver_driver_string_map_t *ret, derr_t *err) {
  (void)ret;
  cbridge_driver_string_free(nid);
  exports_wasmnet_driver_driver_string_map_free(options);
  exports_wasmnet_driver_driver_list_ipam_data_free(ipv4_data);
  exports_wasmnet_driver_driver_list_ipam_data_free(ipv6_data);
  return fail(err, K_NOT_IMPLEMENTED, DRIVER_NAME " is a local-scope driver: network-allocate is not implemented");
}

bool exports_wasmnet_driver_driver_network_free(str_t *nid, derr_t *err) {
  cbridge_driver_string_free(nid);
  return fail(err, K_NOT_IMPLEMENTED, DRIVER_NAME " is a local-scope driver: network-free is not implemented");
}

void exports_wasmnet_driver_driver_type(str_t *ret) { cbridge_driver_string_dup(ret, DRIVER_NAME); }

bool exports_wasmnet_driver_driver_is_built_in(void) { return false; }

void exports_wasmnet_driver_registration_describe(exports_wasmnet_driver_registration_registration_info_t *ret) {
  cbridge_driver_string_dup(&ret->name, DRIVER_NAME);
  ret->capability.data_scope = WASMNET_DRIVER_TYPES_SCOPE_LOCAL;
  ret->capability.connectivity_scope = WASMNET_DRIVER_TYPES_SCOPE_LOCAL;
}
