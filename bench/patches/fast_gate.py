"""What-if: proxies_get.py and memo_hosts.py together (the per-request gate made cheap)."""

import bench.patches.memo_hosts
import bench.patches.proxies_get  # noqa: F401
