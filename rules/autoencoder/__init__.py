"""The autoencoder regularizer (Hübotter, Lanillos & Tomczak 2021) as a loss-term plugin."""

from .regularizer import (AutoencoderRegularizer, latent_terms, membrane_band_terms, membrane_terms, rate_band_terms,
                          spike_terms)

__all__ = ["AutoencoderRegularizer", "spike_terms", "membrane_terms", "rate_band_terms", "membrane_band_terms",
           "latent_terms"]
