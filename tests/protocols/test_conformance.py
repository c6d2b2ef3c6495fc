"""Every registered protocol adapter, checked the same way (parametrized over the registry).

Loading and naming, a pinned ``Source:``, event specs that parse, loud unknown events, no
unregistered adapter modules, and — on markets the adapter samples itself — the invariants every
liquidation engine must keep: health never rises when a collateral price falls, a liquidation
never seizes more than the collateral nor repays more than the debt, collateral is conserved
(up to the adapter's declared balance rounding), debt is conserved up to what the outcome
reports as written off, and the same inputs give the same outcome. (An adapter with several
rule sets draws one in ``sample`` so that every rule set meets these invariants.)
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import protocols
from protocols import registry
from protocols.base import ProtocolAdapter
from protocols.domain import EventRef, ProtocolEvent
from protocols.errors import ProtocolError, StaleOutcome, UnknownProtocol, UnsupportedEvent
from protocols.fixed_point import UINT256_MAX

NAMES = sorted(registry.ADAPTERS)
_SIGNATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\((([a-z0-9\[\]]+)(,[a-z0-9\[\]]+)*)?\)$")
REF = EventRef(block_number=1, log_index=0, tx_hash="0x" + "00" * 32, block_timestamp=1_700_000_000)
INVARIANT_SETTINGS = settings(max_examples=120, deadline=None,
                              suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


@pytest.mark.parametrize("name", NAMES)
def test_adapter_loads_under_its_name(name: str) -> None:
    adapter = registry.get_adapter(name)
    assert isinstance(adapter, ProtocolAdapter)
    assert adapter.name == name
    assert adapter.kind in ("lending", "perps")
    assert registry.get_adapter(name) is adapter  # stateless, shared


@pytest.mark.parametrize("name", NAMES)
def test_module_docstring_pins_its_source(name: str) -> None:
    module = importlib.import_module(registry.ADAPTERS[name].partition(":")[0])
    doc = module.__doc__ or ""
    assert any(line.startswith("Source:") for line in doc.splitlines()), f"{module.__name__}: no Source: line"


@pytest.mark.parametrize("name", NAMES)
def test_event_specs_parse_and_are_unique(name: str) -> None:
    specs = registry.get_adapter(name).events
    assert specs, "an adapter applies at least one event"
    for spec in specs:
        assert _SIGNATURE.match(spec.signature), spec
        assert spec.role and spec.role == spec.role.lower(), spec
    assert len({(s.role, s.signature) for s in specs}) == len(specs)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_events_are_loud(name: str) -> None:
    adapter = registry.get_adapter(name)
    state = adapter.new_state()
    unknown = ProtocolEvent("NoSuchEvent", "NoSuchEvent(uint256)", "0x" + "11" * 20, "pool", {"x": 1}, REF)
    with pytest.raises(UnsupportedEvent, match="block 1, log index 0"):
        adapter.apply(state, unknown)
    known = adapter.events[0]
    wrong_role = ProtocolEvent(known.name, known.signature, "0x" + "11" * 20, "no_such_role", {}, REF)
    with pytest.raises(UnsupportedEvent):
        adapter.apply(state, wrong_role)


@pytest.mark.parametrize("name", NAMES)
def test_replay_interface_base_currency_and_decimals(name: str) -> None:
    """What the replay engine reads from every adapter: the base unit and currency (matching the
    ``unit`` of its account health), and token decimals that value amounts consistently with
    :meth:`account` (collateral value == sum of amount x price // 10**decimals, up to the
    per-asset flooring)."""
    adapter = registry.get_adapter(name)
    cls = type(adapter)
    assert isinstance(cls.base_unit, int) and cls.base_unit > 0
    assert isinstance(cls.base_currency, str) and cls.base_currency == cls.base_currency.upper()
    assert cls.base_currency and cls.base_currency.isalpha()
    s = adapter.sample(random.Random(7))
    for asset in s.assets:
        d = adapter.decimals(s.state, asset)
        assert isinstance(d, int) and 0 <= d <= 36
    with pytest.raises(ProtocolError):
        adapter.decimals(s.state, "0x" + "ab" * 20)
    for user in s.users:
        h = adapter.account(s.state, user, s.prices, s.timestamp)
        assert h.unit == cls.base_unit


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), pick=st.integers(0, 2**16), move=st.integers(-300, 300))
def test_exposures_bound_the_liquidation_slack_linearly(name: str, seed: int, pick: int, move: int) -> None:
    """``exposures`` (when an adapter gives them) predict how ``liquidation_threshold_value -
    debt_value`` moves when one price moves: the exact change and ``e_k * dp`` agree up to the
    formula's rounding (a few base units per position, and the relative float error)."""
    adapter = registry.get_adapter(name)
    s = adapter.sample(random.Random(seed))
    user = s.users[pick % len(s.users)]
    exp = adapter.exposures(s.state, user, s.timestamp)
    if exp is None:
        return  # the documented default: the engine re-evaluates every account (nothing to check)
    assert all(k in s.prices for k in exp), "every exposure key is a price key the adapter reads"
    assume(exp)
    key = sorted(exp)[pick % len(exp)]
    before = adapter.account(s.state, user, s.prices, s.timestamp)
    prices = dict(s.prices)
    dp = prices[key] * move // 1000
    prices[key] = max(1, prices[key] + dp)
    dp = prices[key] - s.prices[key]
    after = adapter.account(s.state, user, prices, s.timestamp)
    exact = (after.liquidation_threshold_value - after.debt_value) - (
        before.liquidation_threshold_value - before.debt_value)
    predicted = exp[key] * dp
    n = len(adapter.positions(s.state, user, s.timestamp))
    # rounding: each value is floored per position; avgLT is floored (<= collateral / 1e4 + 1)
    tolerance = (4 * n + 2 + (before.collateral_value + after.collateral_value) / 10_000
                 + abs(predicted) * 1e-9)
    assert abs(exact - predicted) <= tolerance, (exact, predicted)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_liquidation_parameters_are_the_ones_the_health_uses(name: str, seed: int) -> None:
    """``liquidation_parameters`` (when an adapter gives them) name the threshold its own
    :meth:`account` weighs a collateral by: for an account with one collateral that counts,
    ``liquidation_threshold_value`` is that collateral's value x LT / 1e4 up to the rounding of
    the weighted average; the bonus is ``10000 + premium``. An asset the market does not list
    has none."""
    adapter = registry.get_adapter(name)
    s = adapter.sample(random.Random(seed))
    assert adapter.liquidation_parameters(s.state, s.users[0], "0x" + "ab" * 20) is None
    for user in s.users:
        counted = []
        for p in adapter.positions(s.state, user, s.timestamp):
            params = adapter.liquidation_parameters(s.state, user, p.asset)
            if params is None:
                continue
            lt, bonus = params
            assert 0 <= lt <= 10_000 and (bonus >= 10_000 or (lt == 0 and bonus == 0)), params
            if p.collateral and p.collateral_enabled and lt:
                counted.append(lt)
        h = adapter.account(s.state, user, s.prices, s.timestamp)
        if len(counted) == 1 and h.collateral_value:
            assert abs(h.liquidation_threshold_value * 10_000 - h.collateral_value * counted[0]) <= (
                h.collateral_value + 10_000), (counted, h)


@pytest.mark.parametrize("name", NAMES)
def test_liquidation_call_reads_only_liquidation_events(name: str) -> None:
    """``liquidation_call`` maps the adapter's own liquidation event (if it has one) to
    ``liquidate`` arguments and observed amounts, and returns None for every other event."""
    adapter = registry.get_adapter(name)
    liq_specs = [spec for spec in adapter.events if spec.name == "LiquidationCall"]
    for spec in adapter.events:
        if spec in liq_specs:
            continue
        ev = ProtocolEvent(spec.name, spec.signature, "0x" + "11" * 20, spec.role, {}, REF)
        assert adapter.liquidation_call(ev) is None, spec
    for spec in liq_specs:
        args = {"collateral_asset": "0x" + "c0" * 20, "debt_asset": "0x" + "d0" * 20,
                "user": "0x" + "0a" * 20,
                "debt_to_cover": 123, "liquidated_collateral_amount": 456, "liquidator": "0x" + "ee" * 20,
                "receive_a_token": True}
        c = adapter.liquidation_call(ProtocolEvent(spec.name, spec.signature, "0x" + "11" * 20, spec.role,
                                                   args, REF))
        assert c is not None
        assert (c.user, c.collateral, c.debt, c.debt_to_cover, c.receive_a_token, c.liquidator) == (
            args["user"], args["collateral_asset"], args["debt_asset"], 123, True, args["liquidator"])
        assert (c.debt_repaid, c.collateral_seized) == (123, 456)


def test_unknown_protocol_lists_the_valid_names() -> None:
    with pytest.raises(UnknownProtocol) as e:
        registry.get_adapter("no_such_protocol")
    for name in NAMES:
        assert name in str(e.value)


def test_registry_rejects_duplicates_and_bad_references() -> None:
    with pytest.raises(ValueError, match="twice"):
        registry._build([("x", "protocols.x:X"), ("x", "protocols.y:Y")])
    with pytest.raises(ValueError, match="module:Class"):
        registry._build([("x", "protocols.x.X")])


def _adapter_classes_in(module_name: str) -> set[type]:
    module = importlib.import_module(module_name)
    found = {obj for _, obj in inspect.getmembers(module, inspect.isclass)
             if issubclass(obj, ProtocolAdapter) and obj is not ProtocolAdapter
             and not inspect.isabstract(obj) and obj.__module__.startswith(module_name)}
    if hasattr(module, "__path__"):
        for sub in pkgutil.iter_modules(module.__path__):
            found |= _adapter_classes_in(f"{module_name}.{sub.name}")
    return found


def test_no_orphan_adapters() -> None:
    """Every public module of ``protocols`` that defines an adapter is registered (and the
    ``_template`` is not)."""
    registered = {registry.adapter_class(n) for n in NAMES}
    for mod in pkgutil.iter_modules(protocols.__path__):
        if mod.name.startswith("_"):
            continue
        for cls in _adapter_classes_in(f"protocols.{mod.name}"):
            assert cls in registered, f"{cls.__module__}.{cls.__qualname__} is not in protocols.registry"


# ----- invariants on sampled markets -----

seeds = st.integers(0, 2**32 - 1)


@pytest.mark.parametrize("name", NAMES)
@INVARIANT_SETTINGS
@given(seed=seeds, pick=st.integers(0, 2**16), fall=st.integers(1, 999))
def test_health_never_rises_when_a_collateral_price_falls(name: str, seed: int, pick: int, fall: int) -> None:
    adapter = registry.get_adapter(name)
    s = adapter.sample(random.Random(seed))
    user = s.users[pick % len(s.users)]
    positions = adapter.positions(s.state, user, s.timestamp)
    candidates = [p.asset for p in positions if p.collateral > 0 and p.collateral_enabled and p.debt == 0]
    assume(candidates)
    asset = candidates[pick % len(candidates)]
    before = adapter.account(s.state, user, s.prices, s.timestamp)
    prices = dict(s.prices)
    prices[asset] = max(1, prices[asset] * fall // 1000)
    after = adapter.account(s.state, user, prices, s.timestamp)
    tolerance = adapter.health_rounding(s.state, user, s.prices, s.timestamp)
    assert after.health_factor_wad <= before.health_factor_wad + tolerance
    assert after.collateral_value <= before.collateral_value
    assert after.debt_value == before.debt_value


liquidation_args = dict(seed=seeds, pick=st.integers(0, 2**16), amount=st.one_of(
    st.just(UINT256_MAX), st.just(0), st.integers(1, 10**6), st.integers(1, 10**30)),
    receive=st.booleans(), dt=st.integers(0, 400 * 86_400))


@pytest.mark.parametrize("name", NAMES)
@INVARIANT_SETTINGS
@given(**liquidation_args)
def test_liquidation_bounds_and_conservation(name: str, seed: int, pick: int, amount: int, receive: bool,
                                             dt: int) -> None:
    adapter = registry.get_adapter(name)
    rng = random.Random(seed)
    s = adapter.sample(rng)
    user = rng.choice(s.users)
    held = adapter.positions(s.state, user, s.timestamp)
    supplied = [p.asset for p in held if p.collateral and p.collateral_enabled]
    owed = [p.asset for p in held if p.debt]
    collateral = rng.choice(supplied) if supplied and rng.random() < 0.85 else rng.choice(s.assets)
    debt = rng.choice(owed) if owed and rng.random() < 0.85 else rng.choice(s.assets)
    ts = s.timestamp + dt
    outcome = adapter.liquidate(s.state, user, collateral, debt, amount, s.prices, ts, receive,
                                liquidator="0x" + "ee" * 20)
    # same inputs, same outcome (and the state was not touched)
    again = adapter.liquidate(s.state, user, collateral, debt, amount, s.prices, ts, receive,
                              liquidator="0x" + "ee" * 20)
    assert again == outcome and again.events == outcome.events
    assert adapter.account(s.state, user, s.prices, ts) == adapter.account(s.state, user, s.prices, ts)
    if not outcome.ok:
        assert outcome.revert_reason and outcome.debt_repaid == outcome.collateral_seized == 0
        with pytest.raises(ValueError):
            adapter.commit(s.state, outcome)
        return
    before = {p.asset: p for p in adapter.positions(s.state, user, ts)}
    coll_before = before[collateral].collateral if collateral in before else 0
    debt_before = before[debt].debt if debt in before else 0
    assert outcome.collateral_seized + outcome.protocol_fee <= coll_before
    assert outcome.debt_repaid <= debt_before
    assert outcome.debt_repaid <= amount
    adapter.commit(s.state, outcome)
    after = {p.asset: p for p in adapter.positions(s.state, user, ts)}
    coll_after = after[collateral].collateral if collateral in after else 0
    slack = adapter.balance_rounding(s.state, collateral)
    assert abs(outcome.collateral_seized + outcome.protocol_fee + coll_after - coll_before) <= slack
    debt_after = after[debt].debt if debt in after else 0
    # debt is conserved: what was not repaid either stays owed or, with deficit accounting
    # (Aave v3.3+), is written off and reported in bad_debt
    gap = debt_before - outcome.debt_repaid - debt_after
    debt_slack = adapter.balance_rounding(s.state, debt)
    assert abs(gap) <= debt_slack or abs(gap - outcome.bad_debt.get(debt, 0)) <= debt_slack
    with pytest.raises(StaleOutcome):  # the state moved on: the same outcome cannot apply twice
        adapter.commit(s.state, outcome)
