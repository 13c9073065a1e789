"""include/blueprint/render_shortcuts.py: pinned to the Cosmos it was checked against, answers like
`inspect` and `Asset` do, and steps aside when switched off or on another Cosmos. That whole DAGs
come out the same is tests/dags/test_render_unchanged.py."""

from __future__ import annotations

import inspect
from contextlib import AbstractContextManager, nullcontext

import airflow  # noqa: F401  # before cosmos: the reverse order raises a circular ImportError
import attrs
import cosmos
import pytest
from airflow.sdk import Asset

from include.blueprint import render_shortcuts
from include.blueprint.render_shortcuts import COSMOS_VERSION, SWITCH, cache_cosmos_signatures, dbt_asset


def test_cosmos_is_the_version_the_shortcut_was_checked_against():
    assert cosmos.__version__ == COSMOS_VERSION, (
        f"Cosmos is {cosmos.__version__}, the signature cache was checked against {COSMOS_VERSION}: until the pin "
        "moves it is off (DAGs render correctly, only slower). Check that cosmos/operators/*.py still only inspect "
        "constructors (inspect.signature / getfullargspec of __init__), run tests/dags/test_render_unchanged.py, "
        "then set COSMOS_VERSION in include/blueprint/render_shortcuts.py"
    )


def test_cosmos_operators_still_inspect_their_constructors_for_every_task():
    """The shortcut is worth having only while Cosmos inspects signatures when building a task."""
    import cosmos.operators.local as local

    source = inspect.getsource(local.DbtLocalBaseOperator.__init__)
    assert "inspect.signature(BaseOperator.__init__)" in source
    assert "inspect.getfullargspec(AbstractDbtBase.__init__)" in source


def test_the_cache_answers_as_inspect_does():
    from cosmos.operators.base import AbstractDbtBase
    from cosmos.operators.local import AbstractDbtLocalBase, DbtBuildLocalOperator

    cached = render_shortcuts._CACHED_INSPECT
    for function in (AbstractDbtBase.__init__, AbstractDbtLocalBase.__init__, DbtBuildLocalOperator.__init__):
        assert cached.signature(function) == inspect.signature(function)
        assert cached.getfullargspec(function) == inspect.getfullargspec(function)
        assert cached.signature(function) is cached.signature(function)  # remembered
    assert cached.getsource is inspect.getsource  # everything else is the real module


def test_the_local_operators_get_the_cache():
    changed = cache_cosmos_signatures("local")
    import cosmos.operators.local as local

    assert "cosmos.operators.local" in changed or local.inspect is render_shortcuts._CACHED_INSPECT
    assert local.inspect is render_shortcuts._CACHED_INSPECT


def test_switched_off_or_on_another_cosmos_nothing_changes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(SWITCH, "0")
    assert cache_cosmos_signatures("local") == []
    monkeypatch.delenv(SWITCH)
    monkeypatch.setattr(render_shortcuts, "COSMOS_VERSION", "0.0.0")
    assert cache_cosmos_signatures("local") == []


REFERENCES = [
    ("jaffle_shop.customers", "dbt://jaffle_shop/customers"),
    ("acme.dbt_utils.Some_Model", "dbt://acme/dbt_utils.Some_Model"),
    ("synthetic.int_0001", "dbt://synthetic/int_0001"),
]
# URIs Airflow's normalizer would change or look at: these take the ordinary constructor.
UNUSUAL = ["DBT://Project/model", "dbt://project/model/", "dbt://project/model?b=1&a=2", "dbt://user:pw@host/m"]


@pytest.mark.parametrize(("name", "uri"), REFERENCES)
def test_dbt_assets_equal_airflows(name: str, uri: str):
    made, reference = dbt_asset(name, uri, "dbt"), Asset(name=name, uri=uri, group="dbt")
    assert type(made) is Asset
    assert made == reference
    assert attrs.asdict(made) == attrs.asdict(reference)
    assert hash(made) == hash(reference)


@pytest.mark.parametrize("uri", UNUSUAL)
def test_unusual_uris_are_normalized_by_airflow(uri: str):
    with _password_warning(uri):
        made = dbt_asset("project.model", uri, "dbt")
    with _password_warning(uri):
        assert made == Asset(name="project.model", uri=uri, group="dbt")
    assert made.uri != uri


def test_dbt_assets_are_validated_like_airflows():
    with pytest.raises(ValueError, match="cannot exceed 1500"):
        dbt_asset("x" * 1501, "dbt://project/model", "dbt")
    with pytest.raises(ValueError, match="cannot exceed 1500"):
        Asset(name="x" * 1501, uri="dbt://project/model", group="dbt")


def _password_warning(uri: str) -> AbstractContextManager[object]:
    """Airflow warns about (and drops) user info in a URI: expected for that case only."""
    return pytest.warns(UserWarning, match="should not contain a password") if "@" in uri else nullcontext()


def test_the_collector_is_paused_while_building_and_restored_after_even_on_failure():
    import gc

    assert gc.isenabled()
    with render_shortcuts.paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="build failed"), render_shortcuts.paused_gc():
        raise RuntimeError("build failed")
    assert gc.isenabled(), "a failed build left the garbage collector off"


def test_the_collector_stays_as_it_was(monkeypatch: pytest.MonkeyPatch):
    import gc

    gc.disable()
    try:
        with render_shortcuts.paused_gc():
            pass
        assert not gc.isenabled(), "a collector someone else turned off was turned back on"
    finally:
        gc.enable()
    monkeypatch.setenv(SWITCH, "0")
    with render_shortcuts.paused_gc():
        assert gc.isenabled()
