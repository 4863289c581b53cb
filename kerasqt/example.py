"""The main job: a small real model trained on scikit-learn's digits, watched live.

Run it with ``kerasqt example`` (or ``make run``). The data ship inside
scikit-learn (1,797 8x8 images of handwritten digits): nothing is downloaded.
"""

from __future__ import annotations

import numpy as np

__all__ = ["digits_data", "digits_model", "train_digits"]


def digits_data(seed: int = 0):
    """Digits as float32 features in [0, 1] and integer labels, shuffled."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the example needs scikit-learn: pip install scikit-learn") from exc
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    return (x[order] / 16.0).astype("float32"), y[order].astype("int32")


def digits_model(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    schedule = keras.optimizers.schedules.ExponentialDecay(2e-3, decay_steps=200, decay_rate=0.7)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_digits(monitor, epochs: int = 12, batch_size: int = 32, seed: int = 0):
    """Fit the digits model in this thread with ``monitor``; returns (model, history)."""
    x, y = digits_data(seed)
    model = digits_model(seed)
    monitor.batch_size = batch_size
    history = model.fit(x, y, validation_split=0.2, epochs=epochs, batch_size=batch_size, verbose=0,
                        callbacks=[monitor])
    return model, history
