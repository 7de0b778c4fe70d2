"""The plugin manager: where rules come from, how they are checked, and how their hooks are called.

Job: find rules, register them with pluggy and call their hooks, one ``RuleContext`` per rule.
Four visible steps, as in pluggy's own examples: make a ``PluginManager("chipctl")``, add the hook
specs, discover rules in the ``chipctl.rules`` entry-point group (built-ins are declared there in
chipctl's own ``pyproject.toml``, found exactly like third-party ones), register them.
``module:Class`` names a rule ad hoc. Boundary: what the hooks mean is ``hookspecs``, the data
they pass is ``api``; when they are called is the trainer's (or any other caller's) business.

Registration refuses what would silently never run: a ``chipctl_*`` method without ``@hookimpl``,
and a ``@hookimpl`` whose name matches no hook spec. Every call goes through pluggy's hook
callers, one rule at a time (``subset_hook_caller`` with every other rule removed), in pluggy's
order: so argument selection, spec checks, ``tryfirst``/``trylast`` and hook wrappers are pluggy's,
each rule still gets its own context, a ``firstresult`` hook stops at the first non-None result,
and an exception is a ``RuleError`` that names the rule and the hook.
"""

from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from typing import Any, Iterable

import numpy as np
import pluggy

from chip.errors import ChipctlError, RuleError

from . import hookspecs
from .api import RuleContext

__all__ = ["make_plugin_manager", "available_rules", "load_rule", "check_rule", "rule_options", "RuleSet"]

HOOK_PREFIX = "chipctl_"
_REINSTALL = "pip install -e . in the chipctl checkout"


def make_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows chipctl's hook specs and no plugins yet."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """Rules declared in the ``chipctl.rules`` entry-point group of every installed distribution
    (the discovery ``PluginManager.load_setuptools_entrypoints`` does, without loading them: a
    rule is imported only when it is named). The first declaration of a name wins."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def available_rules() -> dict[str, str]:
    """Every rule that can be named, built-in or third-party: name -> ``module:attribute``."""
    return {name: ep.value for name, ep in sorted(_entry_points().items())}


def _stale_install() -> str | None:
    """Why chipctl's own rules are not among the entry points, when that is the reason."""
    try:
        dist = metadata.distribution(hookspecs.PROJECT_NAME)
    except metadata.PackageNotFoundError:
        return f"chipctl is not installed, so its built-in rules are not declared anywhere ({_REINSTALL})"
    if not any(ep.group == hookspecs.ENTRY_POINT_GROUP for ep in dist.entry_points):
        return (f"the installed chipctl {dist.version} declares no {hookspecs.ENTRY_POINT_GROUP} entry points: "
                f"it was installed from an older checkout; reinstall it ({_REINSTALL})")
    return None


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
    """A rule object from an entry-point name or ``module:Class`` (a class is instantiated with
    no arguments; an instance is used as it is). Returns (the rule's name, the object)."""
    rules = available_rules()
    target = rules.get(spec)
    if target is None:
        if ":" not in spec:
            stale = _stale_install()
            why = f"; {stale}" if stale else ""
            raise RuleError(f"unknown rule {spec!r}; installed: {', '.join(rules) or 'none'} "
                            f"(or name one as module:Class){why}")
        target = spec
    obj = _import_target(target)
    try:
        instance = obj() if isinstance(obj, type) else obj
    except Exception as exc:  # a constructor that fails must name the rule, not show a traceback
        raise RuleError(f"cannot create the rule: {type(exc).__name__}: {exc}", plugin=spec) from None
    name = getattr(instance, "name", "") or spec
    if not isinstance(name, str):
        raise RuleError(f"the rule's name must be a string, got {type(name).__name__}", plugin=spec)
    return name, instance


def rule_options(rule: Any) -> dict[str, tuple[Any, str]]:
    return dict(getattr(rule, "options", {}) or {})


def _is_wrapper(impl) -> bool:
    return bool(impl.hookwrapper or getattr(impl, "wrapper", False))


def _register(pm: pluggy.PluginManager, rule: Any, name: str) -> None:
    """Register ``rule`` under ``name``, refusing (with a RuleError naming rule and method) what
    would never be called: a ``chipctl_*`` method that is not a hook implementation, a hook
    implementation that matches no spec, arguments that the spec does not have."""
    try:
        hash(rule)
    except TypeError:
        raise RuleError("a rule object must be hashable (a @dataclass rule needs eq=False)", plugin=name) from None
    try:
        pm.register(rule, name=name)
    except Exception as exc:  # e.g. a hook implementation whose arguments do not match its spec
        raise RuleError(f"cannot register: {exc}", plugin=name) from exc
    try:
        _check_registered(pm, rule, name)
        if not pm.get_hookcallers(rule):
            raise RuleError(f"{type(rule).__name__} implements no chipctl_* hook: not a rule (a rule is a class "
                            "with @hookimpl methods; see docs/writing-a-rule.md)", plugin=name)
    except RuleError:
        pm.unregister(rule)
        raise


def _check_registered(pm: pluggy.PluginManager, rule: Any, name: str) -> None:
    specs = sorted(n for n in vars(pm.hook) if not n.startswith("_") and getattr(pm.hook, n).has_spec())
    marked = set()
    for caller in pm.get_hookcallers(rule) or []:
        marked.add(caller.name)
        if not caller.has_spec() and any(i.plugin is rule and not i.optionalhook for i in caller.get_hookimpls()):
            close = difflib.get_close_matches(caller.name, specs, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; hooks: {', '.join(specs)}"
            raise RuleError(f"method {caller.name} is marked @hookimpl but there is no such hook{hint}", plugin=name)
    for attr in dir(rule):
        if not attr.startswith(HOOK_PREFIX) or attr in marked:
            continue
        try:
            value = getattr(rule, attr)
        except Exception:
            continue
        if not callable(value):
            continue
        if attr in specs:
            raise RuleError(f"method {attr} is not marked @hookimpl (from rules import hookimpl), so it would "
                            "never be called", plugin=name)
        close = difflib.get_close_matches(attr, specs, n=1)
        hint = f"did you mean {close[0]}?" if close else f"hooks: {', '.join(specs)}"
        raise RuleError(f"method {attr} is not a hook implementation and no hook has that name ({hint})",
                        plugin=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise RuleError(str(exc), plugin=name) from None


def check_rule(rule: Any, name: str) -> None:
    """Raise the RuleError that registering ``rule`` would raise (``chipctl rules`` lists it as
    broken then); a throwaway plugin manager, so nothing stays registered."""
    _register(make_plugin_manager(), rule, name)


class RuleSet:
    """The rules of one training (or calibration) run, registered in one plugin manager, each
    with its own context.

    Rules are called in the order they are named (``train.rules``, then ``--rule``): they are
    registered last to first, since pluggy calls the latest registered first. ``@hookimpl(
    tryfirst=True)`` / ``trylast=True`` move a rule's implementation to the front / back, as
    pluggy orders them."""

    def __init__(self, specs: Iterable[str], *, host, train: dict, options: dict[str, dict], seed: int,
                 progress=None):
        self.pm = make_plugin_manager()
        self.host = host
        self.contexts: dict[str, RuleContext] = {}
        self.rules: dict[str, Any] = {}
        for i, spec in enumerate(specs):
            name, rule = load_rule(spec)
            if name in self.rules:
                raise RuleError("rule named twice (train.rules and --rule together name it more than once; "
                                "--rule adds to train.rules)", plugin=name)
            defaults = {k: v[0] for k, v in rule_options(rule).items()}
            given = dict(options.get(name, options.get(spec, {})) or {})
            unknown = set(given) - set(defaults) if defaults else set()
            if unknown:
                raise RuleError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(defaults)) or 'none'}", plugin=name)
            check_rule(rule, name)
            self.rules[name] = rule
            self.contexts[name] = RuleContext(host=host, options={**defaults, **given},
                                              rng=np.random.default_rng([seed, i, 17]), train=train,
                                              input=train.get("input"), output=train.get("output"),
                                              progress=progress)
        for name in reversed(list(self.rules)):
            _register(self.pm, self.rules[name], name)

    def order(self, hook: str) -> list[str]:
        """The rules implementing ``hook``, in the order they are called (pluggy's: hook wrappers
        aside, ``tryfirst`` first, then in registration order from the latest)."""
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        return [impl.plugin_name for impl in reversed(impls) if not _is_wrapper(impl)]

    def _call(self, hook: str, names: list[str], kwargs: dict, stop_at_result: bool) -> dict[str, Any]:
        caller = getattr(self.pm.hook, hook)
        firstresult = bool(caller.spec and caller.spec.opts.get("firstresult"))
        impls = [i for i in caller.get_hookimpls() if not _is_wrapper(i)]
        results: dict[str, Any] = {}
        for name in names:
            rule = self.rules[name]
            # every other rule's implementation out; hook wrappers (of any rule) stay around it
            others = [i.plugin for i in impls if i.plugin is not rule]
            one = self.pm.subset_hook_caller(hook, remove_plugins=others)
            try:
                out = one(context=self.contexts[name], **kwargs)
            except RuleError as exc:
                if exc.plugin is None:
                    raise RuleError(str(exc), plugin=name, hook=hook) from exc
                raise
            except ChipctlError as exc:
                raise RuleError(exc.one_line(), plugin=name, hook=hook) from exc
            except Exception as exc:
                raise RuleError(f"{type(exc).__name__}: {exc}", plugin=name, hook=hook) from exc
            if not firstresult:
                out = out[0] if out else None
            results[name] = out
            if stop_at_result and out is not None:
                break
        return results

    def call(self, hook: str, **kwargs) -> dict[str, Any]:
        """Call ``hook`` on every rule that implements it, each with its own context, in
        :meth:`order`; returns rule name -> result in that order. For a ``firstresult`` spec the
        calls stop at the first rule that returns something other than None. An exception in a
        rule becomes a RuleError naming it and the hook (chipctl's own errors keep their text)."""
        caller = getattr(self.pm.hook, hook, None)
        if caller is None or not caller.has_spec():
            raise RuleError(f"no hook named {hook!r}")
        firstresult = bool(caller.spec.opts.get("firstresult"))
        return self._call(hook, self.order(hook), kwargs, stop_at_result=firstresult)

    def call_one(self, name: str, hook: str, **kwargs):
        """Call ``hook`` on one rule only (e.g. restoring its own state), with the same naming;
        None when the rule does not implement it."""
        if name not in self.order(hook):
            return None
        return self._call(hook, [name], kwargs, stop_at_result=False).get(name)

    def calibrate(self, targets: dict) -> tuple[str, dict] | None:
        """``chipctl_calibrate``: the first rule (in :meth:`order`) that returns a report wins and
        later ones are not called. Returns (rule name, report), or None when every rule passed.
        One host transaction: if a calibration raises, its writes are rolled back."""
        with self.host.transaction():
            results = self.call("chipctl_calibrate", targets=targets)
        for name, report in results.items():
            if report is not None:
                return name, report
        return None

    def set_progress(self, epoch: int, step: int) -> None:
        for ctx in self.contexts.values():
            ctx.epoch = epoch
            ctx.step = step
