# libscalar - plain make, no configure step.
#
#   make              shared + static library and the `scalar` CLI (build/release/)
#   make check        every test that runs in CI (< 10 minutes on 2 cores)
#   make asan         the C test suites under AddressSanitizer + UBSan (build/asan/)
#   make valgrind     the unit tests under valgrind's leak checker
#   make bench        speed ratios against baselines measured in the same run
#   make docs         Doxygen HTML in build/docs/, failing on any warning
#   make fuzz         libFuzzer targets, FUZZ_SECONDS each (clang)
#   make demo         build, `scalar info`, selftest, then `scalar paper --quick`: the toy model,
#                     its SAEs, their SCALAR evaluation and the paper's tables (FULL=1: full size)
#   make deps         apt-get the build and test dependencies (Debian 12)
#   make install      PREFIX=/usr/local DESTDIR= (headers, libraries, scalar.pc, CLI)
#
# Objects go to build/$(CONFIG)/ so release and asan builds live side by side.

.SUFFIXES:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all
SHELL := /bin/bash

# ---- version, scraped from the one header that holds it (zstd libzstd.mk) ----
vnum = $(shell sed -n 's/^\#define SCALAR_$(1) \([0-9]*\)$$/\1/p' include/scalar/version.h)
VERSION_MAJOR := $(call vnum,VERSION_MAJOR)
VERSION_MINOR := $(call vnum,VERSION_MINOR)
VERSION_PATCH := $(call vnum,VERSION_PATCH)
ABI := $(call vnum,ABI_VERSION)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

# ---- install paths ----
PREFIX ?= /usr/local
EXEC_PREFIX ?= $(PREFIX)
BINDIR ?= $(EXEC_PREFIX)/bin
LIBDIR ?= $(EXEC_PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=
INSTALL ?= install
INSTALL_DATA ?= $(INSTALL) -m 644

# ---- tools and dependencies ----
CC := $(if $(filter default,$(origin CC)),cc,$(CC))
CXX := $(if $(filter default,$(origin CXX)),c++,$(CXX))
CLANG ?= clang
PKG_CONFIG ?= pkg-config
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
# Debian's BLIS ships no .pc file.  Link the OpenMP build (libblis4-openmp):
# BLIS and our own loops then share one libgomp pool.
BLIS_CFLAGS ?= -I/usr/include/$(MULTIARCH)/blis-openmp
BLIS_LIBS ?= -lblis -lm
CJSON_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcjson 2>/dev/null)
CJSON_LIBS ?= $(shell $(PKG_CONFIG) --libs libcjson 2>/dev/null || echo -lcjson)
CHECK_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS ?= $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm -pthread)
# The first Python that has numpy runs the binding's tests.
PYTHON ?= $(shell for p in python3 /usr/bin/python3; do $$p -c 'import numpy' 2>/dev/null && { command -v $$p; break; }; done)

# ---- flags ----
CONFIG ?= release
BUILD := build/$(CONFIG)
OPT_release := -O2 -g
OPT_asan := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT_debug := -O0 -g -DSCALAR_DEBUG
WARN := -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# Our own loops (BLIS picks its kernels at run time) are compiled for the build
# machine's vector ISA: x86-64-v3 (AVX2 + FMA) when its CPU has both.  A
# library built so refuses, with a message, to create a context on a CPU
# without them; `make ARCH_FLAGS=` builds for any x86-64.
ARCH_FLAGS ?= $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && \
  $(CC) -march=x86-64-v3 -E -x c /dev/null >/dev/null 2>&1 && echo -march=x86-64-v3)
BASE_CFLAGS := -std=c11 $(WARN) $(or $(OPT_$(CONFIG)),-O2 -g) $(ARCH_FLAGS) -D_POSIX_C_SOURCE=200809L -fopenmp -pthread
LIB_CFLAGS := $(BASE_CFLAGS) -fPIC -fvisibility=hidden -Iinclude $(BLIS_CFLAGS) $(CJSON_CFLAGS) $(CFLAGS)
DEP_LIBS := $(BLIS_LIBS) $(CJSON_LIBS) -fopenmp -pthread -lm
LDFLAGS ?=
SAN_LDFLAGS := $(if $(filter asan,$(CONFIG)),-fsanitize=address -fsanitize=undefined)

V ?= 0
Q := $(if $(filter 1,$(V)),,@)

# ---- sources ----
LIB_SRC := $(sort $(wildcard lib/*/*.c lib/*/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC := $(sort $(wildcard tools/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
# check_svg_plot.c tests CLI code (tools/), which the library lacks: a program
# of its own, run by `unit` too.
SVG_TEST_SRC := tests/unit/check_svg_plot.c
TEST_SRC := $(filter-out $(SVG_TEST_SRC),$(sort $(wildcard tests/unit/*.c)))
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_SRC := $(sort $(wildcard bench/*.c))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
PUBLIC_HEADERS := $(sort $(wildcard include/scalar/*.h))
SYS_HEADERS := $(sort $(wildcard include/scalar/sys/*.h))

SONAME := libscalar.so.$(ABI)
SHLIB := $(BUILD)/libscalar.so.$(VERSION)
STLIB := $(BUILD)/libscalar.a
CLI := $(BUILD)/scalar
UNIT := $(BUILD)/check_scalar
SVG_UNIT := $(BUILD)/check_svg_plot
MAP := $(BUILD)/scalar.map

.PHONY: install-check all check test unit asan valgrind bench docs examples examples-check install \
        uninstall deps clean fuzz fuzz-build fuzz-replay demo headertest abi-check sym \
        changelog-check python-check

all: $(SHLIB) $(BUILD)/$(SONAME) $(BUILD)/libscalar.so $(STLIB) $(CLI)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

# The version script comes from lib/scalar.sym, which `make sym` regenerates
# from the SCALAR_API declarations; abi-check fails if the two disagree.
$(MAP): lib/scalar.sym
	@mkdir -p $(@D)
	$(Q){ echo "LIBSCALAR_$(ABI) {"; echo "  global:"; sed 's/^/    /; s/$$/;/' $<; \
	  echo "  local: *;"; echo "};"; } > $@

$(SHLIB): $(LIB_OBJ) $(MAP)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) -shared -o $@ $(LIB_OBJ) -Wl,-soname,$(SONAME) -Wl,--no-undefined \
	  -Wl,--version-script=$(MAP) $(SAN_LDFLAGS) $(LDFLAGS) $(DEP_LIBS)

$(BUILD)/$(SONAME): $(SHLIB)
	$(Q)ln -sf $(notdir $<) $@
$(BUILD)/libscalar.so: $(BUILD)/$(SONAME)
	$(Q)ln -sf $(notdir $<) $@

$(STLIB): $(LIB_OBJ)
	$(if $(Q),@echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# The CLI links the static library: an installed `scalar` needs no rpath.
$(CLI): $(CLI_OBJ) $(STLIB)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) -o $@ $(CLI_OBJ) $(STLIB) $(SAN_LDFLAGS) $(LDFLAGS) $(DEP_LIBS)

# ---- tests ----
# Unit tests link the static library so they can reach internal functions.
$(BUILD)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(LIB_CFLAGS) $(CHECK_CFLAGS) -Ilib -Wno-missing-prototypes -MMD -MP -c $< -o $@

$(UNIT): $(TEST_OBJ) $(STLIB)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) -o $@ $(TEST_OBJ) $(STLIB) $(SAN_LDFLAGS) $(LDFLAGS) $(CHECK_LIBS) $(DEP_LIBS)

$(SVG_UNIT): $(BUILD)/tests/unit/check_svg_plot.o $(BUILD)/tools/svg_plot.o $(BUILD)/tools/strbuf.o \
              $(BUILD)/tools/run_dir.o
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(SAN_LDFLAGS) $(LDFLAGS) $(CHECK_LIBS) $(DEP_LIBS)

# Environment the test binaries read: where the CLI and the shared data live.
TEST_ENV := SCALAR_CLI=$(abspath $(CLI)) SCALAR_SHARED_DATA=$(abspath ../shared/data) \
            SCALAR_TEST_TMP=$(abspath $(BUILD)/tmp) SCALAR_SRC=$(abspath .)

unit: $(UNIT) $(SVG_UNIT) $(CLI)
	@rm -rf $(BUILD)/tmp && mkdir -p $(BUILD)/tmp
	$(TEST_ENV) $(UNIT)
	$(TEST_ENV) $(SVG_UNIT)

check: all unit headertest abi-check changelog-check install-check examples-check python-check
	@echo "make check: all suites passed"

test: check fuzz-replay

# Each public header alone, as C99 -pedantic and as C++ (libgit2 headertest).
headertest:
	@mkdir -p $(BUILD)/headertest
	$(Q)for h in $(PUBLIC_HEADERS:include/%=%) $(SYS_HEADERS:include/%=%); do \
	  printf '#include <%s>\nint scalar_headertest_dummy;\n' "$$h" > $(BUILD)/headertest/t.c; \
	  $(CC) -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -c $(BUILD)/headertest/t.c \
	    -o $(BUILD)/headertest/t.o || { echo "headertest: $$h fails as C99"; exit 1; }; \
	  $(CXX) -x c++ -std=c++11 -Wall -Wextra -pedantic -Werror -Iinclude -c $(BUILD)/headertest/t.c \
	    -o $(BUILD)/headertest/t.o || { echo "headertest: $$h fails as C++"; exit 1; }; \
	done; echo "headertest: $(words $(PUBLIC_HEADERS) $(SYS_HEADERS)) headers pass as C99 and C++"

# The exported symbols are exactly the SCALAR_API declarations, and the ABI
# layout test (offsets of every public struct field) compiles and runs.
sym:
	$(Q)sed -n 's/.*SCALAR_API[^(]*[ *]\(scalar_[a-z0-9_]*\)(.*/\1/p' \
	  $(PUBLIC_HEADERS) $(SYS_HEADERS) | LC_ALL=C sort -u > lib/scalar.sym
	@echo "lib/scalar.sym: $$(wc -l < lib/scalar.sym) symbols"

abi-check: $(SHLIB)
	@mkdir -p $(BUILD)/abi
	$(Q)sed -n 's/.*SCALAR_API[^(]*[ *]\(scalar_[a-z0-9_]*\)(.*/\1/p' \
	  $(PUBLIC_HEADERS) $(SYS_HEADERS) | LC_ALL=C sort -u > $(BUILD)/abi/headers.sym
	$(Q)diff -u lib/scalar.sym $(BUILD)/abi/headers.sym || \
	  { echo "abi-check: lib/scalar.sym is stale; run make sym"; exit 1; }
	$(Q)nm -D --defined-only $(SHLIB) | awk '$$2 ~ /^[TDBRVW]$$/ {print $$3}' | \
	  sed 's/@.*//' | grep -v '^LIBSCALAR_' | LC_ALL=C sort -u > $(BUILD)/abi/exported.sym
	$(Q)diff -u lib/scalar.sym $(BUILD)/abi/exported.sym || \
	  { echo "abi-check: exported symbols differ from lib/scalar.sym"; exit 1; }
	$(Q)$(CC) -std=c11 $(WARN) -Iinclude tests/abi/abi.c -o $(BUILD)/abi/abi $(BUILD)/libscalar.a \
	  $(SAN_LDFLAGS) $(DEP_LIBS) && $(BUILD)/abi/abi
	@echo "abi-check: $$(wc -l < lib/scalar.sym) exported symbols match the headers; layouts frozen"

changelog-check:
	$(Q)top=$$(sed -n 's/^## \[\([0-9][0-9.]*\)\].*/\1/p' CHANGELOG.md | head -n 1); \
	  [ "$$top" = "$(VERSION)" ] || { echo "changelog-check: top entry $$top != version.h $(VERSION)"; exit 1; }

# Examples built and run against an installed tree through pkg-config, output
# compared with examples/*.exp.
STAGE := $(abspath $(BUILD)/stage)
examples-check: all
	$(Q)rm -rf $(STAGE) && $(MAKE) --no-print-directory install PREFIX=$(STAGE) CONFIG=$(CONFIG) >/dev/null
	$(Q)export PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig; \
	  flags="$$($(PKG_CONFIG) --cflags --libs scalar)" || exit 1; \
	  mkdir -p $(BUILD)/examples; n=0; \
	  for src in $(EXAMPLE_SRC); do \
	    b=$(BUILD)/examples/$$(basename $$src .c); \
	    $(CC) -std=c11 $(WARN) $(SAN_LDFLAGS) $$src -o $$b $$flags -Wl,-rpath,$(STAGE)/lib || exit 1; \
	    (cd $(BUILD)/examples && SCALAR_TEST_TMP=$(abspath $(BUILD)/examples) ./$$(basename $$b)) > $$b.out 2>&1 \
	      || { cat $$b.out; echo "examples-check: $$src failed"; exit 1; }; \
	    if [ -f examples/$$(basename $$src .c).exp ]; then \
	      diff -u examples/$$(basename $$src .c).exp $$b.out || { echo "examples-check: $$src output differs"; exit 1; }; \
	    fi; n=$$((n+1)); \
	  done; echo "examples-check: $$n examples built with pkg-config against $(STAGE) and ran"

# `make install` honours DESTDIR and PREFIX: stage into a DESTDIR, compare the
# file list, check the pc file names the PREFIX, then uninstall to empty.
install-check: all
	$(Q)d=$(abspath $(BUILD)/destdir); rm -rf $$d; \
	  $(MAKE) --no-print-directory install DESTDIR=$$d PREFIX=/opt/scalar CONFIG=$(CONFIG) >/dev/null && \
	  (cd $$d && find . -type f -o -type l | LC_ALL=C sort) > $(BUILD)/install.list && \
	  for f in bin/scalar lib/libscalar.so.$(VERSION) lib/$(SONAME) lib/libscalar.so lib/libscalar.a \
	           lib/pkgconfig/scalar.pc include/scalar/scalar.h include/scalar/sys/backend.h; do \
	    grep -qx "./opt/scalar/$$f" $(BUILD)/install.list || { echo "install-check: $$f missing"; exit 1; }; done && \
	  grep -qx 'prefix=/opt/scalar' $$d/opt/scalar/lib/pkgconfig/scalar.pc && \
	  [ "$$(readlink $$d/opt/scalar/lib/$(SONAME))" = libscalar.so.$(VERSION) ] && \
	  $(MAKE) --no-print-directory uninstall DESTDIR=$$d PREFIX=/opt/scalar >/dev/null && \
	  [ -z "$$(find $$d -type f -o -type l)" ] || { echo "install-check: failed"; exit 1; }; \
	  echo "install-check: DESTDIR/PREFIX install of $$(wc -l < $(BUILD)/install.list) files and uninstall OK"

examples: all
	$(Q)mkdir -p $(BUILD)/examples; for src in $(EXAMPLE_SRC); do \
	  $(CC) -std=c11 $(WARN) -Iinclude $$src -o $(BUILD)/examples/$$(basename $$src .c) \
	    -L$(BUILD) -lscalar -Wl,-rpath,$(abspath $(BUILD)) || exit 1; done

python-check: all
	$(Q)if [ -z "$(PYTHON)" ]; then echo "python-check: no python3 with numpy (run make deps)"; exit 1; fi
	$(Q)SCALAR_LIBRARY=$(abspath $(BUILD)/$(SONAME)) PYTHONPATH=$(abspath bindings/python) \
	  $(TEST_ENV) $(PYTHON) -m unittest discover -s tests/python -t tests/python
	$(Q)SCALAR_LIBRARY=$(abspath $(BUILD)/$(SONAME)) PYTHONPATH=$(abspath bindings/python) \
	  $(PYTHON) examples/python/roundtrip.py

# ---- sanitizers, valgrind ----
asan:
	$(MAKE) --no-print-directory CONFIG=asan unit abi-check \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 CK_TIMEOUT_MULTIPLIER=20

valgrind: $(UNIT) $(SVG_UNIT) $(CLI)
	@rm -rf $(BUILD)/tmp && mkdir -p $(BUILD)/tmp
	$(Q)for u in $(UNIT) $(SVG_UNIT); do \
	  $(TEST_ENV) SCALAR_TEST_LIGHT=1 CK_FORK=no CK_TIMEOUT_MULTIPLIER=50 valgrind --quiet --leak-check=full \
	    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
	    --error-exitcode=1 $$u || exit 1; done

# ---- benchmarks ----
$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(STLIB)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LIB_CFLAGS) -Ilib -Wno-missing-prototypes $< -o $@ $(STLIB) $(DEP_LIBS)

bench: $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
	$(Q)for b in $^; do echo "== $$b"; $$b || exit 1; done

# ---- fuzzing (clang libFuzzer + ASan) ----
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build/fuzz
FUZZ_CFLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -D_POSIX_C_SOURCE=200809L -Iinclude -Ilib $(BLIS_CFLAGS) $(CJSON_CFLAGS) -fopenmp=libgomp -pthread
FUZZ_LIB_SRC := $(LIB_SRC)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_LIB_SRC)
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_LIB_SRC) -o $@ $(DEP_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	$(Q)for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	  echo "== $$n for $(FUZZ_SECONDS) s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/$$n- $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n \
	    || exit 1; done

# Replays the seed corpora and every saved crash (tests/fuzz/regressions/) once.
fuzz-replay: $(FUZZ_BINS)
	$(Q)for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	  $$f -runs=0 tests/fuzz/corpus/$$n $$(ls -d tests/fuzz/regressions/$$n 2>/dev/null) || exit 1; done

# ---- docs ----
docs:
	$(Q)mkdir -p build/docs && SCALAR_VERSION=$(VERSION) doxygen docs/Doxyfile
	@echo "docs: build/docs/html/index.html"

# ---- demo: the README's first command ends here ----
# The short form of `scalar paper` on the default corpus (Debian's fortunes;
# CORPUS=FILE for another): the toy model, the ten SAE runs of the paper's
# comparisons, both modes' SCALAR evaluations, and the tables, one seed at
# demo sizes.  FULL=1: SPEC.md's full settings (hours; 3 seeds).
DEMO_DIR ?= build/demo/paper
DEMO_SIZE := $(if $(filter 1,$(FULL)),--seeds 3,--quick)
DEMO_CORPUS := $(if $(CORPUS),--corpus $(CORPUS))
demo: all
	$(CLI) info
	$(CLI) selftest
	$(CLI) paper $(DEMO_SIZE) $(DEMO_CORPUS) --out $(DEMO_DIR)

# ---- install ----
install: all
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR)/scalar/sys \
	  $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libscalar.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libscalar.so
	$(INSTALL_DATA) $(STLIB) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 755 $(CLI) $(DESTDIR)$(BINDIR)/
	$(INSTALL_DATA) $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/scalar/
	$(INSTALL_DATA) $(SYS_HEADERS) $(DESTDIR)$(INCLUDEDIR)/scalar/sys/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@EXEC_PREFIX@|$(EXEC_PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	  -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@LIBS_PRIVATE@|$(strip $(DEP_LIBS))|' pkgconfig/scalar.pc.in \
	  > $(DESTDIR)$(PKGCONFIGDIR)/scalar.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libscalar.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libscalar.so $(DESTDIR)$(LIBDIR)/libscalar.a $(DESTDIR)$(BINDIR)/scalar \
	  $(DESTDIR)$(PKGCONFIGDIR)/scalar.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/scalar

# ---- dependencies (Debian 12) ----
DEB_PACKAGES := build-essential clang libclang-rt-dev pkg-config libblis-openmp-dev libcjson-dev check \
  libsubunit-dev doxygen python3 python3-numpy python3-venv valgrind fortunes
deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y $(DEB_PACKAGES)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/tests/unit/check_svg_plot.d
