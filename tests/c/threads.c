/*
 * Contract §1, "every function is thread-safe", where one object is shared:
 * - several threads take every index of one sip_profile_list at once: each
 *   entry is handed out exactly once (a second hand-out would be a double
 *   free, which ASan reports too);
 * - several threads set and get parameters of one managed profile handle at
 *   once: every value read is one that a setter wrote, never a torn one.
 * No peer needed. Built with ASan/UBSan (tests/c_interop.rs).
 *
 *   threads STORE
 */
#include "recorder.h"

#define PROFILES 48
#define TAKERS 6
#define ROUNDS 60
#define SETTERS 3
#define GETTERS 3
#define EDITS 4000

static sip_managed_profile_registry *m;
static pthread_barrier_t start;
static sip_profile_list *shared_list;
static sip_profile *taken[TAKERS][PROFILES];

static void *taker(void *arg) {
    int t = (int)(intptr_t)arg;
    pthread_barrier_wait(&start);
    /* Half the threads walk forwards, half backwards, to meet in the middle. */
    for (int k = 0; k < PROFILES; k++) {
        int i = (t % 2) ? PROFILES - 1 - k : k;
        taken[t][i] = sip_profile_list_take(shared_list, (size_t)i);
    }
    return NULL;
}

static sip_profile *shared_profile;
static volatile int setters_done = 0;
static volatile unsigned long torn = 0, reads = 0;

/* Values are runs of one letter, each length its own: a torn read shows up as
 * mixed letters or a length that does not match the letter. */
static void value_for(int writer, int n, char *buf) {
    int len = 1 + (writer * 7 + n) % 60;
    char c = (char)('a' + (len % 26));
    memset(buf, c, (size_t)len);
    buf[len] = '\0';
}

static void *setter(void *arg) {
    int w = (int)(intptr_t)arg;
    char buf[64];
    pthread_barrier_wait(&start);
    for (int n = 0; n < EDITS; n++) {
        value_for(w, n, buf);
        EXPECT_RC(sip_profile_set_str(shared_profile, SIP_KEY_PROVIDER_NAME, buf), SIP_OK);
        EXPECT_RC(sip_profile_set_u32(shared_profile, SIP_KEY_REGISTRATION_EXPIRES, (uint32_t)(100 + (n % 50))),
                  SIP_OK);
    }
    __atomic_add_fetch(&setters_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *getter(void *arg) {
    (void)arg;
    char buf[64];
    pthread_barrier_wait(&start);
    while (__atomic_load_n(&setters_done, __ATOMIC_ACQUIRE) < SETTERS) {
        size_t len = 0;
        int32_t rc = sip_profile_get_str(shared_profile, SIP_KEY_PROVIDER_NAME, buf, sizeof buf, &len);
        uint32_t expires = 0;
        int32_t rc2 = sip_profile_get_u32(shared_profile, SIP_KEY_REGISTRATION_EXPIRES, &expires);
        if (rc != SIP_OK || rc2 != SIP_OK) {
            __atomic_add_fetch(&torn, 1, __ATOMIC_RELAXED);
            continue;
        }
        int ok = len >= 1 && len <= 60 && strlen(buf) == len && buf[0] == (char)('a' + (len % 26));
        for (size_t i = 1; ok && i < len; i++) ok = buf[i] == buf[0];
        if (!ok || (expires != 3600 && (expires < 100 || expires >= 150))) {
            __atomic_add_fetch(&torn, 1, __ATOMIC_RELAXED);
        }
        __atomic_add_fetch(&reads, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void list_take_race(void) {
    unsigned long handed_twice = 0, never = 0;
    for (int round = 0; round < ROUNDS; round++) {
        EXPECT_RC(sip_managed_profile_registry_profiles(m, &shared_list), SIP_OK);
        EXPECT(sip_profile_list_len(shared_list) == PROFILES);
        memset(taken, 0, sizeof taken);
        pthread_t th[TAKERS];
        pthread_barrier_init(&start, NULL, TAKERS);
        for (int t = 0; t < TAKERS; t++) pthread_create(&th[t], NULL, taker, (void *)(intptr_t)t);
        for (int t = 0; t < TAKERS; t++) pthread_join(th[t], NULL);
        pthread_barrier_destroy(&start);
        for (int i = 0; i < PROFILES; i++) {
            int got = 0;
            for (int t = 0; t < TAKERS; t++) {
                if (taken[t][i] != NULL) {
                    got++;
                    /* Each handle is whole: its id reads back. */
                    uint32_t id = 0;
                    EXPECT_RC(sip_profile_get_u32(taken[t][i], SIP_KEY_PROFILE_ID, &id), SIP_OK);
                    EXPECT(id != 0);
                }
            }
            if (got > 1) handed_twice++;
            if (got == 0) never++;
            /* Free exactly one of them; a double hand-out is counted above. */
            for (int t = 0; t < TAKERS; t++)
                if (taken[t][i] != NULL) {
                    sip_profile_free(taken[t][i]);
                    break;
                }
        }
        EXPECT(sip_profile_list_take(shared_list, 0) == NULL);
        sip_profile_list_free(shared_list);
    }
    printf("list_take: %d rounds x %d threads x %d entries: %lu handed out twice, %lu never\n", ROUNDS, TAKERS,
           PROFILES, handed_twice, never);
    EXPECT(handed_twice == 0);
    EXPECT(never == 0);
}

static void get_set_race(void) {
    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    EXPECT_RC(sip_managed_profile_registry_create(m, &ietf, &shared_profile), SIP_OK);
    char first[64];
    value_for(0, 0, first);
    EXPECT_RC(sip_profile_set_str(shared_profile, SIP_KEY_PROVIDER_NAME, first), SIP_OK);
    pthread_t th[SETTERS + GETTERS];
    pthread_barrier_init(&start, NULL, SETTERS + GETTERS);
    for (int i = 0; i < SETTERS; i++) pthread_create(&th[i], NULL, setter, (void *)(intptr_t)i);
    for (int i = 0; i < GETTERS; i++) pthread_create(&th[SETTERS + i], NULL, getter, NULL);
    for (int i = 0; i < SETTERS + GETTERS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    printf("get/set: %d setters x %d edits, %lu reads, %lu torn\n", SETTERS, EDITS, reads, torn);
    EXPECT(torn == 0);
    EXPECT(reads > 0);
    /* The handle still saves as one consistent profile. */
    EXPECT_RC(sip_managed_profile_registry_save(m, shared_profile), SIP_OK);
    sip_profile_free(shared_profile);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: threads STORE\n");
        return 2;
    }
    EXPECT_RC(sip_managed_profile_registry_new(argv[1], NULL, &m), SIP_OK);
    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    for (int i = 0; i < PROFILES; i++) {
        sip_profile *p = NULL;
        EXPECT_RC(sip_managed_profile_registry_create(m, &ietf, &p), SIP_OK);
        EXPECT_RC(sip_managed_profile_registry_save(m, p), SIP_OK);
        sip_profile_free(p);
    }
    list_take_race();
    get_set_race();
    sip_managed_profile_registry_free(m);
    if (failures) {
        printf("threads: %d check(s) failed\n", failures);
        return 1;
    }
    printf("threads: all checks passed\n");
    return 0;
}
