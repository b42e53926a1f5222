/*
 * Callback rules of contract §2, checked under ASan/UBSan against Kamailio:
 * callbacks run on a library thread and may call any API function; a
 * registry freed inside its own callback is released when the callback
 * returns; a registry freed from another thread while its callback runs
 * waits for it, and its context can be freed right after.
 *
 *   callbacks STORE REGISTRAR
 */
#include "recorder.h"

/* --- 1. every kind of API call from inside a callback ------------------ */

typedef struct reentrant {
    recorder rec;
    sip_profile_registry *self;
    sip_managed_profile_registry *managed;
    sip_profile *held;
    int api_ok;
    int all_calls_ok;
} reentrant;

/* Every other function of the API, called from inside a callback. */
static int call_everything(reentrant *r, uint32_t id) {
    int ok = 1;
    sip_profile *p = NULL, *d = NULL, *c = NULL, *mp = NULL, *created = NULL;
    sip_profile_list *l = NULL;
    sip_str_list *sl = NULL;
    sip_profile_type_info t = {SIP_PROFILE_CLASS_INTERNET, "IETF"}, types[4];
    char buf[256];
    size_t n = 0;
    bool b = false;
    uint32_t v = 0;
    ok &= sip_profile_registry_profile(r->self, id, &p) == SIP_OK;
    ok &= sip_profile_registry_default_profile(r->self, &d) == SIP_OK;
    ok &= sip_profile_registry_profiles_by_type(r->self, &t, &l) == SIP_OK;
    sip_profile_free(sip_profile_list_take(l, 0));
    sip_profile_list_free(l);
    ok &= sip_profile_registry_profiles_by_aor(r->self, "sip:alice@sipprofile.test", &l) == SIP_OK;
    ok &= sip_profile_list_len(l) >= 1;
    sip_profile_list_free(l);
    ok &= sip_profile_registry_supported_types(r->self, types, 4, &n) == SIP_OK && n == 2;
    ok &= sip_profile_registry_last_registration_error(r->self, p) == SIP_OK;
    ok &= !sip_profile_registry_is_enabled(r->self, p);
    ok &= sip_profile_registry_refresh_enable(r->self, p) == SIP_ERR_ARGUMENT; /* not enabled */
    ok &= sip_profile_registry_force_disable(r->self, p) == SIP_OK;          /* unregistered: no-op */
    ok &= sip_profile_get_str(p, SIP_KEY_USER_AOR, buf, sizeof buf, &n) == SIP_OK;
    ok &= sip_profile_get_bool(p, SIP_KEY_SIG_COMP, &b) == SIP_OK;
    ok &= sip_profile_get_u32(p, SIP_KEY_REGISTRATION_EXPIRES, &v) == SIP_OK;
    ok &= sip_profile_get_str_array(p, SIP_KEY_HEADERS, &sl) == SIP_OK;
    sip_str_list_free(sl);
    ok &= sip_profile_get_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, buf, sizeof buf, &n) == SIP_OK;
    ok &= sip_profile_type(p, &t) == SIP_OK;
    ok &= sip_profile_registration_status(p) == SIP_PROFILE_STATUS_UNREGISTERED;
    ok &= sip_profile_context_id(p) == 0 && !sip_profile_is_context_active(p);
    ok &= sip_profile_clone(p, &c) == SIP_ERR_ACCESS_DENIED; /* user-registry profile */
    ok &= sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, "x") == SIP_ERR_ACCESS_DENIED;
    ok &= sip_strerror(SIP_ERR_IN_USE) != NULL && sip_version() != NULL;
    /* The managed registry's functions too. */
    ok &= sip_managed_profile_registry_profile(r->managed, id, &mp) == SIP_OK;
    ok &= sip_managed_profile_registry_is_in_use(r->managed, mp, &b) == SIP_OK;
    ok &= sip_profile_set_str(mp, SIP_KEY_PROVIDER_NAME, "from a callback") == SIP_OK;
    ok &= sip_profile_set_bool(mp, 700, true) == SIP_OK && sip_profile_set_u32(mp, 700, 7) == SIP_OK;
    const char *hdr[] = {"X-Cb: 1"};
    ok &= sip_profile_set_str_array(mp, SIP_KEY_HEADERS, hdr, 1) == SIP_OK;
    ok &= sip_profile_set_server_str(mp, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_REALM, "sipprofile.test") == SIP_OK;
    ok &= sip_profile_set_type(mp, &t) == SIP_OK;
    ok &= sip_managed_profile_registry_save(r->managed, mp) == SIP_OK;
    ok &= sip_profile_clone(mp, &c) == SIP_OK;
    ok &= sip_managed_profile_registry_create(r->managed, &t, &created) == SIP_OK;
    ok &= sip_profile_set_str(created, SIP_KEY_USER_AOR, "sip:temp@sipprofile.test") == SIP_OK;
    ok &= sip_managed_profile_registry_save(r->managed, created) == SIP_OK;
    ok &= sip_managed_profile_registry_destroy(r->managed, created) == SIP_OK;
    ok &= sip_managed_profile_registry_last_registration_error(r->managed, mp) == SIP_OK;
    sip_profile_free(created);
    sip_profile_free(c);
    sip_profile_free(mp);
    sip_profile_free(d);
    sip_profile_free(p);
    return ok;
}

static void reentrant_event(void *context, uint32_t id, sip_profile_event event) {
    reentrant *r = context;
    if (event == SIP_PROFILE_CREATED && !r->held) {
        r->all_calls_ok = call_everything(r, id);
        sip_profile *p = NULL;
        int ok = sip_profile_registry_profile(r->self, id, &p) == SIP_OK;
        uint32_t got = 0;
        ok = ok && sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &got) == SIP_OK && got == id;
        sip_profile_list *all = NULL;
        ok = ok && sip_profile_registry_profiles(r->self, &all) == SIP_OK && sip_profile_list_len(all) >= 1;
        sip_profile_list_free(all);
        ok = ok && sip_profile_registry_enable(r->self, p) == SIP_OK; /* enable from a callback */
        /* Keep the handle: freeing the last handle would disable it again. */
        r->api_ok = ok;
        r->held = p;
    }
    if (event == SIP_PROFILE_REGISTERED) {
        sip_profile *p = NULL;
        if (sip_profile_registry_profile(r->self, id, &p) == SIP_OK) {
            r->api_ok = r->api_ok && sip_profile_is_context_active(p);
            sip_profile_registry_disable(r->self, p); /* disable from a callback */
            sip_profile_free(p);
        }
    }
    recorder_push(&r->rec, id, 0, (int32_t)event);
}

/* --- 2. a registry freed inside its own callback ---------------------- */

typedef struct self_freeing {
    recorder rec;
    sip_profile_registry *self;
    int freed;
} self_freeing;

static void self_freeing_event(void *context, uint32_t id, sip_profile_event event) {
    self_freeing *s = context;
    recorder_push(&s->rec, id, 0, (int32_t)event);
    if (!s->freed) {
        s->freed = 1;
        sip_profile_registry_free(s->self);
    }
}

/* --- 3. freed from another thread while its callback runs ------------- */

typedef struct slow {
    recorder rec;
    volatile int in_callback;
} slow;

static void slow_event(void *context, uint32_t id, sip_profile_event event) {
    slow *s = context;
    s->in_callback = 1;
    sleep_ms(500);
    recorder_push(&s->rec, id, 0, (int32_t)event); /* touches the context after the sleep */
    s->in_callback = 0;
}

static uint32_t add_profile(sip_managed_profile_registry *m, const char *registrar) {
    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    sip_profile *p = NULL;
    uint32_t id = 0;
    EXPECT_RC(sip_managed_profile_registry_create(m, &ietf, &p), SIP_OK);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_USER_AOR, "sip:alice@sipprofile.test"), SIP_OK);
    EXPECT_RC(sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, registrar), SIP_OK);
    EXPECT_RC(sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_USER_NAME, "alice"), SIP_OK);
    EXPECT_RC(sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, "alicepw"), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_save(m, p), SIP_OK);
    EXPECT_RC(sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id), SIP_OK);
    sip_profile_free(p);
    return id;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s STORE REGISTRAR\n", argv[0]);
        return 2;
    }
    const char *store = argv[1], *registrar = argv[2];
    sip_managed_profile_registry *m = NULL;
    EXPECT_RC(sip_managed_profile_registry_new(store, NULL, &m), SIP_OK);

    printf("API calls from inside callbacks\n");
    reentrant *r = calloc(1, sizeof *r);
    recorder_init(&r->rec, "reentrant");
    sip_profile_registry_observer ro = {r, reentrant_event, on_error};
    EXPECT_RC(sip_profile_registry_new(store, &ro, &r->self), SIP_OK);
    r->managed = m;
    uint32_t id = add_profile(m, registrar);
    EXPECT(recorder_wait(&r->rec, id, 0, SIP_PROFILE_REGISTERED, 1, 10000));
    EXPECT(recorder_wait(&r->rec, id, 0, SIP_PROFILE_DEREGISTERED, 1, 10000));
    EXPECT(r->api_ok);
    EXPECT(r->all_calls_ok);
    EXPECT(!pthread_equal(r->rec.callback_thread, pthread_self()));
    sip_profile_free(r->held);
    sip_profile_registry_free(r->self);
    recorder_destroy(&r->rec);
    free(r); /* the context may go right after free returns */

    printf("a registry freed inside its own callback\n");
    self_freeing *s = calloc(1, sizeof *s);
    recorder_init(&s->rec, "self-freeing");
    sip_profile_registry_observer so = {s, self_freeing_event, NULL};
    EXPECT_RC(sip_profile_registry_new(store, &so, &s->self), SIP_OK);
    uint32_t id2 = add_profile(m, registrar);
    EXPECT(recorder_wait(&s->rec, id2, 0, SIP_PROFILE_CREATED, 1, 5000));
    uint32_t id3 = add_profile(m, registrar);
    sleep_ms(500);
    EXPECT(s->freed == 1);
    EXPECT(recorder_count(&s->rec, id3, 0, SIP_PROFILE_CREATED) == 0); /* nothing after its free */
    recorder_destroy(&s->rec);
    free(s);

    printf("a registry freed from another thread while its callback runs\n");
    slow *w = calloc(1, sizeof *w);
    recorder_init(&w->rec, "slow");
    sip_profile_registry_observer wo = {w, slow_event, NULL};
    sip_profile_registry *wr = NULL;
    EXPECT_RC(sip_profile_registry_new(store, &wo, &wr), SIP_OK);
    add_profile(m, registrar);
    for (int i = 0; i < 100 && !w->in_callback; i++) sleep_ms(10);
    EXPECT(w->in_callback);
    sip_profile_registry_free(wr); /* must wait for the running callback */
    EXPECT(!w->in_callback);
    recorder_destroy(&w->rec);
    free(w); /* ASan reports any later use */
    add_profile(m, registrar);
    sleep_ms(300);

    sip_managed_profile_registry_free(m);
    if (failures) {
        fprintf(stderr, "callbacks: %d failure(s)\n", failures);
        return 1;
    }
    printf("callbacks: all checks passed\n");
    return 0;
}
