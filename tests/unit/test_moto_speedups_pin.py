"""moto_speedups patches moto internals: it runs only on the moto version it was written for (issue 12)."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from agentbus.local import moto_speedups

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_installed_moto_is_the_one_the_patches_were_written_for() -> None:
    assert version("moto") == moto_speedups.MOTO_VERSION
    moto_speedups.check_moto_version()


def test_pyproject_pins_exactly_that_version() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (moto,) = [d for d in dependencies if d.startswith("moto")]
    assert moto == f"moto[server]=={moto_speedups.MOTO_VERSION}"


@pytest.mark.parametrize("other", ["5.2.6", "5.1.0", "6.0.0"])
def test_any_other_moto_is_refused_with_a_message_naming_both_versions(other: str) -> None:
    with pytest.raises(moto_speedups.UnsupportedMotoVersion, match=rf"moto {other} is installed") as error:
        moto_speedups.check_moto_version(other)
    assert moto_speedups.MOTO_VERSION in str(error.value)


def test_apply_checks_the_version_before_patching(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_speedups, "_applied", False)
    monkeypatch.setattr("importlib.metadata.version", lambda name: "9.9.9")
    with pytest.raises(moto_speedups.UnsupportedMotoVersion):
        moto_speedups.apply()
    assert moto_speedups._applied is False
