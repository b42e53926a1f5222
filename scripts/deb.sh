#!/bin/sh
# Builds a Debian package of sipprofile with dpkg-deb: the library with its
# SONAME link and development link, the headers, sipprofile.pc, the sipprofile
# command with its man pages, the profile server executable, and whatever else
# `make install` installs. Prints the .deb's path.
#
#   scripts/deb.sh [OUTDIR]              release build, OUTDIR default target/debian
#   PROFILE=debug scripts/deb.sh OUTDIR  package the debug build (the tests do)
#   DEB_COMPRESS=none|gzip|xz            dpkg-deb's compression (default xz)
set -eu
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
out=${1:-target/debian}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2> /dev/null || echo x86_64-linux-gnu)
stage=$(mktemp -d /tmp/sipprofile-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"

make -s install PROFILE="$profile" DESTDIR="$root" PREFIX=/usr LIBDIR="/usr/lib/$multiarch" > /dev/null
gzip -9n "$root"/usr/share/man/man1/*.1
# As Debian ships binaries: without debug sections (the dynamic symbols stay).
for f in "$root"/usr/bin/* "$root"/usr/lib/"$multiarch"/libsipprofile.so.*.* "$root"/usr/libexec/sipprofile/sipprofile-server; do
    [ -f "$f" ] && [ ! -L "$f" ] && strip --strip-unneeded "$f"
done
install -d "$root/usr/share/doc/sipprofile"
cat > "$root/usr/share/doc/sipprofile/copyright" << COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sipprofile

Files: *
License: MIT or Apache-2.0
COPYRIGHT

# The C libraries the library and the command link against.
depends="libc6 (>= 2.34), libgcc-s1"
size=$(du -sk "$root" | cut -f1)
install -d "$root/DEBIAN"
cat > "$root/DEBIAN/control" << CONTROL
Package: sipprofile
Version: $version
Architecture: $arch
Maintainer: sipprofile developers <sipprofile@localhost>
Installed-Size: $size
Depends: $depends
Section: libs
Priority: optional
Description: SIP profiles (accounts) and SIP registration, as a C library
 libsipprofile brings the Symbian OS SIP Profile API to C, C++ and Python:
 persistent SIP profiles, observers, and real SIP registration (digest
 authentication, refresh, retry) over UDP, TCP and TLS. This package holds
 the library (libsipprofile.so.0), its headers and pkg-config file, the
 profile server it starts on demand, and the sipprofile command.
CONTROL
# Run ldconfig after installing or removing, as for any shared library.
echo "activate-noawait ldconfig" > "$root/DEBIAN/triggers"
mkdir -p "$out"
deb="$out/sipprofile_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$root" "$deb" > /dev/null
echo "$deb"
