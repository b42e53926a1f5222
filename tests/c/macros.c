/*
 * The header defines no name of the application's: an application's own
 * DEBUG survives the include unchanged, and the common names that internal
 * constants once leaked as macros (ERROR, WARN, INFO, DEBUG, TRACE,
 * PROFILE_ID, USER_AOR, ...) stay free for the application to use. Built
 * with -Wall -Wextra -Wpedantic -Werror like every test here, so a
 * redefinition warning fails the build.
 *
 *   macros
 */
#define DEBUG 1
#include "sipprofile.h"

#if DEBUG != 1
#error "sipprofile.h changed the application's DEBUG"
#endif
#undef DEBUG

#include <stdio.h>

enum { ERROR, WARN, INFO, DEBUG, TRACE };
enum { PROFILE_ID = 100, USER_AOR, SERVER_REGISTRAR, DIGEST_PASSWORD, REGISTRATION_EXPIRES };
static const int SIP_FORBIDDEN = 17713; /* only SIP_ERR_SIP_FORBIDDEN is the library's */
static const int CLASS_IMS = 1, MAX_MESSAGE = 2, SCHEMA_VERSION = 3;
static const int SIPPROFILE_VERSION_MAJOR = 0;

int main(void) {
    int failures = 0;
    if (ERROR != 0 || DEBUG != 3 || TRACE != 4 || PROFILE_ID != 100) failures++;
    if (SIP_ERR_SIP_FORBIDDEN != -17713 || SIP_FORBIDDEN != 17713) failures++;
    if (SIP_KEY_PROFILE_ID != 1 || SIP_KEY_USER_AOR != 7 || SIP_SERVER_REGISTRAR != 130) failures++;
    if (CLASS_IMS + MAX_MESSAGE + SCHEMA_VERSION + SIPPROFILE_VERSION_MAJOR != 6) failures++;
    (void)WARN, (void)INFO, (void)USER_AOR, (void)SERVER_REGISTRAR, (void)DIGEST_PASSWORD,
        (void)REGISTRATION_EXPIRES;
    if (failures) {
        printf("macros: %d check(s) failed\n", failures);
        return 1;
    }
    printf("macros: all checks passed\n");
    return 0;
}
