"""`/budget <spec> +N`: a maintainer raises a spec's budget (bot/agents/budgets.py) by N USD,
or by N tokens (`+N tokens`); the spec's tasks waiting for it go on."""

from __future__ import annotations

import re

from bot.agents.budget_release import release_budget_holds
from bot.agents.budgets import spec_caps, spent_on_spec
from bot.repo_config import CONFIG_PATH
from bot.steer.commands.registry import CommandError, Context, Where, command
from bot.steer.permissions import permission_to_steer

# Who may spend more: a maintainer of the repository.
MAY_RAISE = {"admin"}
_ARGS = re.compile(
    r"^(?P<spec>[^\s+]+)\s+\+\$?(?P<amount>\d+(?:\.\d+)?)(?:\s+(?P<unit>usd|tokens))?$"
)
MAX_RAISE = 1_000_000_000


@command(
    "budget",
    Where.ANYWHERE,
    "/budget <spec> +N [tokens]",
    "a maintainer adds N USD (or N tokens) to a spec's budget; its waiting tasks go on",
)
def raise_budget(ctx: Context, args: str) -> str:
    ctx.session.commit()  # no transaction open while GitHub is asked
    permission = permission_to_steer(ctx.repo, ctx.user)
    if permission not in MAY_RAISE:
        return (
            f"`/budget` spends money: it needs admin access to the repository, and @{ctx.user} "
            f"has {'no' if permission == 'none' else permission} access. Nothing changed."
        )
    found = _ARGS.match(args.strip())
    if found is None:
        raise CommandError("Say `/budget <spec> +N` (N more USD) or `/budget <spec> +N tokens`.")
    key, unit = found["spec"], found["unit"] or "usd"
    amount = float(found["amount"])
    if amount > MAX_RAISE:
        raise CommandError(f"{found['amount']} is more than a budget can be raised by at once.")
    spec = next((s for s in ctx.repository.specs if s.key == key), None)
    if spec is None:
        known = ", ".join(f"`{s.key}`" for s in ctx.repository.specs) or "none"
        raise CommandError(f"No spec `{key}` in this repository (its specs: {known}).")
    if unit not in spec_caps(spec):
        raise CommandError(
            f"The spec `{key}` has no {unit} cap to raise: `budget:` in `{CONFIG_PATH}` sets none."
        )
    if unit == "usd":
        spec.budget_extra_usd = (spec.budget_extra_usd or 0.0) + amount
    else:
        spec.budget_extra_tokens = (spec.budget_extra_tokens or 0) + int(amount)
    cap, spent = spec_caps(spec)[unit], spent_on_spec(ctx.session, spec.id)
    spec_id = spec.id
    ctx.session.commit()
    going = release_budget_holds(ctx.steering.settings, spec_id)
    if unit == "usd":
        now = f"${cap:.2f} (spent: ${spent.usd:.2f})"
        added = f"${amount:.2f}"
    else:
        now = f"{int(cap):,} tokens (used: {spent.tokens:,})"
        added = f"{int(amount):,} tokens"
    return (
        f"Added {added} to the budget of the spec `{key}`: its cap is now {now}. "
        f"{going} waiting task(s) go on."
    )
