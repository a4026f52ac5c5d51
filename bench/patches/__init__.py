"""What-if patches: each file is loaded as a server's ``jupyter_server_config.py`` by
``python -m bench.run --variant NAME=bench/patches/FILE.py`` and monkeypatches the running server
the way a proposed change to hardened_server would, so a finding's fix is measured before anyone
edits the package. They patch, they do not configure: no ``c.`` settings here.
"""
