"""The price table: shipped defaults, overrides, unknown models cost unknown (never 0)."""

from __future__ import annotations

import math

import pytest

import mission_widgets
from mission_widgets.core import cost
from mission_widgets.core.cost import (
    DEFAULT_PRICES,
    PRICES_CHECKED,
    call_cost,
    format_usd,
    price_of,
    register_price,
)

pytestmark = pytest.mark.usefixtures("fresh_prices")


def test_shipped_defaults_price_common_openai_models_and_say_when_checked():
    assert PRICES_CHECKED[:2] == "20" and len(PRICES_CHECKED) == 10
    for name in ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o4-mini"):
        assert name in DEFAULT_PRICES
    # 1M input + 1M output tokens of gpt-4o-mini cost its two prices added.
    assert call_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)
    assert call_cost("gpt-4o", 2_000, 1_000) == pytest.approx((2_000 * 2.5 + 1_000 * 10) / 1e6)


def test_a_provider_prefix_and_a_dated_snapshot_find_the_family_price():
    assert price_of("openai:gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_of("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_of("openai:gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    # a different model sharing a prefix is not the family
    assert price_of("gpt-4o-mini-audio") is None


def test_unknown_models_and_unknown_token_counts_cost_unknown_not_zero():
    assert price_of("my-local-llama") is None
    assert call_cost("my-local-llama", 10, 10) is None
    assert call_cost("gpt-4o", None, 10) is None
    assert call_cost(None, 10, 10) is None
    assert format_usd(None) == "unknown" and format_usd(math.nan) == "unknown"
    assert format_usd(0.0) == "$0" and format_usd(0.01234) == "$0.0123"


def test_register_price_overrides_a_default_and_prices_a_new_model():
    mission_widgets.register_price("my-local-llama", input_per_mtok=1, output_per_mtok=2)
    assert call_cost("ollama:my-local-llama", 1_000_000, 500_000) == pytest.approx(2.0)
    register_price("gpt-4o-mini", input_per_mtok=0, output_per_mtok=0)
    assert call_cost("gpt-4o-mini", 1000, 1000) == 0.0
    # a full model string wins over the bare name for that provider only
    register_price("azure:gpt-4o-mini", input_per_mtok=5, output_per_mtok=5)
    assert call_cost("azure:gpt-4o-mini", 1_000_000, 0) == pytest.approx(5.0)
    assert call_cost("openai:gpt-4o-mini", 1_000_000, 0) == 0.0


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("input_per_mtok", -1, ValueError),
        ("output_per_mtok", math.nan, ValueError),
        ("input_per_mtok", math.inf, ValueError),
        ("output_per_mtok", "1.0", TypeError),
        ("input_per_mtok", True, TypeError),
    ],
)
def test_register_price_refuses_bad_prices_naming_the_field(field, value, error):
    prices = {"input_per_mtok": 1.0, "output_per_mtok": 1.0, field: value}
    with pytest.raises(error, match=field):
        register_price("m", **prices)
    assert price_of("m") is None


def test_register_price_refuses_a_model_that_is_not_a_name():
    with pytest.raises(TypeError, match="model"):
        register_price("  ", input_per_mtok=1, output_per_mtok=1)


def test_registered_prices_travel_as_a_plain_table():
    register_price("a", input_per_mtok=1, output_per_mtok=2)
    table = cost.registered_prices()
    cost._registered.clear()
    cost.apply_prices(table)
    assert price_of("a") == (1.0, 2.0)
