/*
 * End-to-end test of issue #2 through the C API, against a real Kamailio
 * registrar with digest auth on loopback (started by tests/c_interop.rs).
 *
 *   e2e STORE REGISTRAR BINDINGS_COMMAND
 *
 * BINDINGS_COMMAND prints Kamailio's bindings (kamcmd ul.dump).
 */
#include "recorder.h"

static const char *bindings_cmd;

/* Does Kamailio hold a binding whose Contact has this user part? */
static int kamailio_has_binding(const char *contact_user) {
    FILE *p = popen(bindings_cmd, "r");
    if (!p) return -1;
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, p)) {
        if (strstr(line, "Address:") && strstr(line, contact_user)) found = 1;
    }
    pclose(p);
    return found;
}

static int wait_binding(const char *contact_user, int want, int ms) {
    for (int waited = 0; waited <= ms; waited += 100) {
        if (kamailio_has_binding(contact_user) == want) return 1;
        sleep_ms(100);
    }
    return 0;
}

static uint32_t provision(sip_managed_profile_registry *m, const char *registrar, const char *aor, const char *user,
                          const char *password) {
    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    sip_profile *p = NULL;
    EXPECT_RC(sip_managed_profile_registry_create(m, &ietf, &p), SIP_OK);
    EXPECT_RC(sip_profile_set_str(p, SIP_KEY_USER_AOR, aor), SIP_OK);
    EXPECT_RC(sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, registrar), SIP_OK);
    EXPECT_RC(sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_USER_NAME, user), SIP_OK);
    EXPECT_RC(sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, password), SIP_OK);
    EXPECT_RC(sip_profile_set_u32(p, SIP_KEY_REGISTRATION_EXPIRES, 300), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_save(m, p), SIP_OK);
    uint32_t id = 0;
    EXPECT_RC(sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id), SIP_OK);
    /* The password is write-only, even on the handle that set it. */
    char buf[64];
    size_t len = 0;
    EXPECT_RC(sip_profile_get_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, buf, sizeof buf, &len),
              SIP_ERR_PERMISSION_DENIED);
    sip_profile_free(p);
    return id;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s STORE REGISTRAR BINDINGS_COMMAND\n", argv[0]);
        return 2;
    }
    const char *store = argv[1], *registrar = argv[2];
    bindings_cmd = argv[3];
    recorder rm, r1, r2;
    recorder_init(&rm, "managed");
    recorder_init(&r1, "user1");
    recorder_init(&r2, "user2");
    sip_profile_registry_observer om = recorder_observer(&rm), o1 = recorder_observer(&r1),
                                  o2 = recorder_observer(&r2);

    printf("provision: CREATED goes to every registry\n");
    sip_managed_profile_registry *m = NULL;
    sip_profile_registry *u1 = NULL, *u2 = NULL;
    EXPECT_RC(sip_managed_profile_registry_new(store, &om, &m), SIP_OK);
    EXPECT_RC(sip_profile_registry_new(store, &o1, &u1), SIP_OK);
    EXPECT_RC(sip_profile_registry_new(store, &o2, &u2), SIP_OK);
    uint32_t alice = provision(m, registrar, "sip:alice@sipprofile.test", "alice", "alicepw");
    EXPECT(alice > 0);
    EXPECT(recorder_wait(&rm, alice, 0, SIP_PROFILE_CREATED, 1, 2000));
    EXPECT(recorder_wait(&r1, alice, 0, SIP_PROFILE_CREATED, 1, 2000));
    EXPECT(recorder_wait(&r2, alice, 0, SIP_PROFILE_CREATED, 1, 2000));
    EXPECT(!pthread_equal(r1.callback_thread, pthread_self()));

    printf("enable: REGISTERED, then the binding is in Kamailio\n");
    sip_profile *p1 = NULL;
    EXPECT_RC(sip_profile_registry_profile(u1, alice, &p1), SIP_OK);
    EXPECT(!sip_profile_is_context_active(p1));
    EXPECT_RC(sip_profile_registry_enable(u1, p1), SIP_OK);
    EXPECT_RC(sip_profile_registry_enable(u1, p1), SIP_ERR_ARGUMENT); /* already enabled here */
    EXPECT(sip_profile_registry_is_enabled(u1, p1));
    EXPECT(recorder_wait(&r1, alice, 0, SIP_PROFILE_REGISTERED, 1, 10000));
    EXPECT(sip_profile_registration_status(p1) == SIP_PROFILE_STATUS_REGISTERED);
    EXPECT(sip_profile_is_context_active(p1));
    EXPECT(sip_profile_context_id(p1) != 0);
    bool registered = false;
    EXPECT_RC(sip_profile_get_bool(p1, SIP_KEY_PROFILE_REGISTERED, &registered), SIP_OK);
    EXPECT(registered);
    uint32_t granted = 0;
    EXPECT_RC(sip_profile_get_u32(p1, SIP_KEY_GRANTED_EXPIRES, &granted), SIP_OK);
    EXPECT(granted > 0 && granted <= 300);
    sip_str_list *aors = NULL;
    EXPECT_RC(sip_profile_get_str_array(p1, SIP_KEY_REGISTERED_AORS, &aors), SIP_OK);
    EXPECT(sip_str_list_len(aors) == 1);
    EXPECT(sip_str_list_len(aors) == 1 && strcmp(sip_str_list_get(aors, 0), "sip:alice@sipprofile.test") == 0);
    sip_str_list_free(aors);
    char contact_user[64] = "", contact[512] = "";
    size_t len = 0;
    EXPECT_RC(sip_profile_get_str(p1, SIP_KEY_CONTACT_HEADER_USER, contact_user, sizeof contact_user, &len), SIP_OK);
    EXPECT(len == 20);
    EXPECT_RC(sip_profile_get_str(p1, SIP_KEY_REGISTERED_CONTACT, contact, sizeof contact, &len), SIP_OK);
    EXPECT(strstr(contact, contact_user) != NULL);
    /* Too small a buffer: nothing written, length needed reported. */
    char tiny[4] = "xyz";
    EXPECT_RC(sip_profile_get_str(p1, SIP_KEY_REGISTERED_CONTACT, tiny, sizeof tiny, &len), SIP_ERR_OVERFLOW);
    EXPECT(len == strlen(contact) && strcmp(tiny, "xyz") == 0);
    EXPECT(wait_binding(contact_user, 1, 3000));

    printf("a second registry enables it: registered at once, no new event\n");
    sip_profile *p2 = NULL;
    EXPECT_RC(sip_profile_registry_profile(u2, alice, &p2), SIP_OK);
    EXPECT_RC(sip_profile_registry_enable(u2, p2), SIP_OK);
    EXPECT(sip_profile_is_context_active(p2));
    sleep_ms(500);
    EXPECT(recorder_count(&r2, alice, 0, SIP_PROFILE_REGISTERED) == 0);

    printf("destroy is refused while enabled anywhere\n");
    sip_profile *pm = NULL;
    EXPECT_RC(sip_managed_profile_registry_profile(m, alice, &pm), SIP_OK);
    bool in_use = false;
    EXPECT_RC(sip_managed_profile_registry_is_in_use(m, pm, &in_use), SIP_OK);
    EXPECT(in_use);
    EXPECT_RC(sip_managed_profile_registry_destroy(m, pm), SIP_ERR_IN_USE);
    /* Setters are refused on user-registry profiles. */
    EXPECT_RC(sip_profile_set_str(p1, SIP_KEY_PROVIDER_NAME, "x"), SIP_ERR_ACCESS_DENIED);

    printf("disable by both: DEREGISTERED, then the binding is gone\n");
    EXPECT_RC(sip_profile_registry_disable(u1, p1), SIP_OK);
    sleep_ms(300);
    EXPECT(recorder_count(&r1, alice, 0, SIP_PROFILE_DEREGISTERED) == 0); /* u2 still uses it */
    EXPECT(kamailio_has_binding(contact_user) == 1);
    EXPECT_RC(sip_profile_registry_disable(u2, p2), SIP_OK);
    EXPECT(recorder_wait(&r2, alice, 0, SIP_PROFILE_DEREGISTERED, 1, 10000));
    EXPECT(recorder_wait(&r1, alice, 0, SIP_PROFILE_DEREGISTERED, 1, 2000));
    EXPECT(sip_profile_registration_status(p1) == SIP_PROFILE_STATUS_UNREGISTERED);
    EXPECT(!sip_profile_is_context_active(p2));
    EXPECT(sip_profile_context_id(p2) == 0);
    EXPECT(wait_binding(contact_user, 0, 3000));
    EXPECT_RC(sip_managed_profile_registry_is_in_use(m, pm, &in_use), SIP_OK);
    EXPECT(!in_use);

    printf("wrong password: one error callback with the registrar's status, not enabled\n");
    uint32_t bob = provision(m, registrar, "sip:bob@sipprofile.test", "bob", "wrong-password");
    sip_profile *pb = NULL;
    EXPECT_RC(sip_profile_registry_profile(u1, bob, &pb), SIP_OK);
    EXPECT_RC(sip_profile_registry_enable(u1, pb), SIP_OK);
    EXPECT(recorder_wait(&r1, bob, 1, 401, 1, 10000));
    EXPECT(!sip_profile_registry_is_enabled(u1, pb));
    EXPECT(sip_profile_registry_last_registration_error(u1, pb) == 401);
    EXPECT(sip_profile_registration_status(pb) == SIP_PROFILE_STATUS_UNREGISTERED);
    sleep_ms(1000);
    EXPECT(recorder_count(&r1, bob, 1, 401) == 1); /* no retry loop */
    EXPECT(recorder_count(&r1, bob, 0, SIP_PROFILE_REGISTERED) == 0);
    sip_profile *pbm = NULL;
    EXPECT_RC(sip_managed_profile_registry_profile(m, bob, &pbm), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_destroy(m, pbm), SIP_OK);
    EXPECT(recorder_wait(&r1, bob, 0, SIP_PROFILE_DESTROYED, 1, 2000));
    sip_profile *gone = NULL;
    EXPECT_RC(sip_profile_registry_profile(u1, bob, &gone), SIP_ERR_NOT_FOUND);
    sip_profile_free(pbm);
    sip_profile_free(pb);

    printf("free every registry: the server stops; profiles outlive it as stale handles\n");
    sip_profile_free(p2);
    sip_profile_registry_free(u2);
    sip_profile_registry_free(u1);
    sip_managed_profile_registry_free(m);
    EXPECT_RC(sip_profile_registry_enable(NULL, p1), SIP_ERR_ARGUMENT);
    uint32_t stale_id = 0;
    EXPECT_RC(sip_profile_get_u32(p1, SIP_KEY_PROFILE_ID, &stale_id), SIP_OK);
    EXPECT(stale_id == alice);
    EXPECT_RC(sip_profile_set_str(pm, SIP_KEY_PROVIDER_NAME, "late"), SIP_OK);
    sip_profile *late_clone = NULL;
    EXPECT_RC(sip_profile_clone(pm, &late_clone), SIP_ERR_BAD_HANDLE);
    sip_profile_free(p1);
    sip_profile_free(pm);

    printf("persistence: a new server finds the profile, with its password\n");
    recorder r3;
    recorder_init(&r3, "user3");
    sip_profile_registry_observer o3 = recorder_observer(&r3);
    sip_profile_registry *u3 = NULL;
    EXPECT_RC(sip_profile_registry_new(store, &o3, &u3), SIP_OK);
    sip_profile *p3 = NULL;
    EXPECT_RC(sip_profile_registry_profile(u3, alice, &p3), SIP_OK);
    char aor[128];
    EXPECT_RC(sip_profile_get_str(p3, SIP_KEY_USER_AOR, aor, sizeof aor, &len), SIP_OK);
    EXPECT(strcmp(aor, "sip:alice@sipprofile.test") == 0);
    sip_profile *dflt = NULL;
    EXPECT_RC(sip_profile_registry_default_profile(u3, &dflt), SIP_OK);
    uint32_t dflt_id = 0;
    EXPECT_RC(sip_profile_get_u32(dflt, SIP_KEY_PROFILE_ID, &dflt_id), SIP_OK);
    EXPECT(dflt_id == alice); /* the first profile saved is the default */
    sip_profile_free(dflt);
    EXPECT_RC(sip_profile_registry_enable(u3, p3), SIP_OK);
    EXPECT(recorder_wait(&r3, alice, 0, SIP_PROFILE_REGISTERED, 1, 10000));
    EXPECT_RC(sip_profile_registry_disable(u3, p3), SIP_OK);
    EXPECT(recorder_wait(&r3, alice, 0, SIP_PROFILE_DEREGISTERED, 1, 10000));
    sip_profile_free(p3);
    sip_profile_registry_free(u3);

    recorder_destroy(&rm);
    recorder_destroy(&r1);
    recorder_destroy(&r2);
    recorder_destroy(&r3);
    if (failures) {
        fprintf(stderr, "e2e: %d failure(s)\n", failures);
        return 1;
    }
    printf("e2e: all checks passed\n");
    return 0;
}
