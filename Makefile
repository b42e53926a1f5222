# Build and install libsipprofile, its headers, sipprofile.pc, the
# sipprofile command and the profile server executable (in
# $(LIBDIR)/../libexec/sipprofile/, where the installed library looks for it;
# SIPPROFILE_SERVER_BIN overrides at run time).
#
#   make                         release build
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make install PROFILE=debug   install the debug build (tests use this)
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
SERVERDIR = $(LIBDIR)/../libexec/sipprofile
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
	install -d $(DESTDIR)$(SERVERDIR)
	install -m 0755 $(TARGET)/sipprofile-server $(DESTDIR)$(SERVERDIR)/sipprofile-server

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libsipprofile.so* $(DESTDIR)$(LIBDIR)/pkgconfig/sipprofile.pc
	rm -f $(DESTDIR)$(INCLUDEDIR)/sipprofile.h $(DESTDIR)$(INCLUDEDIR)/sipprofile.hpp $(DESTDIR)$(BINDIR)/sipprofile
	rm -f $(DESTDIR)$(SERVERDIR)/sipprofile-server

.PHONY: all build install uninstall
