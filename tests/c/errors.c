/*
 * sip_last_error_message() (contract §8.3): after a failed call it names the
 * key, argument or path and says why; "" on a thread where nothing failed;
 * one message per thread. No peer needed.
 *
 *   errors DIR        (an empty directory the test may write in)
 */
#include "recorder.h"

#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static void path_in(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", dir, name);
}

/* The last call failed with `want` and its message holds every `parts`. */
#define EXPECT_FAILURE(call, want, ...)                                                          \
    do {                                                                                         \
        const char *parts_[] = {__VA_ARGS__, NULL};                                              \
        EXPECT_RC(call, want);                                                                   \
        const char *m_ = sip_last_error_message();                                               \
        printf("  %-60.60s -> %s\n", #call, m_);                                                 \
        for (int i_ = 0; parts_[i_]; i_++)                                                       \
            if (m_ == NULL || strstr(m_, parts_[i_]) == NULL) {                                  \
                fprintf(stderr, "FAIL %s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
                        m_ ? m_ : "(null)", parts_[i_]);                                         \
                failures++;                                                                      \
            }                                                                                    \
    } while (0)

static void *other_thread(void *arg) {
    (void)arg;
    /* Nothing failed on this thread yet, whatever the main thread did. */
    EXPECT(strcmp(sip_last_error_message(), "") == 0);
    sip_profile_type_info bad = {7, "IETF"};
    sip_managed_profile_registry *m = NULL;
    char store[600];
    path_in(store, sizeof store, "a.db");
    EXPECT_RC(sip_managed_profile_registry_new(store, NULL, &m), SIP_OK);
    sip_profile *p = NULL;
    EXPECT_FAILURE(sip_managed_profile_registry_create(m, &bad, &p), SIP_ERR_ARGUMENT, "type",
                   "profile_class 7");
    sip_managed_profile_registry_free(m);
    return NULL;
}

static void setters(sip_managed_profile_registry *m) {
    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    sip_profile *p = NULL;
    EXPECT_RC(sip_managed_profile_registry_create(m, &ietf, &p), SIP_OK);
    /* A value the key does not accept. */
    EXPECT_FAILURE(sip_profile_set_str(p, SIP_KEY_USER_AOR, "alice"), SIP_ERR_ARGUMENT,
                   "SIP_KEY_USER_AOR (7)", "\"alice\" is not a SIP URI");
    EXPECT_FAILURE(sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, "sip:a b"),
                   SIP_ERR_ARGUMENT, "SIP_KEY_SERVER_ADDRESS (152)", "not a SIP URI");
    EXPECT_FAILURE(sip_profile_set_u32(p, SIP_KEY_REGISTRATION_EXPIRES, 0), SIP_ERR_ARGUMENT,
                   "SIP_KEY_REGISTRATION_EXPIRES (1000)", "at least 1");
    /* The wrong setter for the key's type. */
    EXPECT_FAILURE(sip_profile_set_u32(p, SIP_KEY_USER_AOR, 5), SIP_ERR_NOT_FOUND, "SIP_KEY_USER_AOR (7)",
                   "string key", "sip_profile_set_str");
    /* Read-only, write-only, unknown. */
    EXPECT_FAILURE(sip_profile_set_u32(p, SIP_KEY_PROFILE_ID, 5), SIP_ERR_NOT_FOUND, "SIP_KEY_PROFILE_ID (1)",
                   "read-only");
    char buf[64];
    size_t len = 0;
    EXPECT_FAILURE(sip_profile_get_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, buf, sizeof buf,
                                              &len),
                   SIP_ERR_PERMISSION_DENIED, "SIP_KEY_DIGEST_PASSWORD (501)", "write-only");
    EXPECT_FAILURE(sip_profile_set_bool(p, 1999, true), SIP_ERR_NOT_FOUND, "key 1999", "not defined");
    EXPECT_FAILURE(sip_profile_set_server_str(p, 7, SIP_KEY_SERVER_ADDRESS, "sip:x"), SIP_ERR_ARGUMENT,
                   "server 7");
    /* Arguments, named. */
    EXPECT_FAILURE(sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, NULL), SIP_ERR_ARGUMENT, "`value`", "NULL");
    EXPECT_FAILURE(sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, "caf\xc3"), SIP_ERR_ARGUMENT, "`value`",
                   "UTF-8");
    const char *values[] = {"a=1", NULL};
    EXPECT_FAILURE(sip_profile_set_str_array(p, SIP_KEY_CONTACT_HEADER_PARAMS, values, 2), SIP_ERR_ARGUMENT,
                   "`values[1]`", "NULL");
    EXPECT_FAILURE(sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, NULL), SIP_ERR_ARGUMENT, "`out`");
    EXPECT_FAILURE(sip_profile_set_str(NULL, SIP_KEY_PROVIDER_NAME, "x"), SIP_ERR_ARGUMENT, "`profile`");
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, "a provider name"), SIP_OK);
    EXPECT_FAILURE(sip_profile_get_str(p, SIP_KEY_PROVIDER_NAME, buf, 4, &len), SIP_ERR_OVERFLOW,
                   "needs 16 bytes", "capacity is 4");
    /* The message lives on until the next call of the API on this thread. */
    const char *kept = sip_last_error_message();
    EXPECT(strstr(kept, "capacity is 4") != NULL);
    sip_profile_free(p);
}

static void enable_without_aor(sip_managed_profile_registry *m, const char *store) {
    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    sip_profile *p = NULL;
    uint32_t id = 0;
    EXPECT_RC(sip_managed_profile_registry_create(m, &ietf, &p), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_save(m, p), SIP_OK);
    EXPECT_RC(sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id), SIP_OK);
    sip_profile_registry *u = NULL;
    EXPECT_RC(sip_profile_registry_new(store, NULL, &u), SIP_OK);
    sip_profile *q = NULL;
    EXPECT_RC(sip_profile_registry_profile(u, id, &q), SIP_OK);
    char want[64];
    snprintf(want, sizeof want, "profile %u cannot register", id);
    EXPECT_FAILURE(sip_profile_registry_enable(u, q), SIP_ERR_ARGUMENT, want, "no AOR (SIP_KEY_USER_AOR)",
                   "no registrar");
    /* With an AOR, only the registrar is missing. */
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_USER_AOR, "sip:alice@example.com"), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_save(m, p), SIP_OK);
    sip_profile_free(q);
    EXPECT_RC(sip_profile_registry_profile(u, id, &q), SIP_OK);
    EXPECT_FAILURE(sip_profile_registry_enable(u, q), SIP_ERR_ARGUMENT, "no registrar");
    EXPECT_FAILURE(sip_profile_registry_enable(NULL, q), SIP_ERR_ARGUMENT, "`registry`", "NULL");
    sip_profile_list *l = NULL;
    EXPECT_FAILURE(sip_profile_registry_profiles_by_aor(u, NULL, &l), SIP_ERR_ARGUMENT, "`aor`", "NULL");
    const char *m2 = sip_last_error_message();
    EXPECT(strstr(m2, "AOR") == NULL);
    sip_profile_free(q);
    sip_profile_registry_free(u);
    sip_profile_free(p);
}

static void store_failures(void) {
    char path[600], target[600];
    sip_managed_profile_registry *m = NULL;
    EXPECT_FAILURE(sip_managed_profile_registry_new("", NULL, &m), SIP_ERR_ARGUMENT, "`store_path`", "empty");
    EXPECT_FAILURE(sip_managed_profile_registry_new("caf\xc3", NULL, &m), SIP_ERR_ARGUMENT, "`store_path`",
                   "UTF-8");
    /* A directory where the store file should be. */
    path_in(path, sizeof path, "is-a-directory.db");
    EXPECT(mkdir(path, 0700) == 0);
    EXPECT_FAILURE(sip_managed_profile_registry_new(path, NULL, &m), SIP_ERR_NOT_SUPPORTED, path,
                   "not a regular file");
    /* A dangling symbolic link (a link to a store is resolved to the store
     * itself, one server per file; this one would create a file elsewhere). */
    path_in(target, sizeof target, "nowhere.db");
    path_in(path, sizeof path, "link.db");
    EXPECT(symlink(target, path) == 0);
    EXPECT_FAILURE(sip_managed_profile_registry_new(path, NULL, &m), SIP_ERR_ACCESS_DENIED, path,
                   "symbolic link");
    /* Not a store. */
    path_in(path, sizeof path, "text.db");
    FILE *f = fopen(path, "w");
    EXPECT(f != NULL);
    if (f) {
        fputs("just some text, not a database of any kind\n", f);
        fclose(f);
    }
    EXPECT_FAILURE(sip_managed_profile_registry_new(path, NULL, &m), SIP_ERR_NOT_SUPPORTED, path,
                   "not a sipprofile store");
    EXPECT(m == NULL);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: errors DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    EXPECT(strcmp(sip_last_error_message(), "") == 0);
    char store[600];
    path_in(store, sizeof store, "a.db");
    sip_managed_profile_registry *m = NULL;
    EXPECT_RC(sip_managed_profile_registry_new(store, NULL, &m), SIP_OK);
    setters(m);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", sip_last_error_message());
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    /* The other thread's failure did not touch this thread's message. */
    EXPECT(strcmp(sip_last_error_message(), mine) == 0);
    enable_without_aor(m, store);
    sip_managed_profile_registry_free(m);
    store_failures();
    if (failures) {
        printf("errors: %d check(s) failed\n", failures);
        return 1;
    }
    printf("errors: all checks passed\n");
    return 0;
}
