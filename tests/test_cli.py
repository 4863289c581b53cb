"""The kerasqt command, run as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(args, env_extra=None, drop=(), timeout=240):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "kerasqt", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_demo_smoke_mode_saves_a_screenshot(tmp_path):
    shot = tmp_path / "shot.png"
    r = _run(["demo", "--seconds", "3", "--screenshot", str(shot)])
    assert r.returncode == 0, r.stderr
    assert shot.stat().st_size > 10_000
    assert f"screenshot saved to {shot}" in r.stdout
    assert "worker:" not in r.stdout  # the worker's prints went to the window


@pytest.mark.parametrize("args, words", [
    (["demo", "--seconds", "-1"], "positive number"),
    (["demo", "--seconds", "abc"], "not a number"),
    (["demo", "--batch-size", "0"], ">= 1"),
    (["demo", "--screenshot", "/no/such/folder/x.png"], "folder does not exist"),
    (["demo", "--log-dir", __file__], "not a folder"),
    (["fly"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, words):
    r = _run(args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr


def test_no_display_and_no_offscreen_platform_is_a_clear_error():
    r = _run(["demo", "--seconds", "1"], drop=("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"))
    assert r.returncode == 2
    assert "no screen found" in r.stderr and "QT_QPA_PLATFORM=offscreen" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_display_without_a_screen_behind_it_is_a_clear_error_not_an_abort():
    r = _run(["demo", "--seconds", "1"], drop=("QT_QPA_PLATFORM", "WAYLAND_DISPLAY"), env_extra={"DISPLAY": ":187"})
    assert r.returncode == 2, r.stderr[-2000:]  # Qt itself aborts the process (-6) here
    lines = r.stderr.strip().splitlines()
    assert "Qt cannot open a window here" in lines[-1] and "QT_QPA_PLATFORM=offscreen" in lines[-1]
    assert "Traceback" not in r.stderr


def test_missing_qt_binding_names_the_package(tmp_path):
    from kerasqt.qtapp import binding

    for name in ("PyQt5", "PyQt6", "PySide6", "PySide2"):  # shadow every binding: importing them fails
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed (test)')\n")
    r = _run(["demo", "--seconds", "1"], env_extra={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 2
    package = {"pyqt5": "PyQt5", "pyqt6": "PyQt6", "pyside6": "PySide6"}[binding()]
    assert f"pip install {package}" in r.stderr and "Traceback" not in r.stderr


def test_example_trains_and_saves_a_screenshot(tmp_path):
    shot = tmp_path / "ex.png"
    r = _run(["example", "--epochs", "2", "--screenshot", str(shot)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "trained 2 epochs" in r.stdout and f"screenshot saved to {shot}" in r.stdout
    assert shot.stat().st_size > 20_000


def test_no_command_shows_what_there_is_to_do_and_version_says_the_version():
    r = _run([], timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1  # one line, like every failure
    assert all(name in r.stderr for name in ("demo", "example", "replay", "watch", "--help"))
    assert "Traceback" not in r.stderr
    from kerasqt import __version__

    r = _run(["--version"], timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"kerasqt {__version__}"
