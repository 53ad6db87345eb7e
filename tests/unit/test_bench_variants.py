"""``consultease bench --variant``: how one way of running the service is read."""

from __future__ import annotations

import pytest

from consultease.errors import ConsultEaseError
from consultease.ingest.state_publisher import StateMode
from consultease.tools.bench.ingest import BenchOptions, Variant


def test_a_variant_names_its_environment_arguments_state_mode_and_protocol() -> None:
    variant = Variant.parse("part-A=PYTHONPATH=/src/main X=1 --mqtt-protocol 5 --state off")
    assert variant.label == "part-A"
    assert variant.env == (("PYTHONPATH", "/src/main"), ("X", "1"))
    assert variant.args == ("--mqtt-protocol", "5", "--state", "off")
    assert variant.state_mode is StateMode.OFF
    assert variant.protocol == "5"

    plain = Variant.parse("v311=")
    assert (plain.env, plain.args, plain.state_mode, plain.protocol) == (
        (),
        (),
        StateMode.PROCESS,
        None,
    )


@pytest.mark.parametrize("text", ["no-equals", "=--state off", "a b=x", "x=--state sideways"])
def test_a_malformed_variant_is_refused(text: str) -> None:
    with pytest.raises(ConsultEaseError):
        Variant.parse(text)


def test_variants_replace_the_state_modes_and_keep_their_order() -> None:
    modes = BenchOptions(state_modes=(StateMode.PROCESS, StateMode.OFF))
    assert [(v.label, v.state_mode) for v in modes.services()] == [
        ("process", StateMode.PROCESS),
        ("off", StateMode.OFF),
    ]
    variants = (Variant.parse("b=--state thread"), Variant.parse("a="))
    assert [v.label for v in BenchOptions(variants=variants).services()] == ["b", "a"]
    with pytest.raises(ConsultEaseError, match="differ"):
        BenchOptions(variants=(Variant.parse("a="), Variant.parse("a=--state off")))
