"""Budgets: a limit on what a mission's model calls may spend, checked before each call.

``Mission(..., budget=Budget(max_tokens=..., max_cost_usd=..., max_model_calls=...))``.
The worker counts: every ``model_call`` event adds its tokens, its cost (see :mod:`.cost`)
and one call to the mission's :class:`Usage`. Before a call, a provider asks
``guard_model_call(model, prompt)``; a call that would pass the budget is not made: a
``budget_exceeded`` event is emitted (its ``reason`` names the budget, the limit and what
was used) and :class:`BudgetExceeded` is raised in the step attempt. The mission then
follows ``on_budget``:

* ``"abort"`` (default): the step fails without retries and the mission fails, its error
  naming the budget;
* ``"ask"``: the mission waits for a person, as ``on_max_retries="ask"`` does
  (``orch.decide(id, "retry" | "skip" | "abort")``): "retry" raises the budget by its
  original size once more and makes the call, "skip" skips the step, "abort" stops.

"Would pass": the next call is one more call, and it is expected to use as many tokens
(and USD) as the largest call so far, or its prompt's tokens (one per 4 characters, priced
at the model's input price) when that is more; so a budget is passed only by a call larger
than every call before it. A cost budget
refuses calls to a model whose price is unknown (it could not be kept). A refusal while
planning ends the mission (there is no step to skip or retry). The built-in OpenAI provider
asks before each call; another provider calls ``mission_widgets.core.events.guard_model_call``.

An orchestrator's budget (``MissionOrchestrator(budget=...)``) is checked the same way, after
the mission's own, against a :class:`SharedLedger` all its missions reach (the store's
``budgets`` table; the scheduler on Dask): one atomic step reserves the call at its expected
size (calls under way count as large as the largest call so far), the ``model_call`` event
settles it. A refusal names it ("orchestrator budget max_model_calls=6 would be passed: ...")
and the mission follows its ``on_budget``; with "ask", a person's ``decide(id, "retry")``
grows the *orchestrator's* limits by their original size, for all its missions (each
"retry" once more). A worker that dies mid-call leaves its reservation (the budget errs on
the side of spending less).
Standard library only: the worker imports this module.
"""

from __future__ import annotations

import functools
import math
import threading

from .cost import price_model_call, price_of
from .errors import MissionError, MissionValidationError

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: What a mission does when a call would pass its budget.
ON_BUDGET = ("abort", "ask")
#: Characters per token of the estimate of a prompt's tokens (a floor for English text).
CHARS_PER_TOKEN = 4
_FIELDS = ("max_tokens", "max_cost_usd", "max_model_calls")


class BudgetExceeded(MissionError):
    """A model call was not made: it would have passed a budget (the message says which)."""

    error_type = "budget_exceeded"

    def __init__(
        self, reason: str, field: str, limit: float, used: float, scope: str = "mission"
    ) -> None:
        super().__init__(reason)
        self.reason, self.field, self.limit, self.used = reason, field, limit, used
        #: "mission" (the mission's budget) or "orchestrator" (its orchestrator's, shared).
        self.scope = scope


def _limit(value: Any, field: str, integer: bool) -> float | int | None:
    if value is None:
        return None
    kind = "an int" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise MissionValidationError(f"Budget({field}=...) must be {kind} >= 0, got {value!r}")
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise MissionValidationError(f"Budget({field}=...) must be finite, got {value!r}")
    if value < 0:
        raise MissionValidationError(f"Budget({field}=...) must be >= 0, got {value!r}")
    return value


class Budget:
    """Limits on a mission's model calls (None: no limit). Checked before each call."""

    __slots__ = _FIELDS

    def __init__(
        self,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        max_model_calls: int | None = None,
    ) -> None:
        self.max_tokens = _limit(max_tokens, "max_tokens", True)
        self.max_cost_usd = _limit(max_cost_usd, "max_cost_usd", False)
        self.max_model_calls = _limit(max_model_calls, "max_model_calls", True)

    @classmethod
    def coerce(cls, value: Any, where: str = "budget") -> Budget | None:
        """A Budget from a Budget, a mapping of its fields, or None."""
        if value is None or isinstance(value, Budget):
            return value
        if isinstance(value, dict):
            unknown = set(value) - set(_FIELDS)
            if unknown:
                raise MissionValidationError(
                    f"{where}: unknown Budget field(s) {sorted(unknown)}; known: {list(_FIELDS)}"
                )
            return cls(**value)
        raise MissionValidationError(
            f"{where} must be a Budget (or a dict of its fields), got {type(value).__name__}"
        )

    def raised(self, by: Budget) -> Budget:
        """This budget with each limit grown by ``by``'s (what a person's "retry" grants)."""
        grown = {
            f: None if getattr(self, f) is None else getattr(self, f) + (getattr(by, f) or 0)
            for f in _FIELDS
        }
        return Budget(**grown)

    def refusal(self, usage: Usage, model: str | None, prompt: str | None) -> BudgetExceeded | None:
        """Why the next call (to ``model`` with ``prompt``) would pass this budget, or None."""
        return self.refuses(usage, *estimate(model, prompt), model=model)

    def refuses(
        self,
        usage: Usage,
        prompt_tokens: int,
        prompt_cost: float | None,
        model: str | None,
        scope: str = "mission",
    ) -> BudgetExceeded | None:
        """:meth:`refusal` from the prompt's estimate (:func:`estimate`: its tokens and their
        cost, None when the model has no price), so a ledger far from the prices can judge."""
        if self.max_model_calls is not None and usage.calls + 1 > self.max_model_calls:
            return _exceeded(
                scope,
                "max_model_calls",
                self.max_model_calls,
                usage.calls,
                f"{usage.calls} calls made",
            )
        guess = max(prompt_tokens, usage.largest_tokens)
        if self.max_tokens is not None and usage.tokens + guess > self.max_tokens:
            return _exceeded(
                scope,
                "max_tokens",
                self.max_tokens,
                usage.tokens,
                f"{usage.tokens:,} tokens used, the next call would use about {guess:,}",
            )
        if self.max_cost_usd is not None:
            if prompt_cost is None or usage.cost_usd is None:
                what = f"model {model!r} has no price" if prompt_cost is None else "a call's cost"
                return _exceeded(
                    scope,
                    "max_cost_usd",
                    self.max_cost_usd,
                    math.nan,
                    f"{what} is unknown, so the budget could not be kept; "
                    "register_price(model, input_per_mtok=..., output_per_mtok=...)",
                )
            next_cost = max(prompt_cost, usage.largest_cost_usd)
            if usage.cost_usd + next_cost > self.max_cost_usd:
                return _exceeded(
                    scope,
                    "max_cost_usd",
                    self.max_cost_usd,
                    usage.cost_usd,
                    f"${usage.cost_usd:.6f} spent, the next call costs at least ${next_cost:.6f}",
                )
        return None

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Budget) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().values()))

    def __repr__(self) -> str:
        given = ", ".join(f"{f}={v!r}" for f, v in self.to_dict().items() if v is not None)
        return f"Budget({given})"

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        for f in _FIELDS:
            setattr(self, f, state.get(f))


def estimate(model: str | None, prompt: str | None) -> tuple[int, float | None]:
    """A prompt's tokens (one per 4 characters) and their cost at the model's input price
    (None: the model has no price)."""
    tokens = len(prompt or "") // CHARS_PER_TOKEN
    price = price_of(model)
    return tokens, None if price is None else tokens * price.input_per_mtok / 1e6


def _exceeded(scope: str, field: str, limit: float, used: float, detail: str) -> BudgetExceeded:
    name = "budget" if scope == "mission" else f"{scope} budget"
    reason = f"{name} {field}={limit:g} would be passed: {detail}; the model call was not made"
    return BudgetExceeded(reason, field, limit, used, scope)


class Usage:
    """What a mission's model calls used: calls, tokens, USD (None once a price was unknown).

    Calls under way (checked, not reported yet) are *reserved* per thread at their expected
    size, so parallel steps cannot all pass one check together; the ``model_call`` event of
    that thread (or the end of its attempt) settles the reservation.
    """

    __slots__ = (
        "_lock",
        "_reserved",
        "calls",
        "cost_usd",
        "largest_cost_usd",
        "largest_tokens",
        "tokens",
    )

    def __init__(self) -> None:
        self.calls, self.tokens, self.largest_tokens = 0, 0, 0
        self.cost_usd: float | None = 0.0
        self.largest_cost_usd = 0.0
        self._init_lock()

    def _init_lock(self) -> None:
        self._lock = threading.Lock()
        self._reserved: dict[Any, tuple[int, float]] = {}

    def add(self, fields: dict[str, Any], key: Any = None) -> None:
        """Count one ``model_call`` event's fields (settling the reservation of ``key``, by
        default the calling thread's)."""
        tokens = 0
        for name in ("prompt_tokens", "completion_tokens"):
            value = fields.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                tokens += value
        cost = fields.get("cost_usd")
        with self._lock:
            self._reserved.pop(threading.get_ident() if key is None else key, None)
            self.calls += 1
            self.tokens += tokens
            self.largest_tokens = max(self.largest_tokens, tokens)
            if isinstance(cost, int | float):
                self.largest_cost_usd = max(self.largest_cost_usd, float(cost))
            if self.cost_usd is not None:
                self.cost_usd = self.cost_usd + cost if isinstance(cost, int | float) else None

    def with_reserved(self) -> Usage:
        """A copy that counts the calls under way as made (call with the lock held)."""
        view = Usage.__new__(Usage)
        # A call under way counts as large as the largest call so far, also one reserved
        # before a larger one reported (the first calls of many missions start together).
        pending = [
            (max(t, self.largest_tokens), max(c, self.largest_cost_usd))
            for t, c in self._reserved.values()
        ]
        view.calls = self.calls + len(pending)
        view.tokens = self.tokens + sum(t for t, _ in pending)
        view.cost_usd = (
            None if self.cost_usd is None else self.cost_usd + sum(c for _, c in pending)
        )
        view.largest_tokens, view.largest_cost_usd = self.largest_tokens, self.largest_cost_usd
        return view

    def release(self) -> None:
        """This thread's call did not report (it failed): its reservation goes."""
        with self._lock:
            self._reserved.pop(threading.get_ident(), None)

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if not name.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self._init_lock()


def check_on_budget(value: Any) -> str:
    if value not in ON_BUDGET:
        raise MissionValidationError(f"on_budget must be one of {ON_BUDGET}, got {value!r}")
    return str(value)


def budget_state(budget: Any, on_budget: Any) -> tuple[Budget | None, str, Usage]:
    """A mission's ``(budget, on_budget, usage)``, checked. (A mission pickled before budgets
    gets its defaults from core/unpickling.py, like any attribute added later.)"""
    return Budget.coerce(budget), check_on_budget(on_budget), Usage()


def _reservation(usage: Usage, prompt_tokens: int, prompt_cost: float | None) -> tuple[int, float]:
    """What a call under way is expected to use: as much as the largest call so far, or its
    prompt when that is more."""
    return max(prompt_tokens, usage.largest_tokens), max(prompt_cost or 0.0, usage.largest_cost_usd)


def _call_key(mission: Any) -> str:
    """Whose call it is, in a ledger many missions (and their parallel steps) share."""
    return f"{mission.id}/{threading.get_ident()}"


#: The fields of a ``model_call`` event a ledger counts.
_COUNTED = ("prompt_tokens", "completion_tokens", "cost_usd")


def count_model_call(mission: Any, fields: dict[str, Any]) -> None:
    """A ``model_call`` event's fields get their ``cost_usd``; its usage is counted (in the
    mission, and in its orchestrator's ledger)."""
    price_model_call(fields)
    mission.usage.add(fields)
    shared: SharedLedger | None = mission.shared_budget
    if shared is not None:
        shared.settle(_call_key(mission), {k: fields.get(k) for k in _COUNTED})


def guard_for(mission: Any) -> Callable[[str | None, str | None, Any], None] | None:
    """The check a mission's model calls go through (None without a budget)."""
    if mission.budget is None and mission.shared_budget is None:
        return None
    return functools.partial(_check, mission)


def _check(mission: Any, model: str | None, prompt: str | None, ctx: Any) -> None:
    tokens, cost = estimate(model, prompt)
    usage: Usage = mission.usage
    refusal = None
    if mission.budget is not None:
        with usage._lock:
            refusal = mission.budget.refuses(usage.with_reserved(), tokens, cost, model)
            if refusal is None:  # reserved at its expected size until it reports
                usage._reserved[threading.get_ident()] = _reservation(usage, tokens, cost)
    shared: SharedLedger | None = mission.shared_budget
    if refusal is None:
        if shared is None:
            return
        refusal = shared.reserve(_call_key(mission), tokens, cost, model)
        if refusal is None:
            return
        usage.release()  # the mission's own reservation: this call is not made
    used = None if refusal.used != refusal.used else refusal.used  # NaN is not JSON
    mission._emit(
        "budget_exceeded",
        step_id=None if ctx.step is None else ctx.step.id,
        attempt=ctx.attempt,
        reason=refusal.reason,
        error_message=refusal.reason,
        error_type=BudgetExceeded.error_type,
        budget=refusal.field,
        scope=refusal.scope,
        limit=refusal.limit,
        used=used,
        model=model,
    )
    raise refusal


def release_calls(mission: Any) -> None:
    """This thread's call did not report (it failed, or the attempt ended): its reservations
    go, in the mission and in its orchestrator's ledger."""
    mission.usage.release()
    shared: SharedLedger | None = mission.shared_budget
    if shared is not None:
        shared.release(_call_key(mission))


def raise_budget(mission: Any, refused: BudgetExceeded | None = None) -> None:
    """A person let a mission past the budget that refused it: each of its limits grows by
    its original size (the orchestrator's, for all its missions, when that one refused)."""
    if refused is not None and refused.scope == "orchestrator" and mission.shared_budget:
        grown = mission.shared_budget.raise_limits()
        mission._emit("budget_raised", scope="orchestrator", budget=grown)
        return
    original = mission.__dict__.setdefault("_budget_given", mission.budget)
    mission.budget = mission.budget.raised(original)
    mission._emit("budget_raised", scope="mission", budget=mission.budget.to_dict())


# -- a budget many missions share: the orchestrator's ------------------------------------------


def new_ledger(budget: Budget) -> dict[str, Any]:
    """The JSON state of a shared budget with nothing spent: its limits (``budget``), the
    limits it was given (a raise adds those), what was used and the calls under way."""
    return {
        "budget": budget.to_dict(),
        "given": budget.to_dict(),
        "usage": Usage().__getstate__(),
        "reserved": {},
    }


def _usage_of(state: dict[str, Any]) -> Usage:
    usage = Usage()
    usage.__setstate__(dict(state["usage"]))
    usage._reserved = {k: (int(t), float(c)) for k, (t, c) in state["reserved"].items()}
    return usage


def _keep(state: dict[str, Any], usage: Usage) -> None:
    state["usage"] = usage.__getstate__()
    state["reserved"] = {k: list(v) for k, v in usage._reserved.items()}


def ledger_reserve(
    state: dict[str, Any],
    key: str,
    prompt_tokens: int,
    prompt_cost: float | None,
    model: str | None,
) -> dict[str, Any] | None:
    """Reserve one call in ``state`` (under the ledger's lock); the refusal's fields when it
    would pass the budget (nothing is reserved then)."""
    usage = _usage_of(state)
    budget = Budget(**state["budget"])
    refusal = budget.refuses(
        usage.with_reserved(), prompt_tokens, prompt_cost, model, "orchestrator"
    )
    if refusal is not None:
        return {
            "reason": refusal.reason,
            "field": refusal.field,
            "limit": refusal.limit,
            "used": refusal.used,
        }
    usage._reserved[key] = _reservation(usage, prompt_tokens, prompt_cost)
    _keep(state, usage)
    return None


def ledger_settle(state: dict[str, Any], key: str, fields: dict[str, Any]) -> None:
    usage = _usage_of(state)
    usage.add(fields, key)
    _keep(state, usage)


def ledger_release(state: dict[str, Any], key: str) -> None:
    """Drop the reservation of a call that did not report (it failed)."""
    state["reserved"].pop(key, None)


def ledger_raise(state: dict[str, Any]) -> dict[str, Any]:
    grown = Budget(**state["budget"]).raised(Budget(**state["given"])).to_dict()
    state["budget"] = grown
    return grown


class SharedLedger:
    """A budget many missions share (``MissionOrchestrator(budget=...)``), kept where all
    of them can reach it atomically: a subclass gives :meth:`_update` (apply a ledger
    function to the state under a lock others respect, save it, return its result) and
    :meth:`read`. Travels to workers with the mission (pickled: only where it is kept)."""

    budget_id: str

    def _update(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def read(self) -> dict[str, Any]:
        """The ledger's state (see :func:`new_ledger`)."""
        raise NotImplementedError

    def reserve(
        self, key: str, prompt_tokens: int, prompt_cost: float | None, model: str | None
    ) -> BudgetExceeded | None:
        found = self._update(ledger_reserve, key, prompt_tokens, prompt_cost, model)
        if found is None:
            self._held().add(key)
            return None
        return BudgetExceeded(**found, scope="orchestrator")

    def settle(self, key: str, fields: dict[str, Any]) -> None:
        self._held().discard(key)
        self._update(ledger_settle, key, fields)

    def release(self, key: str) -> None:
        held = self._held()
        if key in held:  # most attempts end with nothing under way: no write then
            held.discard(key)
            self._update(ledger_release, key)

    def raise_limits(self) -> dict[str, Any]:
        """Grow each limit by its original size (a person's "retry"); returns the new limits."""
        return dict(self._update(ledger_raise))

    def _held(self) -> set[str]:
        held: set[str] | None = self.__dict__.get("_held_keys")
        if held is None:
            held = self.__dict__["_held_keys"] = set()
        return held

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
