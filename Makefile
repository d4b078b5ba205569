# The two commands of the README:
#   make demo   installs what is missing, builds and installs shmr, runs the demo
#   make test   installs what is missing, builds, runs the C++ and R tests
R ?= R
RSCRIPT ?= Rscript

.PHONY: all deps install demo test test-cpp test-r check docs clean distclean bench bench-quick \
        fuzz fuzz-corpus test-asan peer-tests

CXX ?= g++
FUZZ_SECONDS ?= 60

all: install

deps:
	@RSCRIPT=$(RSCRIPT) bash tools/install-deps.sh

install: deps
	@$(R) CMD INSTALL --preclean --no-multiarch . > build-install.log 2>&1 || \
	  { tail -n 60 build-install.log; exit 1; }
	@echo "shmr installed"

demo: install
	@$(RSCRIPT) --vanilla inst/examples/share-with-workers.R

# The C++ suite, then the R suite on this machine's R and on R 4.5 when
# ../shared/tools/r45.sh provides it (tools/run-r-suites.sh: shmr is built
# into build/r-lib/<version>, R 4.5's packages go into .r-library/).
test: deps
	@mkdir -p build
	@bash tools/run-cpp-tests.sh build/cpp-counts; true
	@R=$(R) bash tools/run-r-suites.sh build/r-suites; true
	@bash tools/summarize-tests.sh build/cpp-counts build/r-suites

test-cpp: deps
	@mkdir -p build
	@bash tools/run-cpp-tests.sh build/cpp-counts

test-r: deps
	@mkdir -p build
	@R=$(R) bash tools/run-r-suites.sh build/r-suites; cat build/r-suites

# The R test suite against shmr built with AddressSanitizer and UBSan, in its
# own library (build/asan-lib); see tools/run-asan-tests.sh.
test-asan: deps
	@mkdir -p build
	@RSCRIPT=$(RSCRIPT) R=$(R) bash tools/run-asan-tests.sh build/asan-r-counts

# libFuzzer over the region reader, locators and names (clang, installed with
# apt-get when missing): `make fuzz FUZZ_SECONDS=600` for a long run.
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tools/run-fuzz.sh

# Regenerates the committed seed corpus of the fuzz targets with the writer.
fuzz-corpus:
	@mkdir -p build/fuzz
	@$(CXX) -std=c++17 -O1 -Isrc/core tests/fuzz/make_seed_corpus.cpp src/core/*.cpp \
	  -o build/fuzz/make_seed_corpus
	@rm -rf tests/fuzz/corpus && build/fuzz/make_seed_corpus tests/fuzz/corpus
	@echo "seed corpus written to tests/fuzz/corpus"

bench: install
	@RSCRIPT=$(RSCRIPT) bash tools/install-deps.sh --suggests
	@$(RSCRIPT) bench/install-peers.R
	@$(RSCRIPT) --vanilla bench/run.R
	@$(RSCRIPT) --vanilla bench/readme_table.R

bench-quick: install
	@$(RSCRIPT) bench/install-peers.R
	@$(RSCRIPT) --vanilla bench/run.R --quick
	@$(RSCRIPT) --vanilla bench/readme_table.R

docs:
	@$(RSCRIPT) -e 'roxygen2::roxygenise(load_code = "source")'

check: deps
	@RSCRIPT=$(RSCRIPT) bash tools/install-deps.sh --suggests
	@rm -rf check && mkdir -p check
	@cd check && $(R) CMD build .. && _R_CHECK_FORCE_SUGGESTS_=false _R_CHECK_CRAN_INCOMING_REMOTE_=false _R_CHECK_CRAN_INCOMING_=false _R_CHECK_ORPHANED_=false $(R) CMD check --as-cran --no-manual shmr_*.tar.gz

clean:
	@rm -rf build check build-install.log src/*.o src/core/*.o src/*.so

# The peers' own test suites (mori, memshare, bettermc, shard) against
# shmr's compatibility layers, alone (`make test` runs them too, after each
# R version's suite); the peers are downloaded from the repository R is
# configured with. mori and memshare need R >= 4.3:
#   make peer-tests R=/path/to/R-4.5/bin/R RSCRIPT=/path/to/R-4.5/bin/Rscript
peer-tests: install
	@$(RSCRIPT) tools/peer-suites.R $(PEER_ARGS)

# Also the project's own library of R 4.5 packages (.r-library).
distclean: clean
	@rm -rf .r-library
