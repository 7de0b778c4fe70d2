"""Surrogate-gradient BPTT in the loop: the host model and its backward pass (``model``), the rule
plugin (``rule``)."""

from .rule import Surrogate

__all__ = ["Surrogate"]
