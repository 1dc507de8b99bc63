import os

from hypothesis import HealthCheck, settings

# CI draws a few thousand cases over all layer types; `make fuzz` sets
# NETSPEC_FUZZ_EXAMPLES=100000 (spread over the same tests) with a fixed seed.
FUZZ = int(os.environ.get("NETSPEC_FUZZ_EXAMPLES", "0"))
settings.register_profile(
    "netspec",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
settings.load_profile("netspec")


def examples(default: int) -> int:
    """Examples per differential test: ``default`` in CI, a share of the fuzz budget in fuzz."""
    if FUZZ:
        return max(default, FUZZ // 60)
    return default
