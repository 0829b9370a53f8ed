"""The CI part of the OpInfo conformance run: one OpInfo per converter (`ledger.ci_subset`, a
cover of every converter any OpInfo reaches), its first SAMPLES samples in float32 and float16,
through compile + verify. No sample may end mismatched. The full run is
`python -m tests.py.opinfo.ledger --write` (README, "OpInfo conformance")."""
import pytest

from tests.py.opinfo.conformance import MATCHED, MISMATCHED
from tests.py.opinfo.ledger import ci_subset, run_opinfo

SAMPLES = 2


@pytest.mark.parametrize("name", ci_subset())
def test_opinfo_samples_never_mismatch(name):
    verdicts, _ = run_opinfo(name, limit=SAMPLES)
    mismatched = [f"{v.case.label}: {v.detail}" for v in verdicts if v.state == MISMATCHED]
    assert not mismatched, "\n".join(mismatched)


def test_the_subset_runs_engines():
    """The subset is not vacuous: it reaches most converters, and samples match in engines."""
    names = ci_subset()
    assert len(names) >= 40, names
    verdicts, _ = run_opinfo("nn.functional.relu", limit=SAMPLES)
    assert verdicts and all(v.state == MATCHED for v in verdicts), [(v.case.label, v.detail) for v in verdicts]
