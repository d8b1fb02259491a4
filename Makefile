# espnet-samba: `make demo` runs the offline demo recipe end to end, `make test` runs the test suite.
# Both build the environment first (tools/install.sh: idempotent, fast when nothing changed).
VENV := tools/venv
PYTHON := $(VENV)/bin/python

.PHONY: install check test test-fast demo bench clean-venv

install:
	bash tools/install.sh

check: install
	$(PYTHON) tools/check_install.py

# The whole suite, slow end-to-end tests (recipes, training through ESPnet's CLI) included: what CI runs.
test: install
	$(PYTHON) -m pytest -q -rs test

# The quick inner loop: skips tests marked slow.
test-fast: install
	$(PYTHON) -m pytest -q -rs -m "not slow" test

demo: install
	cd egs2/espeak_en/asr1 && ./run.sh

bench: install
	$(PYTHON) bench/bench_mixer.py
	$(PYTHON) bench/bench_encoder.py
	$(PYTHON) bench/bench_decoder.py

clean-venv:
	rm -rf $(VENV)
