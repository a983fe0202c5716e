"""The live panel: one anywidget over :class:`~mission_widgets.MissionOrchestrator`.

Its front-end is a plain ES module and CSS file shipped beside the Python (``panel.js``,
``panel.css``; no build step), so it renders wherever anywidget does: JupyterLab,
Notebook 7, VS Code, Colab and marimo. What it shows is computed in ``core.panel_view``.
"""

from .panel import MissionPanel

__all__ = ["MissionPanel"]
