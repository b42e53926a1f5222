# Build and install libsipprofile, its headers, sipprofile.pc and the
# sipprofile command.
#
#   make                         release build
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make install PROFILE=debug   install the debug build (tests use this)
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
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

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libsipprofile.so* $(DESTDIR)$(LIBDIR)/pkgconfig/sipprofile.pc
	rm -f $(DESTDIR)$(INCLUDEDIR)/sipprofile.h $(DESTDIR)$(INCLUDEDIR)/sipprofile.hpp $(DESTDIR)$(BINDIR)/sipprofile

.PHONY: all build install uninstall
