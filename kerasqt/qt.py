"""The Qt binding, chosen once for the whole package.

qtpy picks the binding (``QT_API=pyqt5``, the default when PyQt5 is installed, ``pyqt6``,
``pyside6``...). It is imported before Matplotlib's Qt backend, which then takes the
binding already imported instead of choosing one of its own (it prefers Qt 6), so the
process never loads two Qt libraries.
"""

# isort: skip_file
from qtpy import QtCore, QtGui, QtWidgets  # noqa: F401 - first, see above
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT  # noqa: E402

__all__ = ["FigureCanvasQTAgg", "NavigationToolbar2QT", "QtCore", "QtGui", "QtWidgets"]
