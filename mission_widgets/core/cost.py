"""What model calls cost: a price table per model, in US dollars per million tokens.

The table ships with defaults for common OpenAI models (``PRICES_CHECKED`` says when they
were copied from OpenAI's pricing page; check your own account's prices) and takes overrides
with :func:`register_price`. A model that is not in the table costs *unknown* (``None``
here, NaN in ``status()``), never 0: a missing price must not read as "free".

Overrides registered in the kernel travel with each mission to its worker
(:func:`registered_prices` / :func:`apply_prices`), so a worker prices calls, and checks
budgets, the way the kernel would. Standard library only: the worker imports this module.
"""

from __future__ import annotations

import math
import threading

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: When the shipped prices were copied from https://openai.com/api/pricing (standard tier,
#: text tokens, no cached-input discount).
PRICES_CHECKED = "2025-08-07"


class Price(tuple):
    """USD per million input (prompt) and output (completion) tokens: a pair."""

    __slots__ = ()

    def __new__(cls, input_per_mtok: float, output_per_mtok: float) -> Price:
        return super().__new__(cls, (float(input_per_mtok), float(output_per_mtok)))

    @property
    def input_per_mtok(self) -> float:
        return float(self[0])

    @property
    def output_per_mtok(self) -> float:
        return float(self[1])

    def __repr__(self) -> str:
        return f"Price(input_per_mtok={self[0]}, output_per_mtok={self[1]})"

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
        ) / 1e6


#: Shipped defaults, by bare model name (a provider prefix and a date suffix are ignored
#: when looking up: ``openai:gpt-4o-mini-2024-07-18`` finds ``gpt-4o-mini``).
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "o1": Price(15.00, 60.00),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
}

_lock = threading.Lock()
_registered: dict[str, Price] = {}


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"register_price: {name} must be a number of USD, got {value!r}")
    number = float(value)
    if math.isnan(number) or math.isinf(number) or number < 0:
        raise ValueError(f"register_price: {name} must be a finite number >= 0, got {value!r}")
    return number


def register_price(model: str, *, input_per_mtok: float, output_per_mtok: float) -> None:
    """Set (or replace) what ``model`` costs, in USD per million input and output tokens.

    ``model`` is a name as the provider reports it (``"gpt-4o-mini"``) or a model string
    (``"openai:gpt-4o-mini"``, which then wins over the bare name for that provider).
    Missions submitted afterwards carry the table to their workers.
    """
    if not isinstance(model, str) or not model.strip():
        raise TypeError(f"register_price: model must be a non-empty model name, got {model!r}")
    price = Price(
        _number(input_per_mtok, "input_per_mtok"), _number(output_per_mtok, "output_per_mtok")
    )
    with _lock:
        _registered[model.strip()] = price


def registered_prices() -> dict[str, tuple[float, float]]:
    """The overrides registered in this process (what travels to a worker)."""
    with _lock:
        return {name: (price[0], price[1]) for name, price in _registered.items()}


def apply_prices(prices: dict[str, tuple[float, float]]) -> None:
    """Register a table from :func:`registered_prices` (in a worker)."""
    for name, (input_per_mtok, output_per_mtok) in prices.items():
        register_price(name, input_per_mtok=input_per_mtok, output_per_mtok=output_per_mtok)


def _candidates(model: str) -> list[str]:
    names = [model]
    bare = model.split(":", 1)[1] if ":" in model else model
    for name in (bare, _without_date(bare)):
        if name not in names:
            names.append(name)
    return names


def _without_date(name: str) -> str:
    """``gpt-4o-2024-08-06`` -> ``gpt-4o`` (a dated snapshot costs what its family costs)."""
    head, *date = name.rsplit("-", 3)
    if head and [len(p) for p in date] == [4, 2, 2] and all(p.isdigit() for p in date):
        return head
    return name


def price_of(model: str | None) -> Price | None:
    """The price of ``model`` (registered first, then the shipped defaults), or None."""
    if not model:
        return None
    names = _candidates(str(model).strip())
    with _lock:
        for name in names:
            if name in _registered:
                return _registered[name]
    for name in names:
        if name in DEFAULT_PRICES:
            return DEFAULT_PRICES[name]
    return None


def call_cost(model: str | None, prompt_tokens: Any, completion_tokens: Any) -> float | None:
    """USD of one call, or None when the model's price or the call's token counts are
    unknown."""
    price = price_of(model)
    if price is None or not _count(prompt_tokens) or not _count(completion_tokens):
        return None
    return price.cost(prompt_tokens, completion_tokens)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def price_model_call(fields: dict[str, Any]) -> None:
    """Add ``cost_usd`` (None when unknown) to the fields of a ``model_call`` event that
    does not carry one."""
    if "cost_usd" not in fields:
        fields["cost_usd"] = call_cost(
            fields.get("model"), fields.get("prompt_tokens"), fields.get("completion_tokens")
        )


def format_usd(value: float | None) -> str:
    """``$0.0123``; ``unknown`` for None or NaN."""
    if value is None or value != value:
        return "unknown"
    if value == 0:
        return "$0"
    return f"${value:,.4f}" if value < 100 else f"${value:,.2f}"
