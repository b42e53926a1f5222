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
    sip_profile *held;
    int api_ok;
} reentrant;

static void reentrant_event(void *context, uint32_t id, sip_profile_event event) {
    reentrant *r = context;
    if (event == SIP_PROFILE_CREATED) {
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
    uint32_t id = add_profile(m, registrar);
    EXPECT(recorder_wait(&r->rec, id, 0, SIP_PROFILE_REGISTERED, 1, 10000));
    EXPECT(recorder_wait(&r->rec, id, 0, SIP_PROFILE_DEREGISTERED, 1, 10000));
    EXPECT(r->api_ok);
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
