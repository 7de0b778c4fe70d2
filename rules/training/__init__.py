"""In-the-loop training: the trainer, its configuration, the optimizer and checkpoints."""

from .config import TrainConfig, parse_train, validate_train
from .optimizer import Adam
from .trainer import Trainer, decode

__all__ = ["TrainConfig", "parse_train", "validate_train", "Adam", "Trainer", "decode"]
