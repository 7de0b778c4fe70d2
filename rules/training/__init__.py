"""In-the-loop training: the trainer, its configuration, the optimizer and checkpoints."""

from .optimizer import Adam
from .trainer import Trainer, TrainConfig, decode, parse_train

__all__ = ["TrainConfig", "parse_train", "Adam", "Trainer", "decode"]
