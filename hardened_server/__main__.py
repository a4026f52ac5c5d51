"""``python -m hardened_server`` is the same command line as ``hardened-server``."""

from hardened_server.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
