# make test   builds .venv from nothing and runs the whole suite
# make demo   runs a real glance-api with the Datera store against the simulator
# make bench  measures the data path against baselines taken in the same run

# The system's Python builds the virtualenv when there is one: a service
# user must be able to run the virtualenv's interpreter (the end-to-end test
# that runs glance-api as an unprivileged user does), and one under root's
# private home (pyenv's) is out of its reach.
PYTHON ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3)
VENV ?= .venv
BIN := $(VENV)/bin
LINT_PATHS := datera_glance datera_glance_dev datera-edf-sim tests benchmarks tools
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Debian packages the suite needs: losetup/blockdev (util-linux) for the
# simulator's block devices, git for pbr's version, sudo and useradd for
# the end-to-end test that runs glance-api as an unprivileged user whose
# root helper is `sudo glance-rootwrap`, and for the iSCSI tier a real
# userspace target (tgt), a userspace initiator (libiscsi-bin) and lsscsi.
DEB_TOOLS := losetup:util-linux blockdev:util-linux git:git sudo:sudo \
	useradd:passwd tgtd:tgt iscsi-ls:libiscsi-bin lsscsi:lsscsi

.PHONY: all deps venv test unit functional e2e iscsi reliability pep8 demo bench genconfig docs upstream upstream-check clean

all: test

deps:
	@missing=""; for pair in $(DEB_TOOLS); do \
	    tool=$${pair%%:*}; pkg=$${pair##*:}; \
	    command -v $$tool >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import ensurepip' \
	        >/dev/null 2>&1; then missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(STAMP): requirements.txt test-requirements.txt constraints.txt setup.cfg \
		datera-edf-sim/pyproject.toml
	$(MAKE) deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -r requirements.txt -r test-requirements.txt
	$(BIN)/pip install -q -c constraints.txt --no-deps -e . -e ./datera-edf-sim
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/flake8 $(LINT_PATHS)
	$(BIN)/pytest tests --ignore=tests/iscsi $(PYTEST_ARGS)
	$(MAKE) iscsi
	$(MAKE) upstream-check

# The iSCSI tier (tests/iscsi): os-brick's real ISCSIConnector on a fake
# kernel against a real userspace target. It mounts over /sys and /dev, so
# it runs in a mount namespace of its own, and reports what it reached of
# os-brick's iSCSI connector and linuxscsi.
ISCSI_COVERAGE := --include=*/os_brick/initiator/connectors/iscsi.py,*/os_brick/initiator/linuxscsi.py
iscsi: $(STAMP)
	@if unshare --mount --propagation private true 2>/dev/null; then \
	    COVERAGE_FILE=.coverage.iscsi unshare --mount --propagation private \
	        $(BIN)/coverage run $(ISCSI_COVERAGE) -m pytest tests/iscsi $(PYTEST_ARGS) && \
	    COVERAGE_FILE=.coverage.iscsi $(BIN)/coverage report; \
	else \
	    echo "no private mount namespace here (needs root and unshare): tests/iscsi will skip"; \
	    $(BIN)/pytest tests/iscsi $(PYTEST_ARGS); \
	fi

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

functional: $(STAMP)
	$(BIN)/pytest tests/functional $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

# The whole fault matrix (make test runs a subset of its injection points).
reliability: $(STAMP)
	DATERA_FAULT_MATRIX=full $(BIN)/pytest tests/functional/reliability -s $(PYTEST_ARGS)

pep8: $(STAMP)
	$(BIN)/flake8 $(LINT_PATHS)

genconfig: $(STAMP)
	$(BIN)/oslo-config-generator --namespace datera_glance

docs: $(STAMP)
	$(BIN)/python tools/gen_options_table.py --write README.rst

demo: $(STAMP)
	$(BIN)/python -m datera_glance_dev.demo $(if $(KEEP),--keep,)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# The upstream series (tools/upstream): build/upstream/glance_store/*.patch,
# the Datera store in-tree in the glance_store release constraints.txt pins,
# generated from datera_glance on every run, and build/upstream/glance/*.patch,
# the stores-detail fix for the pinned glance. The sdists are downloaded once
# into build/upstream/cache.
upstream: $(STAMP)
	$(BIN)/python -m tools.upstream generate

# Regenerates the series, applies it with git am to fresh unpacks of the
# pinned sdists and runs glance_store's and glance's own stestr, flake8 and
# doc8 on what it adds and touches (about 10 s once the sdists are cached).
upstream-check: upstream
	$(BIN)/python -m tools.upstream check

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info
