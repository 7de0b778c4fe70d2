"""EventProp (Wunderlich & Pehle 2021): ``rule`` is the plugin, ``adjoint`` the math on spike times."""

from .rule import EventProp

__all__ = ["EventProp"]
