# Build and install libsipprofile, its headers, sipprofile.pc, the
# sipprofile command and its man pages, and the profile server executable
# (in $(PREFIX)/libexec/sipprofile/, where the installed library and command
# look for it; SIPPROFILE_SERVER_BIN overrides at run time). scripts/deb.sh
# packages what this installs, so a file added here is in the .deb too.
#
#   make                         release build
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make install PROFILE=debug   install the debug build (tests use this)
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
LIBEXECDIR ?= $(PREFIX)/libexec
# The profile server executable: the library (and the command) look for it
# in <their directory>/../libexec/sipprofile/, then <library dir>/sipprofile/.
SERVERDIR ?= $(LIBEXECDIR)/sipprofile
CARGO ?= cargo
PROFILE ?= release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

ifeq ($(PROFILE),release)
CARGO_FLAGS = --release
TARGET = target/release
else
CARGO_FLAGS =
TARGET = target/debug
endif

all: build

build:
	$(CARGO) build $(CARGO_FLAGS) --lib --bins

install: build
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(TARGET)/libsipprofile.so $(DESTDIR)$(LIBDIR)/libsipprofile.so.$(VERSION)
	ln -sf libsipprofile.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libsipprofile.so.0
	ln -sf libsipprofile.so.0 $(DESTDIR)$(LIBDIR)/libsipprofile.so
	install -m 0644 include/sipprofile.h bindings/cpp/sipprofile.hpp $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' sipprofile.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/sipprofile.pc
	install -m 0755 $(TARGET)/sipprofile $(DESTDIR)$(BINDIR)/sipprofile
	install -d $(DESTDIR)$(MANDIR)/man1
	$(TARGET)/sipprofile manpages $(DESTDIR)$(MANDIR)/man1
	install -d $(DESTDIR)$(SERVERDIR)
	install -m 0755 $(TARGET)/sipprofile-server $(DESTDIR)$(SERVERDIR)/sipprofile-server
	# A LIBDIR that is not PREFIX/lib (Debian's lib/x86_64-linux-gnu) has no
	# ../libexec beside it: a link where the library looks next.
	if [ "$(abspath $(LIBDIR)/../libexec/sipprofile)" != "$(abspath $(SERVERDIR))" ]; then \
	    install -d $(DESTDIR)$(LIBDIR)/sipprofile && \
	    ln -sfr $(DESTDIR)$(SERVERDIR)/sipprofile-server $(DESTDIR)$(LIBDIR)/sipprofile/sipprofile-server; \
	fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libsipprofile.so* $(DESTDIR)$(LIBDIR)/pkgconfig/sipprofile.pc
	rm -f $(DESTDIR)$(INCLUDEDIR)/sipprofile.h $(DESTDIR)$(INCLUDEDIR)/sipprofile.hpp $(DESTDIR)$(BINDIR)/sipprofile
	rm -f $(DESTDIR)$(MANDIR)/man1/sipprofile.1 $(DESTDIR)$(MANDIR)/man1/sipprofile-*.1
	rm -f $(DESTDIR)$(SERVERDIR)/sipprofile-server $(DESTDIR)$(LIBDIR)/sipprofile/sipprofile-server

.PHONY: all build install uninstall
