"""Side-by-side benchmarks: hardened-server vs stock jupyter_server vs a bare tornado handler.

Not a test suite (pytest's ``testpaths = ["tests"]`` never collects this directory). Entry
points: ``make bench`` (see ``bench/Makefile.inc``), ``python -m bench.run --help``, and
``python -m pytest bench/test_micro.py`` for the policy microbenchmarks alone.
"""
