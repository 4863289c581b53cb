"""The main job: a small real model learning to tell three interleaved spirals apart, watched live.

Run it with ``kerasqt example`` (or ``make run``). The data are made here with NumPy
(3,000 noisy points on three spiral arms): nothing is downloaded and nothing beyond
kerasqt's own dependencies is needed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spiral_data", "spiral_model", "train_spirals"]


def spiral_data(n: int = 3000, arms: int = 3, noise: float = 0.25, seed: int = 0):
    """``n`` points on ``arms`` spiral arms as float32 ``(n, 2)`` features and int32 labels, shuffled.

    Each arm winds 1.5 turns out from the centre; ``noise`` is the spread of the angle, in radians.
    """
    if n < arms or arms < 2:
        raise ValueError(f"need at least 2 arms and a point per arm, got n={n}, arms={arms}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % arms
    radius = rng.uniform(0.05, 1.0, n)
    angle = 3 * np.pi * radius + 2 * np.pi * labels / arms + rng.normal(0.0, noise, n)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    order = rng.permutation(n)
    return x[order].astype("float32"), labels[order].astype("int32")


def spiral_model(seed: int = 0, arms: int = 3):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(arms, activation="softmax"),
    ], name="spirals")
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=300, decay_rate=0.7)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_spirals(monitor, epochs: int = 12, batch_size: int = 32, seed: int = 0):
    """Fit the spiral model in this thread with ``monitor``; returns (model, history)."""
    x, y = spiral_data(seed=seed)
    model = spiral_model(seed)
    monitor.batch_size = batch_size
    history = model.fit(x, y, validation_split=0.2, epochs=epochs, batch_size=batch_size, verbose=0,
                        callbacks=[monitor])
    return model, history
