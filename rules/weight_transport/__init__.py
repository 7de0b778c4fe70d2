"""STDP weight transport (Gierlich et al. 2025): feedback synapses B that learn the forward weights W
from spike timing alone (``rule``), and the error-feedback learning they serve (``feedback``)."""

from .rule import MODES, WeightTransport, alignment_angle, stdp_update

__all__ = ["WeightTransport", "MODES", "alignment_angle", "stdp_update"]
