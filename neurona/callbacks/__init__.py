"""Callbacks: code that `fit` runs at the start and end of training, of each epoch and of each
batch — progress, early stopping, checkpoints, learning-rate control, logs, and two monitors the
course asks to watch (dead ReLUs, gradient flow).
May import: numpy, neurona (Tensor, no_grad), neurona.optim, neurona.saving (lazily),
tensorboardX (lazily, extra [tb]). Never neurona.models (models import callbacks).
"""
from .base import Callback, CallbackList, History, ProgbarLogger
from .core import (CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau,
                   TensorBoard, TerminateOnNaN)
from .monitors import DeadUnitMonitor, GradientFlowMonitor

__all__ = ["CSVLogger", "Callback", "CallbackList", "DeadUnitMonitor", "EarlyStopping", "GradientFlowMonitor",
           "History", "LearningRateScheduler", "ModelCheckpoint", "ProgbarLogger", "ReduceLROnPlateau",
           "TensorBoard", "TerminateOnNaN"]
