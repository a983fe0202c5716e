"""The live ipywidgets panel: a thin view over :class:`~mission_widgets.MissionOrchestrator`.

Made of standard ipywidgets only (no front-end build), so it works in JupyterLab,
Notebook 7, VS Code and Colab. Rows draw view-models computed in ``core.progress``.
"""

from .panel import MissionPanel
from .row import MissionRow

__all__ = ["MissionPanel", "MissionRow"]
