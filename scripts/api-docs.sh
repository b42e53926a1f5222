#!/bin/sh
# The API reference: HTML made by Doxygen from the doc comments of
# include/sipprofile.h (which cbindgen copies from src/ffi/) and of the C++
# header bindings/cpp/sipprofile.hpp. Fails on a function without
# documentation. Prints the path of the index page.
#
#   scripts/api-docs.sh [OUTDIR]      default target/doc/api
set -eu
cd "$(dirname "$0")/.."
out=${1:-target/doc/api}
command -v doxygen > /dev/null 2>&1 || {
    echo "doxygen not found: apt-get install doxygen" >&2
    exit 1
}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
mkdir -p "$out"
warnings="$out/warnings.log"
doxygen - > /dev/null << DOXYFILE
PROJECT_NAME           = sipprofile
PROJECT_NUMBER         = $version
PROJECT_BRIEF          = "SIP profiles and registration, with the Symbian SIP Profile API semantics"
OUTPUT_DIRECTORY       = $out
INPUT                  = include/sipprofile.h bindings/cpp/sipprofile.hpp
FILE_PATTERNS          = *.h *.hpp
EXTRACT_ALL            = YES
EXTRACT_STATIC         = YES
JAVADOC_AUTOBRIEF      = YES
MARKDOWN_SUPPORT       = YES
TYPEDEF_HIDES_STRUCT   = NO
GENERATE_HTML          = YES
GENERATE_LATEX         = NO
GENERATE_TREEVIEW      = YES
SEARCHENGINE           = YES
QUIET                  = YES
WARN_IF_UNDOCUMENTED   = NO
HAVE_DOT               = NO
WARN_LOGFILE           = $warnings
EXCLUDE_SYMBOLS        = detail
PREDEFINED             = __cplusplus
DOXYFILE
# Each function of the C header is documented: its declaration follows a
# doc comment (cbindgen copies them from src/ffi/).
undocumented=$(awk '/^[a-z].*[ *]sip_[a-z_0-9]+\(/ && prev !~ /\*\/$/ { print } { prev = $0 }' include/sipprofile.h)
if [ -n "$undocumented" ]; then
    echo "undocumented in include/sipprofile.h:" >&2
    echo "$undocumented" >&2
    exit 1
fi
if [ -s "$warnings" ]; then
    cat "$warnings" >&2
    exit 1
fi
echo "$out/html/index.html"
