/*
 * Conformance at the C boundary: every row of the ref §4.1 key table through
 * every typed getter and setter (ref §4.2, §4.3), and bad input through every
 * setter and registry function (NULL, bad UTF-8, out-of-range enum, unknown
 * key, invalid URI, id 0, a handle of another store), which must return the
 * documented code and change nothing in the store.
 *
 *   conformance STORE OTHER_STORE
 */
#include "recorder.h"

enum { O = SIP_OK, N = SIP_ERR_NOT_FOUND, A = SIP_ERR_ACCESS_DENIED, G = SIP_ERR_ARGUMENT,
       P = SIP_ERR_PERMISSION_DENIED };

typedef struct key_row {
    uint32_t key;
    const char *name;
    /* getters on a fresh, unsaved IETF profile */
    int g_u32, g_bool, g_str, g_arr, g_srv;
    /* setters on a managed profile */
    int s_u32, s_bool, s_str, s_arr, s_srv;
} key_row;

/* ref §4.1 table, one row per key; codes from ref §4.2 / §4.3 and contract §5.1. */
static const key_row rows[] = {
    {1, "SIP_KEY_PROFILE_ID", O, N, N, N, N, N, N, N, N, N},
    {2, "SIP_KEY_PROVIDER_NAME", N, N, O, N, N, N, N, O, N, N},
    {3, "SIP_KEY_ACCESS_POINT_ID", O, N, N, N, N, O, N, N, N, N},
    {4, "SIP_KEY_SIG_COMP", N, O, N, N, N, N, O, N, N, N},
    {5, "SIP_KEY_SECURITY_NEGOTIATION", N, O, N, N, N, N, O, N, N, N},
    {6, "SIP_KEY_AUTO_REGISTRATION", N, O, N, N, N, N, O, N, N, N},
    {7, "SIP_KEY_USER_AOR", N, N, O, N, N, N, N, O, N, N},
    {8, "SIP_KEY_PROFILE_REGISTERED", N, O, N, N, N, N, N, N, N, N},
    {9, "SIP_KEY_REGISTERED_AORS", N, N, N, O, N, N, N, N, N, N},
    {10, "SIP_KEY_NEGOTIATED_SECURITY_MECHANISM", N, N, O, N, N, N, N, N, N, N},
    {11, "SIP_KEY_DEFAULT_PROFILE", N, O, N, N, N, N, O, N, N, N},
    {12, "SIP_KEY_CONTACT_HEADER_PARAMS", N, N, N, O, N, N, N, N, O, N},
    {13, "SIP_KEY_REGISTERED_CONTACT", N, N, N, N, O, O, O, N, O, O},
    {14, "SIP_KEY_SNAP_ID", N, N, N, N, O, O, N, O, N, N},
    {15, "SIP_KEY_CONTACT_HEADER_USER", N, N, O, N, O, N, N, A, N, N},
    {16, "SIP_KEY_SO_IP_TOS", N, N, N, N, N, O, N, N, N, N},
    {17, "SIP_KEY_ACCESS_POINT_NAME", N, N, N, N, O, O, O, O, O, O},
    {18, "SIP_KEY_SNAP_NAME", N, N, N, N, O, O, O, O, O, O},
    {19, "SIP_KEY_RESOLVE_PROXY", N, N, N, N, O, O, O, O, O, O},
    {20, "SIP_KEY_PRIMARY_APN", N, N, N, N, N, N, N, O, N, N},
    {21, "SIP_KEY_SECONDARY_APN", N, N, N, N, N, N, N, O, N, N},
    {22, "SIP_KEY_BEARER_TYPE", N, N, N, N, O, O, N, N, O, O},
    {130, "SIP_SERVER_REGISTRAR", N, N, N, N, N, N, N, N, N, N},
    {131, "SIP_SERVER_OUTBOUND_PROXY", N, N, N, N, N, N, N, N, N, N},
    {150, "SIP_KEY_DIGEST_USER_NAME", N, N, N, N, O, N, N, N, N, O},
    {151, "SIP_KEY_DIGEST_REALM", N, N, N, N, O, N, N, N, N, O},
    {152, "SIP_KEY_SERVER_ADDRESS", N, N, N, N, O, N, N, N, N, O},
    {500, "SIP_KEY_PRIVATE_IDENTITY", N, N, O, N, N, N, N, O, N, N},
    {501, "SIP_KEY_DIGEST_PASSWORD", N, N, N, N, P, N, N, N, N, O},
    {502, "SIP_KEY_HEADERS", N, N, N, O, O, N, N, N, O, O},
    {503, "SIP_KEY_ALLOW_IMS_REGISTRATION", N, N, N, N, O, O, O, O, O, O},
    {504, "SIP_KEY_PROFILE_LOCKED", N, N, N, N, O, O, O, O, O, O},
    {505, "SIP_KEY_ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK", N, N, N, N, O, O, O, O, O, O},
    {1000, "SIP_KEY_REGISTRATION_EXPIRES", O, N, N, N, O, O, N, N, N, O},
    {1001, "SIP_KEY_GRANTED_EXPIRES", O, N, N, N, O, N, N, N, N, O},
    {1002, "SIP_KEY_SERVICE_ROUTE", N, N, N, O, O, N, N, N, N, O},
    {1003, "SIP_KEY_PUB_GRUU", N, N, N, N, O, N, N, N, N, O},
    {1004, "SIP_KEY_TEMP_GRUU", N, N, N, N, O, N, N, N, N, O},
    {1005, "SIP_KEY_RETRY_BASE_SECONDS", O, N, N, N, O, O, N, N, N, O},
    {1006, "SIP_KEY_RETRY_MAX_SECONDS", O, N, N, N, O, O, N, N, N, O},
    {1007, "SIP_KEY_INSTANCE_ID", N, N, N, N, O, N, N, O, N, O},
    {1008, "SIP_KEY_TLS_CA_FILE", N, N, N, N, O, N, N, O, N, O},
    {1009, "SIP_KEY_CONTACT_URI", N, N, N, N, O, N, N, O, N, O},
    {1010, "SIP_KEY_DIGEST_MIN_ALGORITHM", N, N, O, N, O, N, N, G, N, O},
    {1011, "SIP_KEY_KEEPALIVE_SECONDS", O, N, N, N, O, O, N, N, N, O},
    {1012, "SIP_KEY_OUTBOUND", N, O, N, N, O, N, O, N, N, O},
};

static int32_t get_u32_code(const sip_profile *p, uint32_t k) {
    uint32_t v;
    return sip_profile_get_u32(p, k, &v);
}
static int32_t get_bool_code(const sip_profile *p, uint32_t k) {
    bool v;
    return sip_profile_get_bool(p, k, &v);
}
static int32_t get_str_code(const sip_profile *p, uint32_t k) {
    char buf[512];
    size_t len;
    return sip_profile_get_str(p, k, buf, sizeof buf, &len);
}
static int32_t get_arr_code(const sip_profile *p, uint32_t k) {
    sip_str_list *l = NULL;
    int32_t rc = sip_profile_get_str_array(p, k, &l);
    sip_str_list_free(l);
    return rc;
}
static int32_t get_srv_code(const sip_profile *p, uint32_t k) {
    char buf[512];
    size_t len;
    return sip_profile_get_server_str(p, SIP_SERVER_REGISTRAR, k, buf, sizeof buf, &len);
}

static int row_failures = 0;
#define ROW_EXPECT(row, what, got, want)                                                             \
    do {                                                                                             \
        if ((got) != (want)) {                                                                       \
            fprintf(stderr, "FAIL ref §4.1 %s (%u) %s: %d, want %d\n", (row)->name, (row)->key, what, \
                    (int)(got), (int)(want));                                                        \
            row_failures++;                                                                          \
        }                                                                                            \
    } while (0)

static sip_profile *fresh(sip_managed_profile_registry *m) {
    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    sip_profile *p = NULL;
    EXPECT_RC(sip_managed_profile_registry_create(m, &ietf, &p), SIP_OK);
    return p;
}

static void key_table(sip_managed_profile_registry *m) {
    size_t n = sizeof rows / sizeof rows[0];
    for (size_t i = 0; i < n; i++) {
        const key_row *r = &rows[i];
        int before = row_failures;
        sip_profile *p = fresh(m);
        ROW_EXPECT(r, "get_u32", get_u32_code(p, r->key), r->g_u32);
        ROW_EXPECT(r, "get_bool", get_bool_code(p, r->key), r->g_bool);
        ROW_EXPECT(r, "get_str", get_str_code(p, r->key), r->g_str);
        ROW_EXPECT(r, "get_str_array", get_arr_code(p, r->key), r->g_arr);
        ROW_EXPECT(r, "get_server_str", get_srv_code(p, r->key), r->g_srv);

        /* Setters; a value that succeeds must read back through the same type. */
        const char *str = r->key == 1007 ? "urn:uuid:00000000-0000-4000-8000-000000000000" : "sip:a@example.com";
        const char *arr[] = {r->key == 12 ? "x-a=1" : "X-A: 1"};
        int32_t rc = sip_profile_set_u32(p, r->key, 5);
        ROW_EXPECT(r, "set_u32", rc, r->s_u32);
        if (rc == SIP_OK) ROW_EXPECT(r, "get_u32 after set", get_u32_code(p, r->key), O);
        rc = sip_profile_set_bool(p, r->key, true);
        ROW_EXPECT(r, "set_bool", rc, r->s_bool);
        if (rc == SIP_OK) ROW_EXPECT(r, "get_bool after set", get_bool_code(p, r->key), O);
        rc = sip_profile_set_str(p, r->key, str);
        ROW_EXPECT(r, "set_str", rc, r->s_str);
        if (rc == SIP_OK) ROW_EXPECT(r, "get_str after set", get_str_code(p, r->key), O);
        rc = sip_profile_set_str_array(p, r->key, arr, 1);
        ROW_EXPECT(r, "set_str_array", rc, r->s_arr);
        if (rc == SIP_OK) ROW_EXPECT(r, "get_str_array after set", get_arr_code(p, r->key), O);
        rc = sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, r->key, str);
        ROW_EXPECT(r, "set_server_str", rc, r->s_srv);
        if (rc == SIP_OK && r->key != SIP_KEY_DIGEST_PASSWORD)
            ROW_EXPECT(r, "get_server_str after set", get_srv_code(p, r->key), O);
        sip_profile_free(p);
        printf("  ref §4.1 %-52s %s\n", r->name, row_failures == before ? "ok" : "FAILED");
    }
    failures += row_failures;
}

/* Value rules of single keys (ref §4.1-4.4). */
static void value_rules(sip_managed_profile_registry *m) {
    sip_profile *p = fresh(m);
    char buf[64];
    size_t len = 0;
    EXPECT_RC(sip_profile_get_str(p, SIP_KEY_CONTACT_HEADER_USER, buf, sizeof buf, &len), SIP_OK);
    EXPECT(len == 20);
    for (size_t i = 0; i < len; i++)
        EXPECT((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'z') ||
               (buf[i] >= 'A' && buf[i] <= 'Z') || buf[i] == '-' || buf[i] == '_');
    EXPECT_RC(sip_profile_set_u32(p, SIP_KEY_SNAP_ID, 0), SIP_ERR_ARGUMENT);   /* ref §4.1 key 14 */
    EXPECT_RC(sip_profile_set_bool(p, SIP_KEY_DEFAULT_PROFILE, false), SIP_ERR_ARGUMENT); /* key 11 */
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_USER_AOR, "not a uri"), SIP_ERR_ARGUMENT);   /* key 7 */
    /* contract §8.4: MD5 by default, one of three names, nothing else. */
    EXPECT_RC(sip_profile_get_str(p, SIP_KEY_DIGEST_MIN_ALGORITHM, buf, sizeof buf, &len), SIP_OK);
    EXPECT(len == 3 && memcmp(buf, "MD5", 3) == 0);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_DIGEST_MIN_ALGORITHM, "SHA-1"), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_DIGEST_MIN_ALGORITHM, "sha-256"), SIP_OK);
    EXPECT_RC(sip_profile_get_str(p, SIP_KEY_DIGEST_MIN_ALGORITHM, buf, sizeof buf, &len), SIP_OK);
    EXPECT(len == 7 && memcmp(buf, "SHA-256", 7) == 0);
    EXPECT_RC(sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, "http://x"),
              SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_server_str(p, 999, SIP_KEY_SERVER_ADDRESS, "sip:x"), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_get_server_str(p, 999, SIP_KEY_SERVER_ADDRESS, buf, sizeof buf, &len), SIP_OK);
    EXPECT(len == 0); /* unknown server: empty, SIP_OK (ref §4.2) */
    EXPECT_RC(sip_profile_get_server_str(p, SIP_SERVER_REGISTRAR, 600, buf, sizeof buf, &len), SIP_OK);
    EXPECT(len == 0); /* server extension parameter absent: empty */
    /* Typed tables are independent: key 700 in all four at once. */
    const char *vals[] = {"one", "two"};
    EXPECT_RC(sip_profile_set_u32(p, 700, 7), SIP_OK);
    EXPECT_RC(sip_profile_set_bool(p, 700, true), SIP_OK);
    EXPECT_RC(sip_profile_set_str(p, 700, "seven"), SIP_OK);
    EXPECT_RC(sip_profile_set_str_array(p, 700, vals, 2), SIP_OK);
    uint32_t u = 0;
    bool b = false;
    sip_str_list *l = NULL;
    EXPECT_RC(sip_profile_get_u32(p, 700, &u), SIP_OK);
    EXPECT(u == 7);
    EXPECT_RC(sip_profile_get_bool(p, 700, &b), SIP_OK);
    EXPECT(b);
    EXPECT_RC(sip_profile_get_str(p, 700, buf, sizeof buf, &len), SIP_OK);
    EXPECT(strcmp(buf, "seven") == 0);
    EXPECT_RC(sip_profile_get_str_array(p, 700, &l), SIP_OK);
    EXPECT(sip_str_list_len(l) == 2 && strcmp(sip_str_list_get(l, 1), "two") == 0);
    EXPECT(sip_str_list_get(l, 2) == NULL);
    sip_str_list_free(l);
    /* "" removes a string extension value; an empty array removes an array one. */
    EXPECT_RC(sip_profile_set_str(p, 700, ""), SIP_OK);
    EXPECT_RC(sip_profile_get_str(p, 700, buf, sizeof buf, &len), SIP_ERR_NOT_FOUND);
    EXPECT_RC(sip_profile_set_str_array(p, 700, NULL, 0), SIP_OK);
    EXPECT_RC(sip_profile_get_str_array(p, 700, &l), SIP_ERR_NOT_FOUND);
    /* Defaults of the library's keys (contract §5.1). */
    EXPECT_RC(sip_profile_get_u32(p, SIP_KEY_REGISTRATION_EXPIRES, &u), SIP_OK);
    EXPECT(u == 3600);
    EXPECT_RC(sip_profile_get_u32(p, SIP_KEY_RETRY_BASE_SECONDS, &u), SIP_OK);
    EXPECT(u == 30);
    EXPECT_RC(sip_profile_get_u32(p, SIP_KEY_RETRY_MAX_SECONDS, &u), SIP_OK);
    EXPECT(u == 1800);
    EXPECT_RC(sip_profile_get_u32(p, SIP_KEY_GRANTED_EXPIRES, &u), SIP_OK);
    EXPECT(u == 0);
    /* Saved: bearer type 0 when absent (ref §4.5), instance id generated. */
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_USER_AOR, "sip:alice@example.com"), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_save(m, p), SIP_OK);
    EXPECT_RC(sip_profile_get_u32(p, SIP_KEY_BEARER_TYPE, &u), SIP_OK);
    EXPECT(u == 0);
    EXPECT_RC(sip_profile_get_str(p, SIP_KEY_INSTANCE_ID, buf, sizeof buf, &len), SIP_OK);
    EXPECT(strncmp(buf, "urn:uuid:", 9) == 0);
    sip_profile_type_info t;
    EXPECT_RC(sip_profile_type(p, &t), SIP_OK);
    EXPECT(t.profile_class == SIP_PROFILE_CLASS_INTERNET && strcmp(t.name, "IETF") == 0);
    sip_profile_type_info types[2];
    size_t count = 0;
    EXPECT_RC(sip_managed_profile_registry_supported_types(m, NULL, 0, &count), SIP_ERR_OVERFLOW);
    EXPECT(count == 2);
    EXPECT_RC(sip_managed_profile_registry_supported_types(m, types, 2, &count), SIP_OK);
    EXPECT(strcmp(types[0].name, "IETF") == 0 && types[1].profile_class == SIP_PROFILE_CLASS_IMS &&
           strcmp(types[1].name, "ims") == 0);
    sip_profile_free(p);
    printf("  ref §4.1-4.5 value rules checked\n");
}

/* The store's profiles as one string: "id aor;" for each. */
static void snapshot(sip_managed_profile_registry *m, char *out, size_t cap) {
    out[0] = 0;
    sip_profile_list *l = NULL;
    if (sip_managed_profile_registry_profiles(m, &l) != SIP_OK) return;
    for (size_t i = 0; i < sip_profile_list_len(l); i++) {
        sip_profile *p = sip_profile_list_take(l, i);
        uint32_t id = 0;
        char aor[128] = "", prov[128] = "";
        size_t len;
        sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id);
        sip_profile_get_str(p, SIP_KEY_USER_AOR, aor, sizeof aor, &len);
        sip_profile_get_str(p, SIP_KEY_PROVIDER_NAME, prov, sizeof prov, &len);
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%u %s %s;", id, aor, prov);
        sip_profile_free(p);
    }
    sip_profile_list_free(l);
}

static void bad_input(const char *store, const char *other_store) {
    sip_managed_profile_registry *m = NULL;
    sip_profile_registry *u = NULL;
    EXPECT_RC(sip_managed_profile_registry_new(store, NULL, &m), SIP_OK);
    EXPECT_RC(sip_profile_registry_new(store, NULL, &u), SIP_OK);
    sip_profile *p = fresh(m);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_USER_AOR, "sip:carol@example.com"), SIP_OK);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, "before"), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_save(m, p), SIP_OK);
    uint32_t id = 0;
    EXPECT_RC(sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id), SIP_OK);
    char before[4096], after[4096];
    snapshot(m, before, sizeof before);

    const char bad_utf8[] = {'s', 'i', 'p', ':', (char)0xC3, (char)0x28, 0};
    sip_profile_type_info bad_class = {7, "IETF"};
    sip_profile_type_info unnamed;
    memset(&unnamed, 'x', sizeof unnamed); /* no NUL in the name */
    unnamed.profile_class = 0;
    sip_profile_type_info unknown = {SIP_PROFILE_CLASS_OTHER, "nope"};
    sip_profile *out = NULL;
    sip_profile_list *list = NULL;
    bool flag;
    uint32_t v;
    char buf[8];
    size_t len;

    /* Registries: NULL everywhere. */
    EXPECT_RC(sip_profile_registry_new(NULL, NULL, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_new("", NULL, &u), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_new(bad_utf8, NULL, &m), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_profile(NULL, id, &out), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_profile(u, id, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_profile(u, 0, &out), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_profile(u, 4000000000u, &out), SIP_ERR_NOT_FOUND);
    EXPECT_RC(sip_managed_profile_registry_profile(m, 0, &out), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_default_profile(NULL, &out), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_default_profile(u, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_profiles(NULL, &list), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_profiles(m, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_profiles_by_type(u, NULL, &list), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_profiles_by_type(u, &bad_class, &list), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_profiles_by_type(u, &unnamed, &list), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_profiles_by_aor(m, NULL, &list), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_profiles_by_aor(m, "no uri", &list), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_profiles_by_aor(u, bad_utf8, &list), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_supported_types(NULL, NULL, 0, &len), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_supported_types(u, NULL, 2, &len), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_supported_types(u, NULL, 0, NULL), SIP_ERR_ARGUMENT);
    EXPECT(sip_profile_registry_last_registration_error(NULL, p) == SIP_ERR_ARGUMENT);
    EXPECT(sip_managed_profile_registry_last_registration_error(m, NULL) == SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_enable(NULL, p), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_enable(u, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_disable(u, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_refresh_enable(NULL, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_registry_force_disable(u, NULL), SIP_ERR_ARGUMENT);
    EXPECT(!sip_profile_registry_is_enabled(NULL, p));
    EXPECT(!sip_profile_registry_is_enabled(u, NULL));
    EXPECT_RC(sip_managed_profile_registry_create(NULL, &unknown, &out), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_create(m, NULL, &out), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_create(m, &bad_class, &out), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_create(m, &unknown, &out), SIP_ERR_NOT_FOUND);
    EXPECT_RC(sip_managed_profile_registry_create(m, &unknown, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_save(m, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_save(NULL, p), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_destroy(m, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_is_in_use(m, p, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_managed_profile_registry_is_in_use(m, NULL, &flag), SIP_ERR_ARGUMENT);

    /* Profiles: NULL, wrong types, unknown keys, bad values. */
    EXPECT_RC(sip_profile_get_u32(NULL, 1, &v), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_get_u32(p, 1, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_get_u32(p, 123456, &v), SIP_ERR_NOT_FOUND);
    EXPECT_RC(sip_profile_get_bool(p, 1, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_get_str(p, SIP_KEY_USER_AOR, NULL, 4, &len), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_get_str(p, SIP_KEY_USER_AOR, buf, sizeof buf, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_get_str(p, SIP_KEY_USER_AOR, NULL, 0, &len), SIP_ERR_OVERFLOW);
    EXPECT(len == strlen("sip:carol@example.com"));
    EXPECT_RC(sip_profile_get_str_array(p, SIP_KEY_HEADERS, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_get_server_str(NULL, 130, 152, buf, sizeof buf, &len), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, bad_utf8), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_str(NULL, SIP_KEY_PROVIDER_NAME, "x"), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_USER_AOR, "sip:"), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_u32(NULL, 3, 1), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_bool(NULL, 4, true), SIP_ERR_ARGUMENT);
    const char *with_null[] = {"a", NULL};
    const char *bad_arr[] = {bad_utf8};
    EXPECT_RC(sip_profile_set_str_array(p, SIP_KEY_HEADERS, NULL, 1), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_str_array(p, SIP_KEY_HEADERS, with_null, 2), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_str_array(p, SIP_KEY_HEADERS, bad_arr, 1), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_str_array(p, SIP_KEY_HEADERS, (const char *[]){"no colon"}, 1), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_server_str(p, 130, 152, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_type(p, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_set_type(p, &bad_class), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_type(p, NULL), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_type(NULL, &unknown), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_clone(NULL, &out), SIP_ERR_ARGUMENT);
    EXPECT_RC(sip_profile_clone(p, NULL), SIP_ERR_ARGUMENT);
    EXPECT(sip_profile_registration_status(NULL) == SIP_PROFILE_STATUS_UNREGISTERED);
    EXPECT(!sip_profile_is_context_active(NULL));
    EXPECT(sip_profile_context_id(NULL) == 0);
    EXPECT(sip_profile_list_len(NULL) == 0);
    EXPECT(sip_profile_list_take(NULL, 0) == NULL);
    EXPECT(sip_str_list_len(NULL) == 0);
    EXPECT(sip_str_list_get(NULL, 0) == NULL);
    sip_profile_free(NULL);
    sip_profile_list_free(NULL);
    sip_str_list_free(NULL);
    sip_profile_registry_free(NULL);
    sip_managed_profile_registry_free(NULL);
    EXPECT(sip_strerror(-17719) != NULL && sip_strerror(12345) != NULL && sip_strerror(403) != NULL);
    EXPECT(strncmp(sip_version(), "0.", 2) == 0);

    /* A user-registry profile refuses setters; save of it is refused too. */
    sip_profile *up = NULL;
    EXPECT_RC(sip_profile_registry_profile(u, id, &up), SIP_OK);
    EXPECT_RC(sip_profile_set_str(up, SIP_KEY_PROVIDER_NAME, "x"), SIP_ERR_ACCESS_DENIED);
    EXPECT_RC(sip_profile_set_type(up, &unknown), SIP_ERR_ACCESS_DENIED);
    EXPECT_RC(sip_managed_profile_registry_save(m, up), SIP_ERR_BAD_HANDLE);
    EXPECT_RC(sip_profile_registry_enable(u, p), SIP_ERR_BAD_HANDLE); /* handle of another registry */

    /* A handle of another store. */
    sip_managed_profile_registry *om = NULL;
    EXPECT_RC(sip_managed_profile_registry_new(other_store, NULL, &om), SIP_OK);
    sip_profile *foreign = fresh(om);
    EXPECT_RC(sip_profile_set_str(foreign, SIP_KEY_USER_AOR, "sip:eve@example.com"), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_save(om, foreign), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_save(m, foreign), SIP_ERR_BAD_HANDLE);
    EXPECT_RC(sip_managed_profile_registry_destroy(m, foreign), SIP_ERR_BAD_HANDLE);
    EXPECT_RC(sip_managed_profile_registry_is_in_use(m, foreign, &flag), SIP_ERR_BAD_HANDLE);
    EXPECT(sip_managed_profile_registry_last_registration_error(m, foreign) == SIP_ERR_BAD_HANDLE);
    EXPECT_RC(sip_profile_registry_enable(u, foreign), SIP_ERR_BAD_HANDLE);

    /* A failed setter changed nothing on the handle either. */
    char prov[32];
    EXPECT_RC(sip_profile_get_str(p, SIP_KEY_PROVIDER_NAME, prov, sizeof prov, &len), SIP_OK);
    EXPECT(strcmp(prov, "before") == 0);

    /* Unsaved edits of p were never saved: the store is unchanged. */
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, "unsaved"), SIP_OK);
    sip_profile_free(p);
    sip_profile_free(up);
    sip_profile_free(foreign);
    sip_managed_profile_registry_free(om);
    sip_profile_registry_free(u);
    sip_managed_profile_registry_free(m);
    m = NULL;
    EXPECT_RC(sip_managed_profile_registry_new(store, NULL, &m), SIP_OK); /* a new server: from disk */
    snapshot(m, after, sizeof after);
    EXPECT(strcmp(before, after) == 0);
    if (strcmp(before, after) != 0) fprintf(stderr, "before: %s\nafter:  %s\n", before, after);
    sip_managed_profile_registry_free(m);
    printf("  bad input: documented codes, store unchanged\n");
}


/* Every pointer argument of every function, NULL in turn (others valid). */
static void null_sweep(const char *store) {
    sip_managed_profile_registry *m = NULL;
    sip_profile_registry *u = NULL;
    EXPECT_RC(sip_managed_profile_registry_new(store, NULL, &m), SIP_OK);
    EXPECT_RC(sip_profile_registry_new(store, NULL, &u), SIP_OK);
    sip_profile *p = fresh(m);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_USER_AOR, "sip:nul@example.com"), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_save(m, p), SIP_OK);
    uint32_t id = 0;
    sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id);
    sip_profile *up = NULL;
    EXPECT_RC(sip_profile_registry_profile(u, id, &up), SIP_OK);
    sip_profile_type_info t = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    sip_profile *o = NULL;
    sip_profile_list *l = NULL;
    sip_str_list *sl = NULL;
    char buf[64];
    size_t n = 0;
    uint32_t v = 0;
    bool b = false;
    const char *arr[] = {"x-a=1"};
    const int A_ = SIP_ERR_ARGUMENT;
#define N(call) EXPECT_RC(call, A_)
    N(sip_profile_registry_new(store, NULL, NULL));
    N(sip_managed_profile_registry_new(store, NULL, NULL));
    N(sip_profile_registry_profile(NULL, id, &o));            N(sip_profile_registry_profile(u, id, NULL));
    N(sip_managed_profile_registry_profile(NULL, id, &o));    N(sip_managed_profile_registry_profile(m, id, NULL));
    N(sip_profile_registry_default_profile(NULL, &o));        N(sip_profile_registry_default_profile(u, NULL));
    N(sip_managed_profile_registry_default_profile(NULL, &o)); N(sip_managed_profile_registry_default_profile(m, NULL));
    N(sip_profile_registry_profiles(NULL, &l));               N(sip_profile_registry_profiles(u, NULL));
    N(sip_managed_profile_registry_profiles(NULL, &l));       N(sip_managed_profile_registry_profiles(m, NULL));
    N(sip_profile_registry_profiles_by_type(NULL, &t, &l));   N(sip_profile_registry_profiles_by_type(u, NULL, &l));
    N(sip_profile_registry_profiles_by_type(u, &t, NULL));
    N(sip_managed_profile_registry_profiles_by_type(NULL, &t, &l)); N(sip_managed_profile_registry_profiles_by_type(m, NULL, &l));
    N(sip_managed_profile_registry_profiles_by_type(m, &t, NULL));
    N(sip_profile_registry_profiles_by_aor(NULL, "sip:a@b", &l)); N(sip_profile_registry_profiles_by_aor(u, NULL, &l));
    N(sip_profile_registry_profiles_by_aor(u, "sip:a@b", NULL));
    N(sip_managed_profile_registry_profiles_by_aor(NULL, "sip:a@b", &l)); N(sip_managed_profile_registry_profiles_by_aor(m, NULL, &l));
    N(sip_managed_profile_registry_profiles_by_aor(m, "sip:a@b", NULL));
    N(sip_profile_registry_supported_types(NULL, NULL, 0, &n)); N(sip_profile_registry_supported_types(u, NULL, 0, NULL));
    N(sip_managed_profile_registry_supported_types(NULL, NULL, 0, &n)); N(sip_managed_profile_registry_supported_types(m, NULL, 0, NULL));
    N(sip_profile_registry_last_registration_error(NULL, up)); N(sip_profile_registry_last_registration_error(u, NULL));
    N(sip_managed_profile_registry_last_registration_error(NULL, p)); N(sip_managed_profile_registry_last_registration_error(m, NULL));
    N(sip_profile_registry_enable(NULL, up));                 N(sip_profile_registry_enable(u, NULL));
    N(sip_profile_registry_disable(NULL, up));                N(sip_profile_registry_disable(u, NULL));
    N(sip_profile_registry_refresh_enable(NULL, up));         N(sip_profile_registry_refresh_enable(u, NULL));
    N(sip_profile_registry_force_disable(NULL, up));          N(sip_profile_registry_force_disable(u, NULL));
    EXPECT(!sip_profile_registry_is_enabled(NULL, up));       EXPECT(!sip_profile_registry_is_enabled(u, NULL));
    N(sip_managed_profile_registry_create(NULL, &t, &o));     N(sip_managed_profile_registry_create(m, NULL, &o));
    N(sip_managed_profile_registry_create(m, &t, NULL));
    N(sip_managed_profile_registry_save(NULL, p));            N(sip_managed_profile_registry_save(m, NULL));
    N(sip_managed_profile_registry_destroy(NULL, p));         N(sip_managed_profile_registry_destroy(m, NULL));
    N(sip_managed_profile_registry_is_in_use(NULL, p, &b));   N(sip_managed_profile_registry_is_in_use(m, NULL, &b));
    N(sip_managed_profile_registry_is_in_use(m, p, NULL));
    N(sip_profile_type(NULL, &t));                            N(sip_profile_type(p, NULL));
    N(sip_profile_clone(NULL, &o));                           N(sip_profile_clone(p, NULL));
    N(sip_profile_get_u32(NULL, 1, &v));                      N(sip_profile_get_u32(p, 1, NULL));
    N(sip_profile_get_bool(NULL, 4, &b));                     N(sip_profile_get_bool(p, 4, NULL));
    N(sip_profile_get_str(NULL, 7, buf, sizeof buf, &n));     N(sip_profile_get_str(p, 7, NULL, sizeof buf, &n));
    N(sip_profile_get_str(p, 7, buf, sizeof buf, NULL));
    N(sip_profile_get_str_array(NULL, 12, &sl));              N(sip_profile_get_str_array(p, 12, NULL));
    N(sip_profile_get_server_str(NULL, 130, 152, buf, sizeof buf, &n)); N(sip_profile_get_server_str(p, 130, 152, NULL, 8, &n));
    N(sip_profile_get_server_str(p, 130, 152, buf, sizeof buf, NULL));
    N(sip_profile_set_u32(NULL, 3, 1));
    N(sip_profile_set_bool(NULL, 4, true));
    N(sip_profile_set_str(NULL, 2, "x"));                     N(sip_profile_set_str(p, 2, NULL));
    N(sip_profile_set_str_array(NULL, 12, arr, 1));           N(sip_profile_set_str_array(p, 12, NULL, 1));
    N(sip_profile_set_server_str(NULL, 130, 150, "x"));       N(sip_profile_set_server_str(p, 130, 150, NULL));
    N(sip_profile_set_type(NULL, &t));                        N(sip_profile_set_type(p, NULL));
#undef N
    EXPECT(sip_profile_registration_status(NULL) == SIP_PROFILE_STATUS_UNREGISTERED);
    EXPECT(!sip_profile_is_context_active(NULL) && sip_profile_context_id(NULL) == 0);
    EXPECT(sip_profile_list_len(NULL) == 0 && sip_profile_list_take(NULL, 0) == NULL);
    EXPECT(sip_str_list_len(NULL) == 0 && sip_str_list_get(NULL, 0) == NULL);
    sip_set_log_callback(NULL, NULL, 0); /* NULL callback: back to stderr */
    (void)v;
    sip_profile_free(up);
    sip_profile_free(p);
    sip_profile_registry_free(u);
    sip_managed_profile_registry_free(m);
    printf("  NULL sweep: every pointer argument of every function\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s STORE OTHER_STORE\n", argv[0]);
        return 2;
    }
    sip_managed_profile_registry *m = NULL;
    EXPECT_RC(sip_managed_profile_registry_new(argv[1], NULL, &m), SIP_OK);
    printf("key table (ref §4.1-4.3):\n");
    key_table(m);
    value_rules(m);
    sip_managed_profile_registry_free(m);
    bad_input(argv[1], argv[2]);
    null_sweep(argv[1]);
    if (failures) {
        fprintf(stderr, "conformance: %d failure(s)\n", failures);
        return 1;
    }
    printf("conformance: all checks passed\n");
    return 0;
}
