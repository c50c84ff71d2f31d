# Braid's front doors. Each target installs what it needs first (idempotent),
# so on a fresh machine `make demo` and `make test` are the only set-up.
#   make demo    run the example federated job on this machine: three tenants
#                fine-tune a LoRA adapter on a small Llama (examples/llm-lora.yaml;
#                the base model is pretrained once, in a few minutes, by
#                scripts/demo-model.sh and cached in ~/.cache/braid/models)
#   make demo-tabular  the tabular example (examples/tabular.yaml)
#   make demo-multisite  multi-site federation on this machine: a coordinator
#                and two sites, three control planes on loopback, each with
#                braid-operator in its role; the sites enroll, approve the
#                job in their own clusters and run it to the end
#                (scripts/demo-multisite.sh, docs/multi-site.md; summary in
#                .braid/demo-multisite/summary.json)
#                (`build` also builds the dashboard's web app into
#                build/share/braid/web; see docs/dashboard.md)
#   make test    build and run every test (ctest; labels unit, e2e, k8s,
#                browser: the dashboard in Debian's chromium), then the unit
#                tests again under ASan + UBSan (clang, in build-sanitize) and
#                each fuzz target briefly. The first run also builds the test
#                control plane (kube-apiserver, etcd, kwok, helm) from the Go
#                module proxy into ~/.cache/braid
#   make bench   run the benchmarks and rewrite docs/benchmarks.md
#   make sanitize  only the unit tests under ASan + UBSan
#   make fuzz    the libFuzzer targets, FUZZ_SECONDS each (default 60)
BUILD_DIR ?= build
JOBS ?= 2
FUZZ_SECONDS ?= 60
TEST_FUZZ_SECONDS ?= 10
CMAKE_FLAGS ?=

.PHONY: deps k8s-tools pyref configure build demo demo-tabular demo-multisite test sanitize fuzz bench clean

deps:
	@bash scripts/deps.sh

# The control plane for the k8s tests, built once and cached outside the repo,
# and the Gateway API's TLSRoute CRD the multi-site tests install.
k8s-tools:
	@bash scripts/k8s-tools.sh >/dev/null
	@bash scripts/gateway-api-crds.sh >/dev/null

# The Python reference stack (Hugging Face, dp-accounting) the numerics tests
# compare against, in a venv cached outside the repo.
pyref:
	@bash scripts/pyref.sh >/dev/null
	@bash scripts/flower-ref.sh >/dev/null

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	bash scripts/demo-model.sh >/dev/null
	$(BUILD_DIR)/bin/braid run examples/llm-lora.yaml --baselines --workdir .braid/demo

demo-tabular: build
	$(BUILD_DIR)/bin/braid run examples/tabular.yaml --baselines --workdir .braid/demo-tabular

demo-multisite: build k8s-tools
	bash scripts/demo-multisite.sh $(BUILD_DIR)

test: build k8s-tools pyref
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)
	JOBS=$(JOBS) bash scripts/sanitize.sh test
	JOBS=$(JOBS) bash scripts/fuzz.sh $(TEST_FUZZ_SECONDS)

sanitize: deps
	JOBS=$(JOBS) bash scripts/sanitize.sh test

fuzz: deps
	JOBS=$(JOBS) bash scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	bash scripts/bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) build-sanitize .braid
