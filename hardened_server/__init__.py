"""hardened-server: Jupyter Server made strict by default.

One policy engine (``hardened_server.policy``, pure) decides; one enforcement layer
(``hardened_server.enforcement``, tornado-facing) applies the decisions to every route of a real
``jupyter_server`` application (``hardened_server.app``).
"""

__version__ = "0.1.0"
