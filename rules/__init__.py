"""Learning rules as plugins: the one place a rule author imports from.

Job: re-export what a rule needs — the pluggy markers (``hookimpl``, ``hookspec``), the data the
hooks pass (``Batch``, ``RunRequest``, ``LossTerm``, ``Gradients``, ``RuleContext``), the optional
``Rule`` base class, ``RuleError``, ``RuleSet`` to call a rule's hooks without the trainer and
``check_rule`` to see whether registering a rule would be refused.
Boundary: the contract itself is ``rules.hookspecs``, the data ``rules.api``, discovery and
dispatch ``rules.manager``; the trainer (``rules.training``), the built-in rules
(``rules.eventprop``) and the tasks are imported only when named, not from here.
"""

from chip.errors import ChipctlError, RuleError

from .api import Batch, Gradients, LossTerm, Rule, RuleContext, RunRequest
from .hookspecs import hookimpl, hookspec
from .manager import RuleSet, check_rule

__all__ = [
    "hookimpl",
    "hookspec",
    "Rule",
    "RuleContext",
    "RunRequest",
    "Batch",
    "Gradients",
    "LossTerm",
    "RuleError",
    "ChipctlError",
    "RuleSet",
    "check_rule",
]
