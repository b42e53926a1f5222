/*
 * provision: create, update and destroy a profile with the managed registry.
 *
 *   provision STORE add AOR REGISTRAR USER PASSWORD   -> prints the new id
 *   provision STORE rename ID NAME
 *   provision STORE destroy ID
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipprofile.h"

static int fail(const char *what, int32_t rc) {
    fprintf(stderr, "%s: %s (%d)\n", what, sip_strerror(rc), rc);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s STORE add AOR REGISTRAR USER PASSWORD | rename ID NAME | destroy ID\n", argv[0]);
        return 2;
    }
    sip_managed_profile_registry *m = NULL;
    int32_t rc = sip_managed_profile_registry_new(argv[1], NULL, &m);
    if (rc != SIP_OK) return fail("open", rc);
    int status = 0;
    sip_profile *p = NULL;
    if (strcmp(argv[2], "add") == 0 && argc == 7) {
        sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
        if ((rc = sip_managed_profile_registry_create(m, &ietf, &p)) != SIP_OK ||
            (rc = sip_profile_set_str(p, SIP_KEY_USER_AOR, argv[3])) != SIP_OK ||
            (rc = sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, argv[4])) != SIP_OK ||
            (rc = sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_USER_NAME, argv[5])) != SIP_OK ||
            (rc = sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, argv[6])) != SIP_OK ||
            (rc = sip_managed_profile_registry_save(m, p)) != SIP_OK) {
            status = fail("add", rc);
        } else {
            uint32_t id = 0;
            sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id);
            printf("%u\n", id);
        }
    } else if (strcmp(argv[2], "rename") == 0 && argc == 5) {
        if ((rc = sip_managed_profile_registry_profile(m, (uint32_t)strtoul(argv[3], NULL, 10), &p)) != SIP_OK ||
            (rc = sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, argv[4])) != SIP_OK ||
            (rc = sip_managed_profile_registry_save(m, p)) != SIP_OK)
            status = fail("rename", rc);
    } else if (strcmp(argv[2], "destroy") == 0 && argc == 4) {
        if ((rc = sip_managed_profile_registry_profile(m, (uint32_t)strtoul(argv[3], NULL, 10), &p)) != SIP_OK ||
            (rc = sip_managed_profile_registry_destroy(m, p)) != SIP_OK)
            status = fail("destroy", rc);
    } else {
        fprintf(stderr, "bad arguments\n");
        status = 2;
    }
    sip_profile_free(p);
    sip_managed_profile_registry_free(m);
    return status;
}
