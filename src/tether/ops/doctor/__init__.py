"""``tether doctor``: checks of an installation, each with the fix when it fails.

:func:`diagnose` runs them and returns one :class:`Result` per check; the command prints them.
"""

from tether.ops.doctor.check import Result, Status, failed
from tether.ops.doctor.run import Options, diagnose
from tether.ops.doctor.sinks import PROBE_TOPIC, PROBE_TYPE, Probe

__all__ = [
    "PROBE_TOPIC",
    "PROBE_TYPE",
    "Options",
    "Probe",
    "Result",
    "Status",
    "diagnose",
    "failed",
]
