"""The plugin manager: where rules come from and how a failing one is named.

Four visible steps, as in pluggy's own examples: make a ``PluginManager``, add the hook specs,
load third-party rules from the ``chipctl.rules`` entry-point group, register the built-ins — the
same way. ``module:Class`` on the command line names a rule ad hoc. Each rule gets its own
``RuleContext`` (its options, its generator); calls go through ``call`` so an exception in a rule
becomes a ``RuleError`` naming the rule and the hook.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Iterable

import numpy as np
import pluggy

from chip.errors import ChipctlError, RuleError

from . import hookspecs
from .api import RuleContext

__all__ = ["BUILTIN_RULES", "make_plugin_manager", "available_rules", "load_rule", "RuleSet"]

# name -> "module:Class"; registered exactly like third-party entry points
BUILTIN_RULES = {
    "eventprop": "rules.eventprop:EventProp",
}


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points() -> dict[str, str]:
    found = {}
    for ep in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def available_rules() -> dict[str, str]:
    """Every rule that can be named: built-ins, then installed entry points (name -> target)."""
    rules = dict(BUILTIN_RULES)
    for name, target in _entry_points().items():
        rules.setdefault(name, target)
    return rules


def _import_target(target: str):
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error in a plugin must name the plugin
        raise RuleError(f"cannot import {module_name!r}: {exc}", plugin=target) from exc
    if not attr:
        return module
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RuleError(f"{module_name!r} has no attribute {attr!r}", plugin=target) from None
    return obj


def load_rule(spec: str) -> tuple[str, Any]:
    """A rule object from a name (built-in or entry point) or ``module:Class``."""
    rules = available_rules()
    target = rules.get(spec, spec)
    if ":" not in target and spec not in rules:
        raise RuleError(f"unknown rule {spec!r}; installed: {', '.join(sorted(rules))} "
                        f"(or name one as module:Class)")
    obj = _import_target(target)
    instance = obj() if isinstance(obj, type) else obj
    name = getattr(instance, "name", "") or spec
    return name, instance


def rule_options(rule: Any) -> dict[str, tuple[Any, str]]:
    return dict(getattr(rule, "options", {}) or {})


def _arg_names(fn) -> set[str] | None:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


class RuleSet:
    """The rules of one training run, registered in a plugin manager, each with its context."""

    def __init__(self, specs: Iterable[str], *, host, train: dict, options: dict[str, dict], seed: int):
        self.pm = make_plugin_manager()
        self.contexts: dict[str, RuleContext] = {}
        self.rules: dict[str, Any] = {}
        for i, spec in enumerate(specs):
            name, rule = load_rule(spec)
            if name in self.rules:
                raise RuleError("rule named twice", plugin=name)
            defaults = {k: v[0] for k, v in rule_options(rule).items()}
            given = dict(options.get(name, options.get(spec, {})) or {})
            unknown = set(given) - set(defaults) if defaults else set()
            if unknown:
                raise RuleError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(defaults)) or 'none'}", plugin=name)
            try:
                self.pm.register(rule, name=name)
            except Exception as exc:  # e.g. a hook implementation whose arguments do not match its spec
                raise RuleError(f"cannot register: {exc}", plugin=name) from exc
            self.rules[name] = rule
            self.contexts[name] = RuleContext(host=host, options={**defaults, **given},
                                              rng=np.random.default_rng([seed, i, 17]), train=train,
                                              input=train.get("input"), output=train.get("output"))

    def call(self, hook: str, **kwargs) -> dict[str, Any]:
        """Call ``hook`` on every rule with its own context; returns rule name -> result. An
        exception in a rule becomes a RuleError naming it (chipctl's own errors keep their text)."""
        results = {}
        for name, rule in self.rules.items():
            impl = getattr(rule, hook, None)
            if impl is None or not callable(impl):
                continue
            args = {"context": self.contexts[name], **kwargs}
            # like pluggy, pass an implementation only the arguments it declares
            wanted = _arg_names(impl)
            if wanted is not None:
                args = {k: v for k, v in args.items() if k in wanted}
            try:
                results[name] = impl(**args)
            except RuleError as exc:
                if exc.plugin is None:
                    raise RuleError(str(exc), plugin=name, hook=hook) from exc
                raise
            except ChipctlError as exc:
                raise RuleError(exc.one_line(), plugin=name, hook=hook) from exc
            except Exception as exc:
                raise RuleError(f"{type(exc).__name__}: {exc}", plugin=name, hook=hook) from exc
        return results

    def call_one(self, name: str, hook: str, **kwargs):
        """Call ``hook`` on one rule only (e.g. restoring its own state), with the same naming."""
        rules, self.rules = self.rules, {name: self.rules[name]}
        try:
            return self.call(hook, **kwargs).get(name)
        finally:
            self.rules = rules

    def set_progress(self, epoch: int, step: int) -> None:
        for ctx in self.contexts.values():
            ctx.epoch = epoch
            ctx.step = step
