"""The resident memory of this process from Linux's /proc: the benchmarks' peak-memory probes share these."""
from __future__ import annotations

import resource


def status_kib(field: str) -> int:
    """A KiB field of /proc/self/status, e.g. "VmRSS" (now) or "VmHWM" (peak since the last reset)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


class PeakRssProbe:
    """The peak resident memory above what the process holds (VmRSS) when the probe is made, in MiB.

    Exact (VmHWM after resetting it) where the kernel allows the reset; elsewhere the process's lifetime peak
    (ru_maxrss) is used, an upper bound that also counts any higher peak from before the probe (`exact` says which).
    """

    def __init__(self) -> None:
        self.exact = reset_peak_rss()
        self._baseline_kib = status_kib("VmRSS")

    def peak_mib(self) -> float:
        peak_kib = status_kib("VmHWM") if self.exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (peak_kib - self._baseline_kib) / 1024
